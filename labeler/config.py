"""One frozen settings object, built once and passed down (never a module global)."""

from __future__ import annotations

import getpass
from dataclasses import dataclass, field, replace
from pathlib import Path

WORKSPACE_DIRNAME = ".labeler"
FINETUNE_CHOICES = ("auto", "always", "never")


def _default_annotator() -> str:
    try:
        return getpass.getuser() or "annotator"
    except Exception:  # no user database in some containers
        return "annotator"


@dataclass(frozen=True)
class Settings:
    """Everything a labeling session is configured by.

    Orchestration (CLI, app, jobs) takes a ``Settings``; leaf functions take explicit values.
    """

    data_dir: Path
    workspace_dir: Path = field(default=Path())
    annotator: str = field(default_factory=_default_annotator)
    # Images
    thumb_size: int = 96
    train_size: int = 32
    max_image_pixels: int = 64_000_000
    # Graph and propagation
    n_neighbors: int = 15
    alpha: float = 0.99
    max_iter: int = 1000
    tol: float = 1e-6
    n_bootstrap: int = 10
    bootstrap_drop: float = 0.2
    # Self-supervised training
    ssl_minutes: float = 5.0
    # Measured best for 5 minutes on 2 CPU cores (benchmarks/results/quality.md).
    ssl_width: int = 16
    ssl_batch_size: int = 64
    ssl_temperature: float = 0.1
    ssl_preset: str = "auto"  # "auto", "photo" or "glyph"
    device: str = "auto"  # "auto", "cpu" or "cuda"
    # Colour photos: also fine-tune the pretrained backbone's last stages with SimCLR. "auto": where training runs on
    # a GPU; "always": on the CPU too (slow: minutes buy a few epochs); "never".
    finetune: str = "auto"
    # Where the models' embeddings are computed after training: "" on this machine; a Ray address ("auto",
    # "ray://head:10001", or "local" to start one here) runs them on that cluster (pip install "labeler[ray]").
    ray_address: str = ""
    # Review
    target_precision: float = 0.95
    random_state: int = 0
    # Teaching mode: a ground-truth CSV (path,label) read only to show the true accuracy.
    ground_truth_path: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser().resolve())
        workspace = Path(self.workspace_dir)
        if workspace == Path():
            workspace = self.data_dir / WORKSPACE_DIRNAME
        object.__setattr__(self, "workspace_dir", workspace.expanduser().resolve())
        if self.thumb_size < 16 or self.train_size < 8:
            raise ValueError("thumb_size must be >= 16 and train_size >= 8")
        if self.n_neighbors < 1:
            raise ValueError(f"n_neighbors must be >= 1, got {self.n_neighbors}")
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if not 0.0 < self.bootstrap_drop < 1.0:
            raise ValueError(f"bootstrap_drop must be in (0, 1), got {self.bootstrap_drop}")
        if self.ssl_temperature <= 0:
            raise ValueError(f"ssl_temperature must be positive, got {self.ssl_temperature}")
        if self.ssl_preset not in {"auto", "photo", "glyph"}:
            raise ValueError(f"ssl_preset must be auto, photo or glyph, got {self.ssl_preset!r}")
        if self.device not in {"auto", "cpu", "cuda"}:
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.finetune not in FINETUNE_CHOICES:
            raise ValueError(f"finetune must be auto, always or never, got {self.finetune!r}")
        object.__setattr__(self, "ray_address", str(self.ray_address).strip())
        if self.ground_truth_path is not None:
            object.__setattr__(self, "ground_truth_path", Path(self.ground_truth_path).expanduser().resolve())

    def with_(self, **changes: object) -> Settings:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def db_path(self) -> Path:
        return self.workspace_dir / "labeler.db"

    @property
    def cache_dir(self) -> Path:
        return self.workspace_dir / "cache"
