"""Issue 14, point 5: every output file done once, right (sterilog/output.py), both backends."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from conftest import Cli


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_report_refuses_existing_file_unless_force(cli: Cli, tmp_path: Path) -> None:
    target = tmp_path / "signed.pdf"
    target.write_bytes(b"signed copy")
    result = cli.fails(
        "report", "audit", "--from", "2026-11-01", "--to", "2026-11-24", "-o", str(target)
    )
    assert "already exists" in result.stderr and "--force" in result.stderr
    assert target.read_bytes() == b"signed copy"
    cli.ok(
        "report",
        "audit",
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-24",
        "-o",
        str(target),
        "--force",
    )
    assert target.read_bytes().startswith(b"%PDF")
    assert _mode(target) == 0o600


def test_new_report_is_private_and_leaves_no_temp(cli: Cli, tmp_path: Path) -> None:
    target = tmp_path / "a.pdf"
    cli.ok("report", "monthly", "--month", "2026-11", "-o", str(target))
    assert _mode(target) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".sterilog-tmp")] == []


def test_symlink_at_target_never_followed(cli: Cli, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    link = tmp_path / "out.pdf"
    link.symlink_to(victim)
    result = cli.fails("report", "monthly", "--month", "2026-11", "-o", str(link))
    assert "symbolic link" in result.stderr
    assert victim.read_text() == "keep me"
    # A dangling link is refused too (it would otherwise create its target).
    dangling = tmp_path / "d.pdf"
    dangling.symlink_to(tmp_path / "elsewhere.pdf")
    cli.fails("label", "load", "1", "-o", str(dangling))
    assert not (tmp_path / "elsewhere.pdf").exists()
    # With --force the link itself is replaced; the file it pointed to is untouched.
    cli.ok("report", "monthly", "--month", "2026-11", "-o", str(link), "--force")
    assert not link.is_symlink() and link.read_bytes().startswith(b"%PDF")
    assert victim.read_text() == "keep me"


def test_dash_streams_pdf_to_stdout(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli.run("report", "monthly", "--month", "2026-11", "-o", "-")
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes.startswith(b"%PDF")
    assert "written to standard output" in result.stderr
    assert not (tmp_path / "-").exists()
    cli.fails("--json", "report", "monthly", "--month", "2026-11", "-o", "-")


def test_export_json_to_stdout_and_refuses_existing(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    args = ("export", "--from", "2026-11-01", "--to", "2026-11-24", "--format", "json")
    result = cli.run(*args, "-o", "-")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["meta"]["from"] == "2026-11-01"
    assert not (tmp_path / "-").exists()
    target = tmp_path / "e.json"
    target.write_text("previous")
    cli.fails(*args, "-o", str(target))
    assert target.read_text() == "previous"
    cli.ok(*args, "-o", str(target), "--force")
    assert json.loads(target.read_text())["meta"]["to"] == "2026-11-24"
    assert _mode(target) == 0o600
    link = tmp_path / "csvlink"
    (tmp_path / "realdir").mkdir()
    link.symlink_to(tmp_path / "realdir")
    cli.fails(
        "export", "--from", "2026-11-01", "--to", "2026-11-24", "--format", "csv", "-o", str(link)
    )
    assert list((tmp_path / "realdir").iterdir()) == []


def test_backup_force_and_symlink(cli: Cli, tmp_path: Path) -> None:
    if cli.backend != "sqlite":
        cli.fails("backup", str(tmp_path / "b.db"))  # pg_dump advice, exit 1
        return
    victim = tmp_path / "victim"
    victim.write_text("x")
    link = tmp_path / "b.db"
    link.symlink_to(victim)
    cli.fails("backup", str(link))
    assert victim.read_text() == "x"
    cli.ok("backup", str(link), "--force")
    assert not link.is_symlink() and _mode(link) == 0o600
    assert victim.read_text() == "x"


def test_failed_write_keeps_previous_report(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "r.pdf"
    target.write_bytes(b"previous")
    real_fsync = os.fsync

    def broken(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken)
    result = cli.run("report", "monthly", "--month", "2026-11", "-o", str(target), "--force")
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert result.exit_code == 1 and "No space left" in result.stderr
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".sterilog-tmp")] == []
