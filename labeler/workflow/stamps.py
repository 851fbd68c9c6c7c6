"""Cheap version stamps of a workspace, so that a page polling once a second reloads big arrays only when they change.

Each stamp costs a ``stat`` or one small aggregate query, never a load of the images table or of the state arrays.
A stamp is only compared for equality (a cache key); its parts mean nothing on their own.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

from labeler.workflow.state import state_dir
from labeler.workflow.workspace import Workspace

_STATE_FILES = ("propagation.npz", "propagation.json")


class ImagesStamp(NamedTuple):
    """What the images table holds, in a few numbers: counts and a checksum of ids, rows and content hashes."""

    total: int  # every image on record: readable, unreadable and missing
    readable: int
    checksum: int  # changes when a readable image is added, removed, renumbered or its content replaced


def state_stamp(ws: Workspace) -> tuple[int, ...]:
    """(mtime_ns, size) of each saved propagation file; zeros when absent.

    Every refresh writes both files (and the map before them), so the stamp changes with every new state.
    """
    # TODO(safety): use labeler.workflow.state.state_version(ws) once the atomic state lands.
    parts: list[int] = []
    for name in _STATE_FILES:
        try:
            info = (state_dir(ws) / name).stat()
        except OSError:
            parts += [0, 0]
        else:
            parts += [info.st_mtime_ns, info.st_size]
    return tuple(parts)


# One aggregate over the images table. The checksum mixes each readable image's id, row and the first four hex
# digits of its content hash, so a re-scan that adds, removes or renumbers images, or finds a file replaced under
# the same name, changes it (a replaced file is missed with probability 1/65536).
_IMAGES_QUERY = """
SELECT COUNT(*),
       COALESCE(SUM(status = 'ok'), 0),
       COALESCE(SUM(CASE WHEN status = 'ok' THEN
           (id * 1000003 + COALESCE(row, 0) * 7919) % 2147483647
           + (instr('0123456789abcdef', substr(sha256, 1, 1)) * 4096
              + instr('0123456789abcdef', substr(sha256, 2, 1)) * 256
              + instr('0123456789abcdef', substr(sha256, 3, 1)) * 16
              + instr('0123456789abcdef', substr(sha256, 4, 1))) * (id % 65521 + 1)
       END), 0)
FROM images
"""


def images_stamp(ws: Workspace) -> ImagesStamp:
    """The images table in three numbers (one read-only aggregate query, milliseconds at 100,000 images)."""
    # TODO(store): a LabelStore method (e.g. ``images_version()``) should own this query; the store has no
    # aggregate of the images table yet, and loading every record to count them costs seconds at 100k images.
    return images_stamp_at(ws.settings.db_path)


def images_stamp_at(db_path: Path) -> ImagesStamp:
    if not Path(db_path).is_file():
        return ImagesStamp(0, 0, 0)
    conn = sqlite3.connect(f"file:{quote(Path(db_path).as_posix())}?mode=ro", uri=True, timeout=30.0)
    try:
        total, readable, checksum = conn.execute(_IMAGES_QUERY).fetchone()
    except sqlite3.OperationalError:  # no images table yet (a store being created)
        return ImagesStamp(0, 0, 0)
    finally:
        conn.close()
    return ImagesStamp(int(total), int(readable), int(checksum))


def has_images(ws: Workspace) -> bool:
    """Whether the folder has been imported (any image on record, readable or not), without loading the table."""
    return images_stamp(ws).total > 0
