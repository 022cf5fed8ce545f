"""`sterilog notify` against a real local SMTP server (aiosmtpd) and a local HTTP server, both
started here on 127.0.0.1, on both backends (issue 16)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from conftest import Cli

DAY = "2026-11-24"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content.decode("utf-8", "replace"))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[int, _Inbox]]:
    from aiosmtpd.controller import Controller

    inbox = _Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


@pytest.fixture
def hook() -> Iterator[tuple[str, list[Any]]]:
    got: list[Any] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            got.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", got
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _configure(cli: Cli, port: int, url: str | None = None) -> None:
    cli.ok(
        "settings",
        "notify",
        "--smtp",
        f"127.0.0.1:{port}",
        "--from",
        "sterilog@studio.test",
        "--to",
        "boss@studio.test",
        "--to",
        "ann@studio.test",
        *(["--webhook", url] if url else []),
    )


def _positive_bi(cli: Cli) -> int:
    cli.ok("sterilizer", "add", "N1", "--model", "Classic", "--type", "N")
    out = cli.json(
        "cycle",
        "record",
        "--sterilizer",
        "N1",
        "--program",
        "134-3.5",
        "--temp-c",
        "134",
        "--hold-min",
        "3.5",
        "--ci",
        "pass",
        "--bi-lot",
        "SP-1",
        "--at",
        f"{DAY}T07:00:00Z",
    )
    cli.ok(
        "bi",
        "read",
        str(out["bi_id"]),
        "--result",
        "positive",
        "--control",
        "positive",
        "--at",
        f"{DAY}T08:00:00Z",
    )
    return int(out["bi_id"])


def test_digest_and_alert_once_a_day_dry_run_sends_nothing(
    cli: Cli, smtp: tuple[int, _Inbox], hook: tuple[str, list[Any]]
) -> None:
    port, inbox = smtp
    url, posted = hook
    bi = _positive_bi(cli)
    _configure(cli, port, url)
    before = cli.audit_count()
    dry = cli.ok("notify", "--dry-run")
    assert "Would send" in dry.stdout and f"BI {bi} read positive" in dry.stdout, dry.stdout
    assert inbox.messages == [] and posted == [] and cli.audit_count() == before

    first = cli.json("notify")
    assert first["channels"] == ["smtp", "webhook"]
    assert len(inbox.messages) == 1
    mail = inbox.messages[0]
    assert "POSITIVE spore test" in mail and "Due or overdue now" in mail, mail
    assert "ann@studio.test" in mail and "2 ALERT(S)" in mail
    assert "STERILIZER N1 LOCKED" in mail
    assert len(posted) == 1 and any(i["kind"] == "alert" for i in posted[0]["items"])
    assert cli.audit_count() == before + 1
    assert cli.json("audit", "verify")["ok"] is True

    again = cli.ok("notify", now=f"{DAY}T15:00:00Z")
    assert "Nothing due" in again.stdout
    assert len(inbox.messages) == 1 and len(posted) == 1

    # The next day the digest comes again (the sterilizer is still locked); the alert does not.
    cli.ok("notify", now="2026-11-25T09:00:00Z")
    assert len(inbox.messages) == 2
    assert "POSITIVE spore test" not in inbox.messages[1]
    assert "locked" in inbox.messages[1].lower()


def test_nothing_due_sends_nothing_and_exits_0(cli: Cli, smtp: tuple[int, _Inbox]) -> None:
    port, inbox = smtp
    _configure(cli, port)
    out = cli.ok("notify")
    assert "Nothing due" in out.stdout
    assert inbox.messages == []


def test_settings_are_new_rows_and_bad_input_is_refused(cli: Cli) -> None:
    before = cli.audit_count()
    for args, msg in (
        (["--smtp", "nohost"], "HOST:PORT"),
        (["--smtp", "h:25"], "--from"),
        (["--smtp", "h:25", "--from", "x", "--to", "a@b"], "not an e-mail"),
        (["--webhook", "ftp://x"], "http"),
        ([], "--smtp"),
    ):
        r = cli.fails("settings", "notify", *args)
        assert msg in r.stderr, (args, r.stderr)
    cli.fails("settings", "notify", "--webhook", "http://127.0.0.1:9/x", operator="nobody")
    assert cli.audit_count() == before
    a = cli.json("settings", "notify", "--webhook", "http://127.0.0.1:9/a")["id"]
    b = cli.json("settings", "notify", "--webhook", "http://127.0.0.1:9/b")["id"]
    assert b > a
    assert "--password" not in cli.ok("settings", "notify", "--help").stdout


def test_an_unreachable_server_is_exit_1_and_records_nothing(cli: Cli) -> None:
    _positive_bi(cli)
    _configure(cli, _free_port())
    before = cli.audit_count()
    r = cli.fails("notify")
    assert "cannot send e-mail" in r.stderr
    assert cli.audit_count() == before


def test_lockouts_and_a_failed_integrity_check_are_alerts(
    cli: Cli, hook: tuple[str, list[Any]]
) -> None:
    from sqlalchemy import text

    url, posted = hook
    cli.ok("settings", "notify", "--webhook", url)
    cli.ok("staff", "add", "ann", "--name", "Ann", "--role", "practitioner", "--pin",
           env={"STERILOG_NEW_PIN": "4821"})  # fmt: skip
    for _ in range(5):
        cli.fails("pack", "add", "P0", "--contents", "x", operator="ann",
                  env={"STERILOG_PIN": "0000"})  # fmt: skip
    cli.ok("notify")
    texts = [i["text"] for i in posted[-1]["items"] if i["kind"] == "alert"]
    assert any("STAFF LOCKED OUT: ann" in t for t in texts), texts
    assert not any("INTEGRITY" in t for t in texts), texts
    engine = cli.engine()
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE staff SET name = 'Forged' WHERE code = 'ann'"))
    finally:
        engine.dispose()
    cli.ok("notify")
    texts = [i["text"] for i in posted[-1]["items"] if i["kind"] == "alert"]
    assert [t for t in texts if "INTEGRITY CHECK FAILED" in t], texts
    assert not any("STAFF LOCKED OUT" in t for t in texts)  # sent once
