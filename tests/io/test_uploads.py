"""Uploads are untrusted: zip slip, hidden members, non-images and oversize files are refused, good files land."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from labeler.io import uploads


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def test_uploads_refuse_zip_slip_and_non_images(tmp_path: Path) -> None:
    target = tmp_path / "ws" / "uploads"
    archive = _zip({"cats/a.png": b"png", "../evil.png": b"x", "/abs.png": b"x", "notes.txt": b"t",
                    ".hidden/b.png": b"x"})
    saved, problems = uploads.save_files(target, [("pets.zip", archive), ("c.JPG", b"jpg"), ("run.sh", b"#!")])
    assert saved == 2
    assert (target / "pets" / "cats" / "a.png").read_bytes() == b"png"
    assert (target / "c.JPG").read_bytes() == b"jpg"
    assert not (tmp_path / "ws" / "evil.png").exists()
    assert not Path("/abs.png").exists()
    refused = {name for name, _ in problems}
    assert refused == {"pets.zip: ../evil.png", "pets.zip: /abs.png", "pets.zip: .hidden/b.png", "run.sh"}


def test_a_broken_zip_and_an_oversize_file_are_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(uploads, "MAX_FILE_BYTES", 4)
    saved, problems = uploads.save_files(tmp_path, [("bad.zip", b"not a zip"), ("big.png", b"12345"),
                                                    ("ok.png", b"1234")])
    assert saved == 1
    assert problems == [("bad.zip: (archive)", "not a readable zip file"), ("big.png", "larger than the upload bound")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.png"]


def test_only_dot_labeler_uploads_is_an_upload_dataset(tmp_path: Path) -> None:
    assert uploads.is_upload_dataset(tmp_path / ".labeler" / "uploads")
    assert not uploads.is_upload_dataset(tmp_path / "uploads")
