"""The label store: SQLite is the source of truth for images, classes, human labels, audits and jobs."""

from labeler.store.classes import DEFAULT_COLOURS, ClassNameTaken, InvalidClassName, validate_class_name
from labeler.store.database import SCHEMA_VERSION, WorkspaceNotWritable
from labeler.store.jobs import Job
from labeler.store.labels import (
    RESCAN_ANNOTATOR,
    ClassInfo,
    ImageRecord,
    ImportedImage,
    LabelAction,
    LabelStore,
    UndoConflict,
    validate_annotator,
)

__all__ = [
    "DEFAULT_COLOURS", "RESCAN_ANNOTATOR", "SCHEMA_VERSION", "ClassInfo", "ClassNameTaken", "ImageRecord",
    "ImportedImage", "InvalidClassName", "Job", "LabelAction", "LabelStore", "UndoConflict", "WorkspaceNotWritable",
    "validate_annotator", "validate_class_name",
]
