"""One SegLoop process per case: an OS file lock on the case's autosave folder.

Two windows annotating one case would share its autosave folder: the second would clear the first's
snapshot and point the recovery state at its own log, so a crash of the first would lose its
unsaved work. The lock is an advisory OS lock (flock / msvcrt) on `<folder>/owner.lock`, held for
the session's lifetime. The OS drops it when the process dies, so a crash or kill -9 never leaves
a stale lock that blocks recovery.
"""
from __future__ import annotations

import os
from pathlib import Path

from app.core.errors import SegLoopError

LOCK_NAME = "owner.lock"


class CaseInUseError(SegLoopError):
    """The case is being annotated by another SegLoop process."""


class CaseLock:
    """Held while open; `release()` (or process exit) frees it. Not re-entrant within a process:
    a second session on the same case in one process is refused too."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / LOCK_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock(self._fd)
        except OSError:
            owner = _read_owner(self._fd)
            os.close(self._fd)
            self._fd = None
            who = f" (process {owner})" if owner else ""
            raise CaseInUseError(
                f"this case is open for annotation in another SegLoop window{who}. Close it there "
                "first: two windows on one case would overwrite each other's autosave.") from None
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)
        os.write(self._fd, str(os.getpid()).encode("ascii"))     # named in the other's message

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            _unlock(self._fd)
        finally:
            os.close(self._fd)
            self._fd = None

    def __del__(self):          # a session dropped without close() must not keep its case locked
        try:
            self.release()
        except OSError:
            pass


def _read_owner(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return text if text.isdigit() else ""


if os.name == "nt":             # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
