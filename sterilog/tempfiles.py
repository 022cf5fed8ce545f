"""Private temporary files next to an output (backup, export), never left behind for long.

A backup or an export is written under a temporary name in the target directory and renamed
into place when complete. If the process is killed in between, the half-written copy would stay
there, holding client references. So every temporary name starts with `.sterilog-tmp.`, is
created owner-only (0600 files, 0700 folders), and its creator holds an exclusive `flock` on it
for as long as it runs. Every later backup/export into that directory first removes each such
file whose lock it can take (its creator is gone), so a killed run's copy survives at most until
the next run. (Without flock, e.g. on Windows, the sweep is skipped.)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

PREFIX = ".sterilog-tmp."
_HELD: dict[str, int] = {}  # path -> fd holding its lock, for the life of the process

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def _lock(path: Path) -> None:
    if fcntl is None:
        return
    fd = os.open(path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    _HELD[str(path)] = fd


def release(path: Path) -> None:
    fd = _HELD.pop(str(path), None)
    if fd is not None:
        os.close(fd)


def sweep(directory: Path) -> list[Path]:
    """Remove temporary files/folders of dead sterilog runs in `directory`."""
    if fcntl is None:
        return []
    removed = []
    try:
        candidates = sorted(directory.glob(PREFIX + "*"))
    except OSError:
        return []
    for p in candidates:
        if p.name.endswith("-journal"):
            base = p.with_name(p.name[: -len("-journal")])
            if not base.exists():
                with contextlib.suppress(OSError):
                    p.unlink()
                    removed.append(p)
            continue
        if str(p) in _HELD or p.is_symlink():
            continue
        try:
            fd = os.open(p, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # a live run holds it
            with contextlib.suppress(OSError):
                if p.is_dir():
                    shutil.rmtree(p)
                else:
                    p.unlink()
                removed.append(p)
            with contextlib.suppress(OSError):
                Path(f"{p}-journal").unlink()
        finally:
            os.close(fd)
    return removed


def mkstemp(directory: Path, label: str) -> tuple[int, str]:
    """Like tempfile.mkstemp (mode 0600), after sweeping; the file stays locked until exit."""
    sweep(directory)
    fd, name = tempfile.mkstemp(prefix=f"{PREFIX}{label}.", suffix=".tmp", dir=directory)
    if hasattr(os, "fchmod"):
        os.fchmod(fd, 0o600)
    _lock(Path(name))
    return fd, name


def mkdtemp(directory: Path, label: str) -> str:
    """Like tempfile.mkdtemp (mode 0700), after sweeping; locked until exit."""
    sweep(directory)
    name = tempfile.mkdtemp(prefix=f"{PREFIX}{label}.", suffix=".tmp", dir=directory)
    _lock(Path(name))
    return name
