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
    at = run_page("teaching")
    text = " ".join(m.value for m in at.markdown)
    assert "depends on the draw" in text
    captions = [c.value for c in at.caption if c.value.startswith("**self-training**")]
    assert len(captions) == 1
    assert "of them are seeds, hidden from review" in captions[0]
    (honest,) = [c.value for c in at.caption if c.value.startswith("**honest")]
    assert honest.endswith("0 of them are seeds, hidden from review.")
