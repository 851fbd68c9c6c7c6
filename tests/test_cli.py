"""The CLI round trip a scripting user runs: import -> label -> propagate -> export."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from labeler.cli import main


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_import_reports_unreadable_and_duplicates(colour_folder: tuple[Path, dict[str, str]],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    root, truth = colour_folder
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (root / "copy.png").write_bytes((root / "img_000.png").read_bytes())
    assert main(["import", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"{len(truth) + 1} readable images" in out
    assert "unreadable: broken.png:" in out
    assert "duplicate: img_000.png is identical to copy.png" in out or "duplicate: copy.png" in out


def test_round_trip_import_label_export(colour_folder: tuple[Path, dict[str, str]], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    root, truth = colour_folder
    (root / "broken.jpg").write_bytes(b"")
    assert main(["import", str(root)]) == 0
    seeds = tmp_path / "seeds.csv"
    first = {}
    for path, name in truth.items():
        first.setdefault(name, path)
    rows = [f"{path},{name}" for name, path in first.items()]
    seeds.write_text("path,label\n" + "\n".join(rows) + "\nmissing.png,red\nimg_005.png,=HYPERLINK()\n")
    assert main(["label", str(root), "--csv", str(seeds)]) == 0
    err = capsys.readouterr().err
    assert "skipped missing.png: unknown path" in err
    assert "skipped img_005.png:" in err
    assert "formula" in err
    # Idempotent: the same CSV again stores nothing new.
    assert main(["label", str(root), "--csv", str(seeds)]) == 0
    assert "0 labels stored" in capsys.readouterr().out

    out_path = tmp_path / "labels.csv"
    assert main(["export", str(root), "-o", str(out_path)]) == 0
    exported = _read_csv(out_path)
    assert len(exported) == len(truth) + 1
    by_path = {row["path"]: row for row in exported}
    assert by_path["broken.jpg"]["source"] == "unreadable"
    for name, path in first.items():
        assert by_path[path]["source"] == "human"
        assert by_path[path]["label"] == name
        assert float(by_path[path]["confidence"]) == 1.0
    propagated = [row for row in exported if row["source"] == "propagated"]
    assert len(propagated) == len(truth) - 3
    assert all(row["label"] == truth[row["path"]] for row in propagated)  # colour clusters: a known answer
    assert all(0.0 < float(row["confidence"]) <= 1.0 for row in propagated)
    assert {"path", "label", "source", "confidence", "margin", "entropy", "stability", "flagged",
            "annotator", "labeled_at", "umap_x", "umap_y", "embedding"} <= set(exported[0])


def test_export_before_any_label_gives_source_none(colour_folder: tuple[Path, dict[str, str]],
                                                   tmp_path: Path) -> None:
    root, truth = colour_folder
    out_path = tmp_path / "labels.csv"
    assert main(["export", str(root), "-o", str(out_path)]) == 0  # imports on first use
    exported = _read_csv(out_path)
    assert len(exported) == len(truth)
    assert {row["source"] for row in exported} == {"none"}


def test_min_confidence_flags_but_keeps_labels(colour_folder: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    root, truth = colour_folder
    seeds = tmp_path / "seeds.csv"
    seeds.write_text("path,label\nimg_000.png,red\nimg_030.png,green\nimg_060.png,blue\n")
    assert main(["label", str(root), "--csv", str(seeds)]) == 0
    out_path = tmp_path / "labels.csv"
    assert main(["export", str(root), "-o", str(out_path), "--min-confidence", "1.01"]) == 0
    propagated = [row for row in _read_csv(out_path) if row["source"] == "propagated"]
    assert propagated
    assert all("below-threshold" in row["flagged"] and row["label"] for row in propagated)


def test_workspace_option_keeps_data_folder_untouched(colour_folder: tuple[Path, dict[str, str]],
                                                      tmp_path: Path) -> None:
    root, _ = colour_folder
    workspace = tmp_path / "elsewhere"
    assert main(["import", str(root), "--workspace", str(workspace)]) == 0
    assert (workspace / "labeler.db").exists()
    assert not (root / ".labeler").exists()


def test_missing_folder_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit, match="does not exist"):
        main(["import", str(tmp_path / "nope")])
