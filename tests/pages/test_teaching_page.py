"""The Teaching page: each tab's text follows its controls and states what its pictures show."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from page_helpers import (  # noqa: F401  (data_dir_fixture: the data_dir fixture)
    data_dir_fixture,
    run_page,
)
from streamlit.testing.v1 import AppTest


def chart_specs(at: AppTest) -> dict[str, dict[str, Any]]:
    return {chart.key: json.loads(chart.proto.spec) for chart in at.get("plotly_chart")}  # type: ignore[attr-defined]


def test_mismatch_text_follows_the_toggle_and_names_the_classes(data_dir: Path) -> None:
    at = run_page("teaching")
    text = " ".join(m.value for m in at.markdown)
    assert "Class C, which nobody labeled" in text
    truth = chart_specs(at)["teach_mismatch_true classes"]
    assert truth["layout"]["showlegend"] is True
    assert [t["name"] for t in truth["data"] if t.get("showlegend") is not False] == [
        "class A", "class B", "class C (never labeled)"]
    assert any(c.value.startswith("Flagged: ") and "false alarms" in c.value for c in at.caption)

    at.toggle(key="teach_hidden").set_value(False).run()
    assert not at.exception
    text = " ".join(m.value for m in at.markdown)
    assert "nobody labeled" not in text
    assert "every red cross on the right is a false alarm" in text
    (alarms,) = [c.value for c in at.caption if c.value.startswith("False alarms: ")]
    flagged = chart_specs(at)["teach_mismatch_new-class flag"]["layout"]["title"]["text"]
    n_flagged = flagged.split(": ")[1].split(" ")[0]
    assert alarms.startswith(f"False alarms: {n_flagged} of 450 points flagged (")
    truth = chart_specs(at)["teach_mismatch_true classes"]
    assert "class C" in [t["name"] for t in truth["data"]]


def test_complexity_tab_shows_both_failures_and_has_a_draw(data_dir: Path) -> None:
    at = run_page("teaching")
    titles = {key: spec["layout"]["title"]["text"] for key, spec in chart_specs(at).items() if key.startswith(
        "teach_complexity_")}
    assert "teach_complexity_k = 3" in titles
    assert "teach_complexity_k = 160" in titles
    assert len(titles) == 4  # truth, smallest k, best k, largest k
    curve = chart_specs(at)["teach_k_curve"]
    before = curve["data"][0]["y"]
    at.number_input(key="teach_seed_complexity").increment().run()
    assert not at.exception
    assert chart_specs(at)["teach_k_curve"]["data"][0]["y"] != before


def test_bias_tab_reports_hidden_mistakes_not_a_lucky_accuracy(data_dir: Path) -> None:
    """Draw 0 is one where self-training ends more accurate: the text says so, and what the tab is about, the
    mistakes no review will show, is a metric beside each method's accuracy."""
    at = run_page("teaching")
    text = " ".join(m.value for m in at.markdown)
    assert "Accuracy alone does not show it" in text
    assert "draw 0 is one of those" in text
    hidden = {m.label: m.value for m in at.metric if m.label.startswith("wrong labels no review will show")}
    honest, self_training = (hidden[f"wrong labels no review will show · {name}"]
                             for name in ("honest (human seeds only)", "self-training"))
    assert honest.startswith("0 of ")
    assert int(self_training.split(" of ")[0]) >= 10
    accuracy = {m.label: int(m.value.rstrip("%")) for m in at.metric if m.label.startswith("accuracy on unlabeled")}
    assert accuracy["accuracy on unlabeled · self-training"] > accuracy[
        "accuracy on unlabeled · honest (human seeds only)"]  # as the text warns for draw 0
    assert any("those that are seeds are never offered for review" in c.value for c in at.caption)


def test_manifold_heading_follows_the_data(data_dir: Path) -> None:
    at = run_page("teaching")
    assert any(m.value.startswith("**Why it works:**") for m in at.markdown)
    at.segmented_control(key="teach_shape").set_value("blobs").run()
    assert not at.exception
    assert not any(m.value.startswith("**Why it works:**") for m in at.markdown)
    assert any(m.value.startswith("**When the assumption fails:**") for m in at.markdown)


def test_complexity_middle_picture_takes_any_k_and_grey_is_explained(data_dir: Path) -> None:
    at = run_page("teaching")
    at.select_slider(key="teach_k_middle").set_value(40).run()
    assert not at.exception
    keys = [key for key in chart_specs(at) if key.startswith("teach_complexity_")]
    assert "teach_complexity_k = 40" in keys
    # On the mismatch tab grey means "not flagged" in the flag picture: the caption says which grey is which.
    assert any("in the flag picture grey points are not flagged" in c.value for c in at.caption)
