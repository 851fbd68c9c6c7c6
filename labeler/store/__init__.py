"""The label store: SQLite is the source of truth for images, classes, human labels, audits and jobs."""

from labeler.store.classes import DEFAULT_COLOURS, InvalidClassName, validate_class_name
from labeler.store.database import SCHEMA_VERSION
from labeler.store.jobs import Job
from labeler.store.labels import ClassInfo, ImageRecord, ImportedImage, LabelStore

__all__ = [
    "DEFAULT_COLOURS", "SCHEMA_VERSION", "ClassInfo", "ImageRecord", "ImportedImage", "InvalidClassName", "Job",
    "LabelStore", "validate_class_name",
]
