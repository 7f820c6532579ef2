"""Publishing a whole folder atomically: a crash leaves the old folder or the complete new one.

The new folder is built in a hidden sibling `.NAME.partial-PID-xxxx` (same file system, so the
final rename is atomic) and renamed to NAME only when complete. Replacing an existing NAME takes
two renames (old -> `.NAME.old-PID-xxxx`, new -> NAME), then the old one is deleted. A process
killed between those two renames leaves NAME missing and the old folder beside it: the next
StagedFolder for NAME puts it back, and removes leftovers of dead exports (POSIX; on Windows a
process id cannot be probed safely, so leftovers stay there as hidden folders).
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path

from app.core.errors import InputError


class ExportExistsError(InputError):
    """The destination already holds something and overwriting was not asked for."""


def _pid_alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # os.kill(pid, 0) would terminate the process on Windows
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _leftovers(out: Path, kind: str) -> list[tuple[Path, int]]:
    pattern = re.compile(rf"^\.{re.escape(out.name)}\.{kind}-(\d+)-")
    found = []
    try:
        entries = list(out.parent.iterdir())
    except OSError:
        return []
    for entry in entries:
        match = pattern.match(entry.name)
        if match and entry.is_dir():
            found.append((entry, int(match.group(1))))
    return sorted(found)


def recover_interrupted(out: Path) -> None:
    """Undo what a killed export of `out` left behind (only exports whose process is gone)."""
    for path, pid in _leftovers(out, "old"):
        if _pid_alive(pid):
            continue
        if not out.exists():
            os.rename(path, out)  # killed between the two renames: the old export comes back
        else:
            shutil.rmtree(path, ignore_errors=True)
    for path, pid in _leftovers(out, "partial"):
        if not _pid_alive(pid):
            shutil.rmtree(path, ignore_errors=True)


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def check_destination(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ExportExistsError(f"{out} is a file, not a folder; choose another export folder.")
    if out.is_dir() and not overwrite and not _is_empty_dir(out):
        raise ExportExistsError(
            f"{out} already exists and is not empty; choose another folder, or replace it with "
            "--overwrite (File > Export dataset: 'Replace').")


def _sync_tree(root: Path) -> None:
    """fsync every file and folder, so the rename never publishes data still in the page cache."""
    for folder, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(folder, name), "rb") as stream:
                os.fsync(stream.fileno())
        _sync_dir(Path(folder))


def _sync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # Windows cannot open a folder; NTFS journals the rename anyway
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class StagedFolder:
    """`path` is where to build; `publish()` puts it in place of `out`; `discard()` removes it."""

    def __init__(self, out: str | os.PathLike, overwrite: bool = False):
        self.out = Path(out).expanduser().absolute()
        self.overwrite = overwrite
        try:
            self.out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InputError(f"cannot create {self.out.parent} ({error.strerror or error}).") from None
        recover_interrupted(self.out)
        check_destination(self.out, overwrite)
        try:
            self.path = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.partial-{os.getpid()}-",
                                              dir=self.out.parent))
        except OSError as error:
            raise InputError(f"cannot write in {self.out.parent} ({error.strerror or error}).") from None
        self.published = False

    def discard(self) -> None:
        if not self.published:
            shutil.rmtree(self.path, ignore_errors=True)

    def publish(self) -> Path:
        _sync_tree(self.path)
        out, retired = self.out, None
        check_destination(out, self.overwrite)  # again: something may have appeared meanwhile
        if _is_empty_dir(out):
            out.rmdir()
        elif out.exists():
            retired = out.parent / f".{out.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            os.rename(out, retired)
        try:
            os.rename(self.path, out)
        except OSError:
            if retired is not None:
                os.rename(retired, out)
            raise
        self.published = True
        _sync_dir(out.parent)
        if retired is not None:
            shutil.rmtree(retired, ignore_errors=True)
        return out
