"""The CLI round trip a scripting user runs: import -> label -> propagate -> export."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from labeler.cli import main
from labeler.config import Settings
from labeler.workflow import export
from labeler.workflow.workspace import Workspace


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _label_one_per_colour(root: Path, tmp_path: Path, *, propagate: bool = True) -> None:
    """``labeler label`` one image of each colour (img_000 red, img_030 green, img_060 blue), then, unless
    ``propagate`` is False, ``labeler propagate``."""
    seeds = tmp_path / "seeds.csv"
    seeds.write_text("path,label\nimg_000.png,red\nimg_030.png,green\nimg_060.png,blue\n")
    assert main(["label", str(root), "--csv", str(seeds)]) == 0
    if propagate:
        assert main(["propagate", str(root)]) == 0


def test_import_reports_unreadable_and_duplicates(colour_folder: tuple[Path, dict[str, str]],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    root, truth = colour_folder
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (root / "copy.png").write_bytes((root / "img_000.png").read_bytes())
    assert main(["import", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"{len(truth) + 2} new files: {len(truth) + 1} readable, 1 unreadable (listed below)" in out
    assert f"in all: {len(truth) + 1} readable images, 1 unreadable, 1 exact duplicates" in out
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
    assert by_path["broken.jpg"]["flagged"] == "unreadable: empty file"  # why, in the file itself
    for name, path in first.items():
        assert by_path[path]["source"] == "human"
        assert by_path[path]["label"] == name
        assert float(by_path[path]["confidence"]) == 1.0
    propagated = [row for row in exported if row["source"] == "propagated"]
    assert len(propagated) == len(truth) - 3
    assert all(row["label"] == truth[row["path"]] for row in propagated)  # colour clusters: a known answer
    assert all(0.0 < float(row["confidence"]) <= 1.0 for row in propagated)
    assert {"path", "label", "source", "confidence", "margin", "entropy", "stability", "flagged",
            "annotator", "labeled_at", "umap_x", "umap_y", "representation"} <= set(exported[0])


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
    _label_one_per_colour(root, tmp_path, propagate=False)
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


# ----------------------------------------------------------------------------------------------- clear failures


@pytest.mark.parametrize("command", ["propagate", "export", "status", "map", "train"])
def test_a_folder_without_readable_images_is_a_clear_message(tmp_path: Path, command: str,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "data"
    root.mkdir()
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    extra = ["-o", str(tmp_path / "out.csv")] if command == "export" else []
    assert main([command, str(root), *extra]) == 1
    err = capsys.readouterr().err
    assert f"no readable images in {root}" in err
    assert ("nothing imported yet" if command == "status" else "1 unreadable files") in err
    assert not (tmp_path / "out.csv").exists()


def test_an_empty_folder_is_a_clear_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    assert main(["propagate", str(root)]) == 1
    assert "no readable images" in capsys.readouterr().err


def test_a_lookup_error_is_a_message_not_a_traceback(colour_folder: tuple[Path, dict[str, str]], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = colour_folder

    def gone(*args: object, **kwargs: object) -> None:
        raise LookupError("the representation of this state is no longer available; refresh first")

    monkeypatch.setattr(export, "export_frame", gone)
    assert main(["export", str(root), "-o", str(tmp_path / "x.csv")]) == 1
    assert "labeler: the representation of this state is no longer available" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------- CLI annotator, undo


def test_a_cli_batch_has_its_own_annotator_and_its_own_undo(colour_folder: tuple[Path, dict[str, str]],
                                                           tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = colour_folder
    assert main(["import", str(root)]) == 0
    ws = Workspace.open(Settings(root))
    red = ws.store.add_class("red")
    tab = f"{ws.settings.annotator}#tab-1"
    ws.store.label(ws.store.image_by_path("img_001.png").id, red.id, tab)  # type: ignore[union-attr]
    seeds = tmp_path / "seeds.csv"
    seeds.write_text("path,label\nimg_000.png,red\nimg_030.png,green\n")
    assert main(["label", str(root), "--csv", str(seeds)]) == 0
    details = ws.store.label_details()
    assert {details[ws.store.image_by_path(p).id][1] for p in ("img_000.png", "img_030.png")} == {  # type: ignore[union-attr]
        f"{ws.settings.annotator}#cli"
    }
    assert ws.store.undo(tab) == 1  # the tab's undo takes back the tab's label, not the CLI batch
    assert len(ws.store.human_labels()) == 2
    capsys.readouterr()
    assert main(["undo", str(root)]) == 0
    assert "reverted 2 labels" in capsys.readouterr().out
    assert ws.store.human_labels() == {}
    assert main(["undo", str(root)]) == 0
    assert "nothing to undo" in capsys.readouterr().out


def test_undo_of_a_batch_someone_changed_since_is_refused(colour_folder: tuple[Path, dict[str, str]],
                                                         tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = colour_folder
    seeds = tmp_path / "seeds.csv"
    seeds.write_text("path,label\nimg_000.png,red\nimg_030.png,green\n")
    assert main(["label", str(root), "--csv", str(seeds)]) == 0
    ws = Workspace.open(Settings(root))
    green = [c for c in ws.classes() if c.name == "green"][0]
    ws.store.label(ws.store.image_by_path("img_000.png").id, green.id, "bob#tab-2")  # type: ignore[union-attr]
    assert main(["undo", str(root)]) == 1
    assert "relabeled since by bob#tab-2" in capsys.readouterr().err
    assert len(ws.store.human_labels()) == 2


def test_an_exported_csv_labels_back_in(colour_folder: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    """Formula-like cells come out with a leading quote; `labeler label` takes them back as they were."""
    root, _ = colour_folder
    (root / "-2.png").write_bytes((root / "img_000.png").read_bytes())
    seeds = tmp_path / "seeds.csv"
    seeds.write_text("path,label\n-2.png,-1\nimg_030.png,green\n")
    assert main(["label", str(root), "--csv", str(seeds)]) == 0
    out = tmp_path / "labels.csv"
    assert main(["export", str(root), "-o", str(out)]) == 0
    rows = {row["path"]: row for row in _read_csv(out)}
    assert rows["'-2.png"]["label"] == "'-1"
    fresh = tmp_path / "fresh"
    assert main(["import", str(root), "--workspace", str(fresh)]) == 0
    assert main(["label", str(root), "--workspace", str(fresh), "--csv", str(out)]) == 0
    ws = Workspace.open(Settings(root, workspace_dir=fresh))
    names = {c.id: c.name for c in ws.classes()}
    labels = {r.path: names[ws.store.human_labels()[r.id]] for r in ws.records() if r.id in ws.store.human_labels()}
    assert labels["-2.png"] == "-1"
    assert "'-1" not in names.values()


def test_status_shows_the_audit_interval_and_the_stopping_verdict(
    colour_folder: tuple[Path, dict[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from labeler.config import Settings
    from labeler.workflow.workspace import Workspace

    root, truth = colour_folder
    _label_one_per_colour(root, tmp_path)
    assert main(["status", str(root)]) == 0
    assert "accuracy: Not enough audits yet for an estimate (0 of 10)" in capsys.readouterr().out
    ws = Workspace.open(Settings(root))
    classes = {c.name: c.id for c in ws.classes()}
    for record in ws.records()[1:13]:  # twelve blind answers, all right
        ws.store.record_audit(record.id, classes[truth[record.path]], None, None, "tester")
    assert main(["status", str(root)]) == 0
    out = capsys.readouterr().out
    assert ("accuracy: Between 76% and 100% of propagated labels are right (95% interval from 12 blind audits, "
            "12 of them right)") in out
    assert "stopping: Keep going. Not enough audits yet (12 of at least 30; " in out
    assert f"audits: 12 answered; `labeler audit {root}` lists the next images to answer blind" in out
    assert "run `labeler propagate`" in out  # the answers are calibration evidence too
    assert main(["propagate", str(root)]) == 0
    assert main(["status", str(root)]) == 0
    out = capsys.readouterr().out
    assert "confidence calibrated from 12 answers (0 leave-one-out predictions of human labels, 12 blind audits)" in out


def test_train_passes_the_fine_tuning_choice(
    colour_folder: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root, _ = colour_folder
    seen: list[str] = []

    def train(ws: Workspace, **kwargs: object) -> str:
        seen.append(ws.settings.finetune)
        return "trained"

    monkeypatch.setattr("labeler.workflow.training.train", train)
    assert main(["train", str(root), "--epochs", "1"]) == 0
    assert main(["train", str(root), "--epochs", "1", "--finetune", "always"]) == 0
    assert seen == ["auto", "always"]  # Settings.finetune's default, then the flag
    with pytest.raises(SystemExit):
        main(["train", str(root), "--finetune", "sometimes"])
    assert "invalid choice: 'sometimes'" in capsys.readouterr().err


def test_export_leaves_removed_files_out_and_lists_them(colour_folder: tuple[Path, dict[str, str]], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    root, truth = colour_folder
    seeds = tmp_path / "seeds.csv"
    seeds.write_text("path,label\nimg_000.png,red\nimg_001.png,red\nimg_030.png,green\nimg_060.png,blue\n")
    assert main(["label", str(root), "--csv", str(seeds)]) == 0
    kept = (root / "img_001.png").read_bytes()
    (root / "img_001.png").unlink()  # labeled, then removed
    (root / "img_002.png").unlink()  # never labeled, removed
    assert main(["import", str(root)]) == 0
    out_path = tmp_path / "labels.csv"
    capsys.readouterr()
    assert main(["export", str(root), "-o", str(out_path)]) == 0
    said = capsys.readouterr().out
    assert "left out: 2 files removed from the folder since the import (1 with a human label" in said
    assert "img_001.png, img_002.png" in said
    rows = {row["path"]: row for row in _read_csv(out_path)}
    assert len(rows) == len(truth) - 2
    assert "img_001.png" not in rows
    ws = Workspace.open(Settings(root))
    assert export.removed_files(ws) == [("img_001.png", "red"), ("img_002.png", "")]
    # Status counts the removed file's label, and says why propagation's count of human labels is one smaller.
    assert main(["status", str(root)]) == 0
    assert ("human labels: 4 (1 on missing files: kept, left out of propagation until the files come back)\n"
            in capsys.readouterr().out)

    (root / "img_001.png").write_bytes(kept)  # the file comes back: so does its label, in the CSV too
    assert main(["import", str(root)]) == 0
    assert main(["export", str(root), "-o", str(out_path)]) == 0
    rows = {row["path"]: row for row in _read_csv(out_path)}
    assert (rows["img_001.png"]["label"], rows["img_001.png"]["source"]) == ("red", "human")
    assert export.removed_files(ws) == [("img_002.png", "")]


def test_between_sessions_labels_follow_their_pictures(colour_folder: tuple[Path, dict[str, str]], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    root, truth = colour_folder
    _label_one_per_colour(root, tmp_path, propagate=False)
    (root / "img_000.png").rename(root / "sub_moved.png")  # renamed: its label goes with it
    (root / "img_030.png").write_bytes((root / "img_031.png").read_bytes())  # another picture, same name
    (root / "new.png").write_bytes((root / "img_061.png").read_bytes())  # added
    capsys.readouterr()
    assert main(["import", str(root)]) == 0
    said = capsys.readouterr().out
    assert "labels follow content: 1 moved with their picture to its new name, 1 taken off files now holding " \
        "another picture" in said
    out_path = tmp_path / "labels.csv"
    assert main(["export", str(root), "-o", str(out_path)]) == 0
    rows = {row["path"]: row for row in _read_csv(out_path)}
    assert len(rows) == len(truth) + 1  # img_000.png is missing (left out), new.png and sub_moved.png are in
    assert (rows["sub_moved.png"]["label"], rows["sub_moved.png"]["source"]) == ("red", "human")
    assert rows["img_030.png"]["source"] == "none"  # no longer the green seed: no green label is left
    assert rows["new.png"]["source"] == "propagated"
    assert rows["img_060.png"]["source"] == "human"
    assert "left out: 1 file removed from the folder since the import (0 with a human label" \
        in capsys.readouterr().out  # its label moved with its picture


def test_a_blind_audit_from_the_command_line(colour_folder: tuple[Path, dict[str, str]], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    root, truth = colour_folder
    assert main(["import", str(root)]) == 0
    assert main(["audit", str(root)]) == 1  # nothing propagated yet
    assert "run `labeler propagate` first" in capsys.readouterr().err
    _label_one_per_colour(root, tmp_path)
    listed = tmp_path / "audit.csv"
    assert main(["audit", str(root), "--next", "12", "-o", str(listed)]) == 0
    rows = _read_csv(listed)
    assert len(rows) == 12
    assert all(row["label"] == "" for row in rows)
    assert not {row["path"] for row in rows} & {"img_000.png", "img_030.png", "img_060.png"}
    answers = tmp_path / "answers.csv"
    answers.write_text("path,label\n" + "".join(f"{row['path']},{truth[row['path']]}\n" for row in rows))
    capsys.readouterr()
    assert main(["audit", str(root), "--answers", str(answers)]) == 0
    out = capsys.readouterr().out
    assert "12 audit answers stored, 0 rows skipped, 0 left blank" in out
    assert ("Between 76% and 100% of propagated labels are right (95% interval from 12 blind audits, "
            "12 of them right)") in out
    ws = Workspace.open(Settings(root))
    assert len(ws.store.audits()) == 12
    assert len(ws.store.human_labels()) == 3
    assert main(["audit", str(root), "--next", "3"]) == 0
    assert not {row.split(",")[0] for row in capsys.readouterr().out.split()[1:]} & {row["path"] for row in rows}
    assert main(["propagate", str(root)]) == 0  # counted as the app and the export count them: audited apart
    assert f"3 human, {len(truth) - 15} propagated, 12 audited, 0 unreached" in capsys.readouterr().out
    assert main(["status", str(root)]) == 0
    assert f"3 human, {len(truth) - 15} propagated, 12 audited, 0 unreached" in capsys.readouterr().out


# ----------------------------------------------------------------------------------------------- headless flow


def test_digit_classes_from_a_csv_get_their_own_keys_and_status_lists_them_in_order(
    colour_folder: tuple[Path, dict[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # MNIST seeds name their classes in the order 7, 2, 1, 0, 4, 9, 5, 6, 3, 8: keys used to follow it (class "0"
    # got key 1, "7" key 2, "8" none), so pressing 7 on a seven in the app stored "3".
    root, _ = colour_folder
    order = ["7", "2", "1", "0", "4", "9", "5", "6", "3", "8"]
    seeds = tmp_path / "seeds.csv"
    seeds.write_text("path,label\n" + "".join(f"img_{i:03d}.png,{name}\n" for i, name in enumerate(order)))
    assert main(["label", str(root), "--csv", str(seeds)]) == 0
    digits = ", ".join(f"{d} (key {d})" for d in "0123456789")
    assert f"created 10 new classes: {digits}\n" in capsys.readouterr().out
    ws = Workspace.open(Settings(root))
    assert {c.name: c.hotkey for c in ws.classes()} == {d: d for d in order}
    assert main(["status", str(root)]) == 0
    assert f"classes: {digits}\n" in capsys.readouterr().out  # natural name order, not creation order


def test_a_typo_class_is_named_and_its_undo_says_the_class_stays(
    colour_folder: tuple[Path, dict[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, _ = colour_folder
    assert main(["import", str(root)]) == 0
    ws = Workspace.open(Settings(root))
    ws.store.add_class("purple")  # made on purpose in the app, empty: never reported, never removed
    seeds = tmp_path / "seeds.csv"
    seeds.write_text("path,label\nimg_000.png,red\nimg_030.png,green\n")
    assert main(["label", str(root), "--csv", str(seeds)]) == 0
    capsys.readouterr()
    typo = tmp_path / "typo.csv"
    typo.write_text("path,label\nimg_031.png,green\nimg_032.png,gren\nimg_001.png,red\n")
    assert main(["label", str(root), "--csv", str(typo)]) == 0
    out = capsys.readouterr().out
    assert "3 labels stored, 0 unchanged, 0 rows skipped\ncreated 1 new class: gren (key 4)\n" in out
    assert f"(not among the 3 classes before: if that is a typo, `labeler undo {root}` takes this batch back)" in out
    assert main(["undo", str(root)]) == 0
    out = capsys.readouterr().out
    assert "reverted 3 labels" in out
    assert ("1 class has no label now (first labeled by that batch): gren (key 4); it stays; if made by mistake, "
            "delete it in the app (Home, Edit or delete a class)") in out
    assert [c.name for c in ws.classes()] == ["purple", "red", "green", "gren"]  # nothing deleted
    # As the message says, it can be deleted now: the batch that used it is undone, nothing can bring it back.
    ws.store.delete_class(ws.classes()[-1].id)
    assert [c.name for c in ws.classes()] == ["purple", "red", "green"]
    assert main(["undo", str(root)]) == 0  # the first batch: red and green were first labeled by it
    out = capsys.readouterr().out
    assert "2 classes have no label now (first labeled by that batch): green (key 3), red (key 2)" in out
    assert "purple" not in out
    assert "gren" not in out


def test_undo_of_every_seed_makes_the_propagation_out_of_date_and_export_propagates_first(
    colour_folder: tuple[Path, dict[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, truth = colour_folder
    _label_one_per_colour(root, tmp_path)
    assert main(["status", str(root)]) == 0
    assert "propagation: up to date with the labels\n" in capsys.readouterr().out
    assert main(["undo", str(root)]) == 0
    capsys.readouterr()
    assert main(["status", str(root)]) == 0
    out = capsys.readouterr().out
    assert "human labels: 0\n" in out
    assert ("propagation: OUT OF DATE: 3 human labels taken off since it ran; the counts, accuracy and verdict "
            "below are from then: run `labeler propagate`") in out
    assert f"last propagation (out of date): 3 human, {len(truth) - 3} propagated" in out
    assert "accuracy (out of date): " in out
    assert "stopping (out of date): " in out
    out_path = tmp_path / "labels.csv"
    assert main(["export", str(root), "-o", str(out_path)]) == 0
    said = capsys.readouterr()
    assert ("the propagation is out of date (3 human labels taken off since it ran): propagating first"
            in said.err)
    assert f"wrote {len(truth)} rows to {out_path}: none {len(truth)}\n" in said.out  # nothing left to propagate from
    assert {row["source"] for row in _read_csv(out_path)} == {"none"}
    assert main(["status", str(root)]) == 0
    assert "propagation: up to date with the labels\n" in capsys.readouterr().out


def test_a_relabel_since_the_propagation_is_counted_and_exported_from_the_new_labels(
    colour_folder: tuple[Path, dict[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, truth = colour_folder
    _label_one_per_colour(root, tmp_path)
    relabel = tmp_path / "relabel.csv"
    relabel.write_text("path,label\nimg_060.png,green\nimg_061.png,blue\n")  # blue's seed moved to another image
    assert main(["label", str(root), "--csv", str(relabel)]) == 0
    capsys.readouterr()
    assert main(["status", str(root)]) == 0
    assert ("propagation: OUT OF DATE: 1 human label added, 1 human label changed since it ran"
            in capsys.readouterr().out)
    out_path = tmp_path / "labels.csv"
    assert main(["export", str(root), "-o", str(out_path)]) == 0
    rows = {row["path"]: row for row in _read_csv(out_path)}
    assert (rows["img_060.png"]["label"], rows["img_060.png"]["source"]) == ("green", "human")
    assert (rows["img_061.png"]["label"], rows["img_061.png"]["source"]) == ("blue", "human")


def test_audits_since_the_propagation_leave_the_labels_current_and_the_calibration_behind(
    colour_folder: tuple[Path, dict[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, truth = colour_folder
    _label_one_per_colour(root, tmp_path)
    ws = Workspace.open(Settings(root))
    classes = {c.name: c.id for c in ws.classes()}
    for record in ws.records()[1:3]:
        ws.store.record_audit(record.id, classes[truth[record.path]], None, None, "tester")
    capsys.readouterr()
    assert main(["status", str(root)]) == 0
    out = capsys.readouterr().out
    assert ("propagation: the labels are up to date, the calibration of their confidence is not (2 blind audits "
            "answered since it ran): run `labeler propagate`") in out
    assert "(out of date)" not in out


def test_before_any_audit_status_says_both_audit_counts_with_what_each_is_for(
    colour_folder: tuple[Path, dict[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, _ = colour_folder
    _label_one_per_colour(root, tmp_path)
    capsys.readouterr()
    assert main(["status", str(root)]) == 0
    out = capsys.readouterr().out
    # It said "0 of 10" on one line and "0 of at least 30" on the next, each as if it were the whole story.
    assert "accuracy: Not enough audits yet for an estimate (0 of 10) nor to decide when to stop (0 of at least 30)" \
        in out
    assert "stopping: Keep going. Not enough audits yet (0 of at least 30;" in out


# ----------------------------------------------------------------------------------------------- start-up cost


def test_help_and_the_light_commands_import_no_heavy_library(colour_folder: tuple[Path, dict[str, str]],
                                                             tmp_path: Path) -> None:
    """`labeler --help` took 5-7 s, all of it importing scikit-learn, SciPy and pandas that it never uses."""
    import subprocess
    import sys

    root, _ = colour_folder
    assert main(["import", str(root)]) == 0
    seeds = tmp_path / "seeds.csv"
    seeds.write_text("path,label\nimg_000.png,red\n")
    heavy = ("sklearn", "scipy", "pandas", "torch", "streamlit")
    probe = (
        "import sys\nfrom labeler.cli import main\n"
        "try:\n    code = main(sys.argv[1:])\nexcept SystemExit as done:\n    code = done.code\n"
        f"print('loaded:', sorted(m for m in {heavy!r} if m in sys.modules), code)\n"
    )
    for argv in (["--help"], ["label"], ["label", str(root), "--csv", str(seeds)], ["undo", str(root)]):
        done = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, timeout=120)
        assert done.stdout.strip().splitlines()[-1] in {"loaded: [] 0", "loaded: [] 2"}, (argv, done.stdout,
                                                                                           done.stderr)
    # status reads the last propagation and its calibration's prior, and fits nothing: no scikit-learn (it took 3-4 s,
    # 1.4 s of it importing scikit-learn; SciPy it needs).
    assert main(["propagate", str(root)]) == 0
    done = subprocess.run([sys.executable, "-c", probe, "status", str(root)], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.strip().splitlines()[-1] == "loaded: ['scipy'] 0", (done.stdout, done.stderr)
