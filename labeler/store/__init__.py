"""The label store: SQLite is the source of truth for images, classes, human labels, audits and jobs."""

from labeler.store.classes import (
    CLASS_KEYS,
    DEFAULT_COLOURS,
    ClassInUse,
    ClassNameTaken,
    InvalidClassName,
    auto_hotkey,
    keys_for,
    natural_key,
    validate_class_name,
)
from labeler.store.database import SCHEMA_VERSION, WorkspaceNotWritable
from labeler.store.jobs import Job
from labeler.store.labels import (
    RESCAN_ANNOTATOR,
    ClassInfo,
    ImageRecord,
    ImportedImage,
    LabelAction,
    LabelStore,
    PathLabels,
    UndoConflict,
    UndoNeedsDeletedClass,
    validate_annotator,
)

__all__ = [
    "CLASS_KEYS", "DEFAULT_COLOURS", "RESCAN_ANNOTATOR", "SCHEMA_VERSION", "ClassInUse", "ClassInfo",
    "ClassNameTaken",
    "ImageRecord", "ImportedImage", "InvalidClassName", "Job", "LabelAction", "LabelStore", "PathLabels",
    "UndoConflict", "UndoNeedsDeletedClass", "WorkspaceNotWritable", "auto_hotkey", "keys_for", "natural_key",
    "validate_annotator", "validate_class_name",
]
