"""`sterilog audit verify|log`."""

from __future__ import annotations

import json
import re
import sys

import click
from sqlalchemy import select

from sterilog.cli.app import App, pass_app
from sterilog.cli.params import INTEGER
from sterilog.clock import fmt_local, iso, parse_at
from sterilog.errors import IntegrityFailure, UserError
from sterilog.services import validate as v

ANCHOR = re.compile(r"^(\d{1,18}):([0-9a-f]{64})$")


def parse_anchor(raw: str) -> tuple[int, str]:
    match = ANCHOR.match(raw.strip())
    if not match:
        raise UserError(
            f"--anchor {raw!r} is not SEQ:HASH (a number, a colon, 64 lowercase hex characters)"
        )
    return int(match.group(1)), match.group(2)


@click.group("audit")
def audit_group() -> None:
    """The tamper-evident audit log: verify it, read it."""


@audit_group.command(
    "verify",
    epilog="Example: sterilog audit verify --anchor 1234:9f86d081884c7d659a2feaa0c55ad015"
    "a3bf4f1b2b0b822cd15d6c15b0f00a08",
)
@click.option(
    "--anchor",
    help="SEQ:HASH printed earlier (on a report): proves the log still contains that entry.",
)
@pass_app
def verify(app: App, anchor: str | None) -> None:
    """Recompute the hash chain and check every record against it. Exit 4 on any problem."""
    from sterilog import audit

    anchor_value = parse_anchor(anchor) if anchor is not None else None
    progress = None
    if sys.stderr.isatty() and not app.json:

        def progress(n: int) -> None:
            click.echo(f"\r  verified {n:,} entries...", err=True, nl=False)

    from sterilog import db
    from sterilog.errors import DatabaseError
    from sterilog.schema import present_tables

    app.clock  # noqa: B018 - a bad STERILOG_NOW is refused by every command, verify included
    # No clinic settings needed: verify must name a deleted settings row (exit 4), not stop at it.
    with db.read_session(app.engine()) as session:
        from sterilog.models import AUDITED

        ours = {m.__tablename__ for m in AUDITED} | {"audit_log", "alembic_version"}
        if not ours & set(present_tables(session.connection())):
            raise DatabaseError(
                "this database is not initialised for sterilog; run `sterilog init` first"
            )
        # the clock anomalies are found during verify's own walk (one pass over the log)
        now = app.record_clock(session).now
        result = audit.verify(session, anchor_value, progress=progress, now=now)
        anomalies = result.clock_anomalies
        training = db.is_training(app.engine()) is True
        if _settings_missing(session):
            from sterilog.services.base import DAMAGED

            result.problems.insert(0, audit.Problem("settings", DAMAGED))
    if progress is not None:
        click.echo("", err=True)
    data = {
        "ok": result.ok,
        "entries": result.entries,
        "head": result.head,
        "anchor": anchor,
        "anchor_ok": result.anchor_ok,
        "problems": [{"record": p.record, "message": p.message} for p in result.problems],
        # Clock anomalies do not break the chain (exit stays 0) but are listed.
        "clock_anomalies": [{"seq": a.seq, "at": a.at, "message": a.message} for a in anomalies],
        "training": training,
    }
    lines = [
        f"{'OK' if result.ok else 'FAILED'}: {result.entries} audit entries, head {result.head}"
    ]
    if anchor_value is not None and result.anchor_ok:
        lines.append(f"Anchor {anchor_value[0]} matches.")
    lines += [f"  {p.record}: {p.message}" for p in result.problems]
    if training:
        lines.append("TRAINING database: not a clinical record.")
    if anomalies:
        lines.append(f"Clock anomalies ({len(anomalies)}; the chain itself is intact):")
        lines += [f"  audit_log #{a.seq}: {a.message}" for a in anomalies]
    app.emit(data, lines)
    if not result.ok:
        first = result.problems[0]
        raise IntegrityFailure(
            f"audit verification failed ({len(result.problems)} problem(s)); first: "
            f"{first.record}: {first.message}"
        )


def _settings_missing(session: object) -> bool:
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    try:
        return session.execute(text("SELECT 1 FROM settings LIMIT 1")).first() is None  # type: ignore[attr-defined]
    except DBAPIError:
        return True


@audit_group.command("log", epilog="Example: sterilog audit log --since 2026-11-01 --limit 50")
@click.option("--since", help="Only entries at or after this time (ISO 8601; a date works).")
@click.option(
    "--limit", type=INTEGER, default=100, show_default=True, help="At most this many, newest last."
)
@pass_app
def log(app: App, since: str | None, limit: int) -> None:
    """Show audit entries: sequence, time, operator, action, records, hash."""
    from sterilog.models import AuditEntry

    v.number(limit, "--limit", low=0, high=10_000_000)
    with app.reading() as ctx:
        q = select(AuditEntry)
        if since is not None:
            q = q.where(AuditEntry.at >= parse_at(since, ctx.clinic.tz, "--since"))
        rows = list(ctx.session.execute(q.order_by(AuditEntry.seq.desc()).limit(limit)).scalars())
        rows.reverse()
        tz = ctx.clinic.tz
        entries = []
        lines = []
        for e in rows:
            recs = json.loads(e.records)
            names = [f"{r['table']}#{r['id']}" for r in recs if r.get("table")]
            entries.append(
                {
                    "seq": e.seq,
                    "at": iso(e.at),
                    "clock": e.clock,
                    "operator": e.operator,
                    "action": e.action,
                    "records": names,
                    "prev_hash": e.prev_hash,
                    "hash": e.hash,
                }
            )
            drill = f" [{e.clock}]" if e.clock not in ("system", "database") else ""
            lines.append(
                f"{e.seq:>7}  {fmt_local(e.at, tz)}{drill}  {e.operator or '-':<12} "
                f"{e.action:<22} {', '.join(names)[:60]}  {e.hash[:16]}"
            )
    app.emit({"entries": entries}, lines or ["(no entries)"])
