"""Every file sterilog writes for a person (`-o`, backup, demo), done once and the same way.

- An existing target is refused unless `--force` is given (a signed copy is never replaced by
  accident). A symbolic link at the target counts as existing, and is never followed: with
  `--force` the link itself is replaced, not the file it points to.
- The bytes go to a private temporary file (mode 0600, `sterilog.tempfiles`) in the target's
  directory, are flushed to disk, and only then appear under the target's name, in one rename
  (or hard link, when nothing may be replaced). A failed write leaves the previous file intact.
- `-o -` streams to standard output where the format allows it (PDF, JSON); the confirmation
  then goes to standard error.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

import click

from sterilog import tempfiles
from sterilog.errors import UserError

STDOUT = "-"

F = TypeVar("F", bound=Callable[..., Any])


def force_option(func: F) -> F:
    """The shared `--force` flag of every command that writes a file."""
    return click.option(
        "--force",
        is_flag=True,
        help="Replace an existing file at the target (never followed if it is a link).",
    )(func)


@dataclass(frozen=True)
class Target:
    """Where an output goes: a checked path, or standard output (path None)."""

    path: Path | None
    force: bool = False
    shown: str = STDOUT

    @property
    def stdout(self) -> bool:
        return self.path is None

    def __str__(self) -> str:
        return "standard output" if self.path is None else self.shown


def check(
    raw: str,
    *,
    force: bool = False,
    stdout_ok: bool = False,
    json_mode: bool = False,
    option: str = "-o",
) -> Target:
    """Check an output target before any work is done; nothing is created here."""
    if not raw or not raw.strip():
        raise UserError(f"{option} must name a file")
    if raw == STDOUT:
        if not stdout_ok:
            raise UserError(
                f"{option} - (standard output) is not possible for this output; name a file"
            )
        if json_mode:
            raise UserError(
                f"{option} - writes the output itself to standard output; "
                "it cannot be combined with --json"
            )
        return Target(None, force, STDOUT)
    path = Path(raw).expanduser()
    absolute = path.absolute()
    if absolute.is_dir() and not absolute.is_symlink():
        raise UserError(f"{raw} is a directory; give a file name such as {path / 'report.pdf'}")
    parent = absolute.parent
    if not parent.is_dir():
        raise UserError(
            f"directory {str(parent)!r} does not exist; create it first or choose another {option}"
        )
    if os.path.lexists(absolute) and not force:
        what = "is a symbolic link" if absolute.is_symlink() else "already exists"
        raise UserError(
            f"{raw} {what}; choose a new file name, or pass --force to replace it "
            "(sterilog never writes through a link)"
        )
    return Target(absolute, force, raw)


def publish(tmp: Path, target: Target) -> None:
    """Move a finished private file into place: replace only with --force, never follow."""
    assert target.path is not None
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    if target.force:
        os.replace(tmp, target.path)  # rename(2) replaces a link itself, never its target
    else:
        try:
            os.link(tmp, target.path)  # fails if the target appeared meanwhile
        except FileExistsError:
            raise UserError(
                f"{target} already exists; choose a new name, or pass --force to replace it"
            ) from None
        except OSError:
            if os.path.lexists(target.path):
                raise UserError(f"{target} already exists; choose a new name") from None
            os.replace(tmp, target.path)
        else:
            tmp.unlink()
    fsync_dir(target.path.parent)


def fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes(target: Target, data: bytes) -> None:
    """Write `data` to the target: standard output, or a private temporary file renamed."""
    with open_binary(target) as fh:
        fh.write(data)


@contextmanager
def open_binary(target: Target) -> Iterator[IO[bytes]]:
    """A binary stream for the output; published only if the block completes."""
    if target.path is None:
        out = sys.stdout.buffer
        yield out
        out.flush()
        return
    fd, name = tempfiles.mkstemp(target.path.parent, target.path.name)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        publish(tmp, target)
    except BaseException:
        with suppress(OSError):
            tmp.unlink()
        raise
    finally:
        tempfiles.release(tmp)


def say(app: Any, data: dict[str, Any], text: str | list[str], target: Target) -> None:
    """Confirm a write: as usual, or on standard error when the output itself is on stdout."""
    if target.stdout:
        if app.json:
            return
        lines = [text] if isinstance(text, str) else text
        for line in lines:
            click.echo(line, err=True)
        return
    app.emit(data, text)
