"""One ingest at a time per data dir: a second `rag ingest` (or a UI upload, or a first launch indexing the bundled
corpus) on the same data dir fails at once with a clear message instead of embedding everything a second time.

``filelock`` gives an OS-level lock (fcntl/msvcrt): it is released when the process exits, even on SIGKILL, so a
killed ingest never leaves the data dir locked.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

__all__ = ["LOCK_NAME", "IngestLockedError", "ingest_lock"]

LOCK_NAME = "ingest.lock"


class IngestLockedError(RuntimeError):
    """Another ingest holds this data dir's lock."""


@contextmanager
def ingest_lock(data_dir: Path) -> Iterator[None]:
    """Hold ``data_dir``'s ingest lock for the block; IngestLockedError at once if another ingest holds it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK_NAME
    lock = FileLock(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise IngestLockedError(
            f"another ingest is running on {data_dir} (lock {path} is held): wait for it to finish, then re-run; "
            "nothing is lost by waiting"
        ) from None
    try:
        yield
    finally:
        lock.release()
