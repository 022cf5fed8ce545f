"""Security (SPEC §5, §7): tampering on both backends beyond rooms, PINs, roles, deactivation.

Tampering is done the way a person with the file or a database login would do it: plain SQL
through another connection (the `sqlite3` shell or `psql`), not through sterilog.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from autoclave_samples import samples_dir
from clinic import GTIN, hri
from conftest import Cli, fresh_url, rearm_triggers
from sqlalchemy import text

from sterilog.cli import main

T0 = "2026-11-24T07:00:00+00:00"




def exists(name: str) -> bool:
    return main.get_command(None, name) is not None  # type: ignore[arg-type]


def need(name: str) -> None:
    if not exists(name):
        pytest.skip(f"`sterilog {name}` does not exist yet in this build")


# --- a clinic with one of every record type ------------------------------------------------------


def record_a_day(cli: Cli) -> None:
    """Sessions, a refusal, passing and failing cycles, a BI read, units, cleans, an incident."""
    cli.ok("staff", "add", "ann", "--name", "Ann", "--role", "practitioner")
    cli.ok("staff", "add", "ivy", "--name", "Ivy", "--role", "inspector")
    cli.ok("room", "add", "R1")
    cli.ok("device", "add", "SN-1", "--model", "Pen 4")
    cli.ok("sterilizer", "add", "AC1", "--model", "Vacuklav", "--type", "B")
    cli.ok("pack", "add", "P1", "--contents", "tweezers")
    cli.ok("pack", "add", "P2", "--contents", "bowl")
    cli.ok("disinfectant", "add", "Clinell", "--contact-min", "1")
    cli.ok("cartridge", "receive", hri("LOTA", "0001"), hri("LOTA", "0002"), "--supplier", "Acme")
    cli.ok("air-removal", "record", "--sterilizer", "AC1", "--result", "pass", "--at", T0)
    # Load 1 passes and carries BI 1; load 2 fails (131 °C), its pack P2 is not sterile.
    cli.ok(
        "cycle",
        "record",
        "--sterilizer",
        "AC1",
        "--program",
        "134-3.5",
        "--temp-c",
        "134",
        "--hold-min",
        "3.5",
        "--ci",
        "pass",
        "--pack",
        "P1",
        "--bi-lot",
        "BI-1",
        "--at",
        "2026-11-24T07:30:00+00:00",
    )
    cli.ok(
        "cycle",
        "record",
        "--sterilizer",
        "AC1",
        "--program",
        "134-3.5",
        "--temp-c",
        "131",
        "--hold-min",
        "3.5",
        "--ci",
        "pass",
        "--pack",
        "P2",
        "--at",
        "2026-11-24T07:45:00+00:00",
    )
    cli.ok(
        "bi",
        "read",
        "1",
        "--result",
        "negative",
        "--control",
        "positive",
        "--at",
        "2026-11-24T08:30:00+00:00",
    )
    cli.ok(
        "clean",
        "room",
        "R1",
        "--kind",
        "between-clients",
        "--disinfectant",
        "Clinell",
        "--at",
        "2026-11-24T08:40:00+00:00",
    )
    cli.ok(
        "clean", "device", "SN-1", "--disinfectant", "Clinell", "--at", "2026-11-24T08:40:00+00:00"
    )
    out = cli.json(
        "session",
        "start",
        "--room",
        "R1",
        "--device",
        "SN-1",
        "--cartridge",
        hri("LOTA", "0001"),
        "--pack",
        "P1",
        "--client",
        "C-0042",
        operator="ann",
    )
    assert out["session_id"] == 1
    out = cli.json(
        "session",
        "start",
        "--room",
        "R1",
        "--device",
        "SN-1",
        "--cartridge",
        hri("LOTA", "0002"),
        "--pack",
        "P2",
        "--client",
        "C-0043",
        operator="ann",
        expect=3,
    )
    assert out["refusal_id"] == 1
    cli.ok(
        "incident", "record", "--session", "1", "--kind", "pain", "--note", "sore", operator="ann"
    )
    cli.ok("session", "end", "1", operator="ann", now="2026-11-24T09:30:00+00:00")


_templates: dict[str, str] = {}


@pytest.fixture
def day(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Cli:
    """A copy of a recorded clinic day (built once per backend, copied per test)."""
    if backend == "sqlite":
        pg = None
        base: str | Path = request.getfixturevalue("sqlite_template")
    else:
        pg = request.getfixturevalue("pg_server")
        if pg is None:
            pytest.skip("PostgreSQL is not available here")
        base = request.getfixturevalue("pg_template")
    if backend not in _templates:
        holder = tmp_path.parent / f"security-day-{backend}"
        holder.mkdir(exist_ok=True)
        url = fresh_url(backend, holder, pg, template=base)
        record_a_day(Cli(url=url, backend=backend))
        _templates[backend] = url
    url = _templates[backend]
    template: str | Path = (
        Path(url.removeprefix("sqlite:///")) if backend == "sqlite" else url.rsplit("/", 1)[1]
    )
    return Cli(url=fresh_url(backend, tmp_path, pg, template=template), backend=backend)


def tamper(cli: Cli, *statements: str, **params: Any) -> None:
    engine = cli.engine()
    try:
        with engine.begin() as conn:
            for s in statements:
                conn.execute(text(s), params)
    finally:
        engine.dispose()


def query(cli: Cli, sql: str) -> Any:
    engine = cli.engine()
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).all()
    finally:
        engine.dispose()


def drop_triggers(cli: Cli) -> list[str]:
    if cli.backend == "sqlite":
        return ["DROP TRIGGER audit_log_no_update", "DROP TRIGGER audit_log_no_delete"]
    return ["DROP TRIGGER audit_log_no_update_delete ON audit_log"]


def verify_fails(cli: Cli, *args: str) -> dict[str, Any]:
    """`audit verify` in JSON and in text: exit 4, and the first problem named on stderr."""
    out: dict[str, Any] = cli.json("audit", "verify", *args, expect=4)
    assert out["ok"] is False and out["problems"]
    r = cli.run("audit", "verify", *args)
    assert r.exit_code == 4, r.output
    assert r.stdout.startswith("FAILED")
    first = out["problems"][0]
    assert r.stderr.startswith("Error: audit verification failed")
    assert f"{first['record']}: {first['message']}" in r.stderr
    return out


def records(out: dict[str, Any]) -> list[str]:
    return [p["record"] for p in out["problems"]]


def test_the_recorded_day_verifies_before_anyone_tampers(day: Cli) -> None:
    out = day.json("audit", "verify")
    assert out["ok"] is True and out["entries"] == day.audit_count()
    counts = {
        t: query(day, f"SELECT count(*) FROM {t}")[0][0]
        for t in ("sessions", "refusals", "cycles", "bi_reads", "cartridge_units", "incidents")
    }
    assert counts == {
        "sessions": 1,
        "refusals": 1,
        "cycles": 2,
        "bi_reads": 1,
        "cartridge_units": 2,
        "incidents": 1,
    }


# --- rows changed, deleted, inserted behind the tool's back --------------------------------------


def test_a_session_whose_client_was_changed_is_named(day: Cli) -> None:
    tamper(day, "UPDATE sessions SET client = 'C-9999' WHERE id = 1")
    out = verify_fails(day)
    assert records(out) == ["sessions #1"]
    assert "changed: client" in out["problems"][0]["message"]


def test_a_failed_cycle_made_to_look_passed_is_named(day: Cli) -> None:
    tamper(day, "UPDATE cycles SET temp_c = 134.0, passed = :yes WHERE id = 2", yes=True)
    out = verify_fails(day)
    assert records(out) == ["cycles #2"]
    assert "changed: passed, temp_c" in out["problems"][0]["message"]


def test_a_cycle_temperature_nudged_by_a_tenth_of_a_degree_is_named(day: Cli) -> None:
    tamper(day, "UPDATE cycles SET temp_c = 134.1 WHERE id = 1")
    out = verify_fails(day)
    assert records(out) == ["cycles #1"]
    assert "changed: temp_c" in out["problems"][0]["message"]


def test_a_deleted_refusal_is_named(day: Cli) -> None:
    tamper(day, "DELETE FROM refusals WHERE id = 1")
    out = verify_fails(day)
    assert records(out) == ["refusals #1"]
    assert "deleted" in out["problems"][0]["message"]


def test_a_deleted_incident_is_named(day: Cli) -> None:
    tamper(day, "DELETE FROM incidents WHERE id = 1")
    assert records(verify_fails(day)) == ["incidents #1"]


def test_an_inserted_cartridge_unit_is_named(day: Cli) -> None:
    tamper(
        day,
        "INSERT INTO cartridge_units (lot_id, receipt_id, serial, recorded_at) "
        "VALUES (1, 1, 'FORGED', '2026-11-24 09:00:00')",
    )
    (new_id,) = query(day, "SELECT id FROM cartridge_units WHERE serial = 'FORGED'")[0]
    out = verify_fails(day)
    assert records(out) == [f"cartridge_units #{new_id}"]
    assert "inserted" in out["problems"][0]["message"]


def test_an_inserted_negative_bi_read_is_named(day: Cli) -> None:
    tamper(
        day,
        "INSERT INTO bi_reads (bi_id, result, control, valid, at, recorded_at, "
        "operator_id) VALUES (1, 'negative', 'positive', :yes, '2026-11-24 08:35:00', "
        "'2026-11-24 08:35:00', 1)",
        yes=True,
    )
    out = verify_fails(day)
    assert records(out) == ["bi_reads #2"]
    assert "inserted" in out["problems"][0]["message"]


def test_a_bi_read_flipped_from_positive_to_negative_is_named(day: Cli) -> None:
    tamper(day, "UPDATE bi_reads SET result = 'positive' WHERE id = 1")
    out = verify_fails(day)
    assert records(out) == ["bi_reads #1"]
    assert "changed: result" in out["problems"][0]["message"]


def test_a_session_end_moved_in_time_is_named(day: Cli) -> None:
    tamper(day, "UPDATE session_ends SET at = '2026-11-24 08:00:00' WHERE id = 1")
    out = verify_fails(day)
    assert records(out) == ["session_ends #1"]
    assert "changed: at" in out["problems"][0]["message"]


def test_a_practitioner_promoted_to_manager_in_the_database_is_named(day: Cli) -> None:
    (ann_id,) = query(day, "SELECT id FROM staff WHERE code = 'ann'")[0]
    tamper(day, "UPDATE staff SET role = 'manager' WHERE code = 'ann'")
    out = verify_fails(day)
    assert records(out) == [f"staff #{ann_id}"]
    assert "changed: role" in out["problems"][0]["message"]


def test_loosened_clinic_rules_in_the_database_are_named(day: Cli) -> None:
    tamper(day, "UPDATE settings SET rules_toml = rules_toml || ' ' WHERE id = 1")
    out = verify_fails(day)
    assert records(out) == ["settings #1"]
    assert "changed: rules_toml" in out["problems"][0]["message"]


def test_a_deactivation_deleted_to_bring_someone_back_is_named(day: Cli) -> None:
    day.ok("staff", "deactivate", "ivy", "--reason", "left")
    (row_id,) = query(day, "SELECT max(id) FROM staff_deactivations")[0]
    tamper(day, "DELETE FROM staff_deactivations")
    out = verify_fails(day)
    assert records(out) == [f"staff_deactivations #{row_id}"]


def test_a_void_slipped_in_to_hide_a_failed_load_is_named(day: Cli) -> None:
    tamper(
        day,
        "INSERT INTO voids (kind, record_id, reason, at, recorded_at, operator_id) "
        "VALUES ('cycle', 2, 'oops', '2026-11-24 09:00:00', '2026-11-24 09:00:00', 1)",
    )
    (void_id,) = query(day, "SELECT id FROM voids")[0]
    out = verify_fails(day)
    assert records(out) == [f"voids #{void_id}"]
    assert "inserted" in out["problems"][0]["message"]


# --- the audit log itself ------------------------------------------------------------------------


def test_the_database_itself_refuses_to_change_or_remove_audit_entries(day: Cli) -> None:
    before = day.audit_count()
    statements = [
        "UPDATE audit_log SET operator = 'x' WHERE seq = 2",
        "DELETE FROM audit_log WHERE seq = 2",
    ]
    if day.backend == "postgresql":
        statements.append("TRUNCATE audit_log")
    for stmt in statements:
        with pytest.raises(Exception, match="append-only"):
            tamper(day, stmt)
    assert day.audit_count() == before
    assert day.json("audit", "verify")["ok"] is True


@pytest.mark.pg
def test_truncate_is_still_refused_on_postgresql_after_the_row_trigger_is_dropped(
    day: Cli,
) -> None:
    if day.backend != "postgresql":
        pytest.skip("TRUNCATE triggers are PostgreSQL's")
    tamper(day, *drop_triggers(day))
    with pytest.raises(Exception, match="append-only"):
        tamper(day, "TRUNCATE audit_log")
    assert records(verify_fails(day)) == ["trigger audit_log.audit_log_no_update_delete"]


def test_a_log_truncated_after_dropping_the_triggers_leaves_records_it_no_longer_covers(
    day: Cli,
) -> None:
    (seq,) = query(day, "SELECT seq FROM audit_log WHERE action = 'session.start'")[0]
    tamper(day, *drop_triggers(day), f"DELETE FROM audit_log WHERE seq >= {seq}")
    out = verify_fails(day)
    named = records(out)
    assert "sessions #1" in named and "refusals #1" in named and "incidents #1" in named
    assert "session_ends #1" in named
    dropped = [p for p in out["problems"] if p["record"].startswith("trigger ")]
    assert dropped, "the dropped triggers are part of the schema and must be named"
    for p in out["problems"]:
        if p not in dropped:
            assert "inserted behind the tool's back" in p["message"]


def test_an_audit_log_emptied_entirely_leaves_every_record_named(day: Cli) -> None:
    wipe = "TRUNCATE audit_log" if day.backend == "postgresql" else "DELETE FROM audit_log"
    extra = ["DROP TRIGGER audit_log_no_truncate ON audit_log"] if day.backend != "sqlite" else []
    tamper(day, *drop_triggers(day), *extra, wipe)
    out = verify_fails(day)
    assert out["entries"] == 0
    assert {"settings #1", "staff #1", "sessions #1", "cycles #1"} <= set(records(out))


def test_an_entry_removed_from_the_middle_of_the_log_is_named(day: Cli) -> None:
    (seq,) = query(
        day, "SELECT seq FROM audit_log WHERE action = 'cycle.record' ORDER BY seq LIMIT 1"
    )[0]
    tamper(day, *drop_triggers(day), f"DELETE FROM audit_log WHERE seq = {seq}",
           *rearm_triggers(day.backend))
    named = records(verify_fails(day))
    assert f"audit_log #{seq}" in named
    assert "cycles #1" in named  # the load that entry recorded is now unaccounted for


def test_two_audit_entries_swapped_break_the_chain_where_the_order_changed(day: Cli) -> None:
    tamper(
        day,
        *drop_triggers(day),
        "UPDATE audit_log SET seq = 1000 WHERE seq = 3",
        "UPDATE audit_log SET seq = 3 WHERE seq = 4",
        "UPDATE audit_log SET seq = 4 WHERE seq = 1000",
        *rearm_triggers(day.backend),
    )
    named = records(verify_fails(day))
    assert named[0] == "audit_log #3"


def test_an_audit_entry_whose_time_was_edited_is_named(day: Cli) -> None:
    tamper(
        day,
        *drop_triggers(day),
        "UPDATE audit_log SET at = '2026-11-20 09:00:00' WHERE action = 'session.start'",
        *rearm_triggers(day.backend),
    )
    (seq,) = query(day, "SELECT seq FROM audit_log WHERE action = 'session.start'")[0]
    out = verify_fails(day)
    assert records(out)[0] == f"audit_log #{seq}"
    assert "entry altered" in out["problems"][0]["message"]


def cut_log_back(cli: Cli, keep_through: int) -> None:
    """A careful forger: remove every entry after `keep_through` AND every row those entries
    recorded, newest first, so that what is left is a perfectly consistent shorter history."""
    rows = query(
        cli, f"SELECT seq, records FROM audit_log WHERE seq > {keep_through} ORDER BY seq DESC"
    )
    statements = drop_triggers(cli)
    for seq, recs in rows:
        for item in reversed(json.loads(recs)):
            if item.get("table"):
                statements.append(f"DELETE FROM {item['table']} WHERE id = {int(item['id'])}")
        statements.append(f"DELETE FROM audit_log WHERE seq = {seq}")
    tamper(cli, *statements, *rearm_triggers(cli.backend))


def test_a_log_cut_back_to_before_a_printed_anchor_is_caught_only_by_the_anchor(
    day: Cli,
) -> None:
    head = day.json("audit", "verify")["head"]  # printed on a report
    anchor_seq = int(head.split(":")[0])
    (start_seq,) = query(day, "SELECT seq FROM audit_log WHERE action = 'session.start'")[0]
    cut_log_back(day, start_seq - 1)  # the treatment of C-0042 never happened
    assert query(day, "SELECT count(*) FROM sessions")[0][0] == 0
    plain = day.json("audit", "verify")
    assert plain["ok"] is True  # a consistent shorter history: only the anchor can tell
    out = verify_fails(day, "--anchor", head)
    assert out["anchor_ok"] is False
    assert records(out) == [f"audit_log #{anchor_seq}"]
    assert "cut back or replaced" in out["problems"][0]["message"]


def rechain_from(cli: Cli, seq_from: int, edit: dict[str, Any]) -> None:
    """A forger who knows the documented hash recipe: change a row, rewrite what the audit
    entry recorded for it, and recompute every hash from there to the head."""
    import datetime as dt

    from sterilog.audit import canonical, entry_hash

    rows = query(
        cli,
        "SELECT seq, at, clock, operator, action, records "
        f"FROM audit_log WHERE seq >= {seq_from} ORDER BY seq",
    )
    (prev,) = query(cli, f"SELECT hash FROM audit_log WHERE seq = {seq_from - 1}")[0]
    statements = drop_triggers(cli)
    params: dict[str, Any] = {}
    for i, (seq, at, clock, operator, action, recs) in enumerate(rows):
        items = json.loads(recs)
        for item in items:
            if item.get("table") == edit["table"] and item["id"] == edit["id"]:
                item["content"].update(edit["content"])
        new_recs = canonical(items)
        when = at if isinstance(at, dt.datetime) else dt.datetime.fromisoformat(str(at))
        new_hash = entry_hash(prev, seq, when, clock, operator, action, new_recs)
        params[f"r{i}"], params[f"p{i}"], params[f"h{i}"] = new_recs, prev, new_hash
        statements.append(
            f"UPDATE audit_log SET records = :r{i}, prev_hash = :p{i}, hash = :h{i} "
            f"WHERE seq = {seq}"
        )
        prev = new_hash
    sets = ", ".join(f"{k} = :v_{k}" for k in edit["content"])
    params.update({f"v_{k}": v for k, v in edit["content"].items()})
    statements.append(f"UPDATE {edit['table']} SET {sets} WHERE id = {edit['id']}")
    tamper(cli, *statements, *rearm_triggers(cli.backend), **params)


def test_a_whole_new_chain_recomputed_by_a_forger_is_caught_only_by_the_anchor(
    day: Cli,
) -> None:
    head = day.json("audit", "verify")["head"]
    (start_seq,) = query(day, "SELECT seq FROM audit_log WHERE action = 'session.start'")[0]
    rechain_from(day, start_seq, {"table": "sessions", "id": 1, "content": {"client": "C-X"}})
    assert query(day, "SELECT client FROM sessions WHERE id = 1")[0][0] == "C-X"
    # The documented limit: a chain recomputed from scratch is internally consistent.
    assert day.json("audit", "verify")["ok"] is True
    out = verify_fails(day, "--anchor", head)
    assert out["anchor_ok"] is False
    assert records(out) == [f"audit_log #{head.split(':')[0]}"]
    assert "does not match the anchor" in out["problems"][0]["message"]


# --- PINs ----------------------------------------------------------------------------------------


def pin_hash(cli: Cli, code: str) -> str:
    return str(query(cli, f"SELECT pin_hash FROM staff WHERE code = '{code}'")[0][0])


def add_with_pin(cli: Cli, code: str, pin: str, role: str = "practitioner") -> None:
    cli.ok(
        "staff",
        "add",
        code,
        "--name",
        code.title(),
        "--role",
        role,
        "--pin",
        env={"STERILOG_NEW_PIN": pin},
    )


def test_pins_are_stored_only_as_salted_scrypt_hashes(cli: Cli) -> None:
    add_with_pin(cli, "ann", "4821")
    add_with_pin(cli, "bob", "4821")
    a, b = pin_hash(cli, "ann"), pin_hash(cli, "bob")
    assert a != b  # salted: the same PIN never gives the same hash
    for stored in (a, b):
        scheme, n, r, p, salt, digest = stored.split("$")
        assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
        assert len(bytes.fromhex(salt)) == 16 and len(digest) == 64
        expect = hashlib.scrypt(b"4821", salt=bytes.fromhex(salt), n=16384, r=8, p=1, dklen=32)
        assert digest == expect.hex()
    # The PIN itself appears nowhere in the database, the audit log included.
    for (recs,) in query(cli, "SELECT records FROM audit_log"):
        assert "4821" not in recs
    assert cli.json("staff", "list")["staff"][1]["pin"] is True


def test_the_audit_log_keeps_only_a_digest_of_a_pin_hash_and_catches_a_swapped_hash(
    cli: Cli,
) -> None:
    """Someone with the file sets the manager's PIN hash to one whose PIN they know, to sign
    as them: verify names the staff row. The log itself never carries the hash."""
    add_with_pin(cli, "ann", "4821")
    add_with_pin(cli, "mgr", "1111", role="manager")
    for (recs,) in query(cli, "SELECT records FROM audit_log"):
        assert "scrypt$" not in recs
    (mgr_id,) = query(cli, "SELECT id FROM staff WHERE code = 'mgr'")[0]
    tamper(cli, "UPDATE staff SET pin_hash = :h WHERE code = 'mgr'", h=pin_hash(cli, "ann"))
    cli.ok("room", "add", "R1", operator="mgr", env={"STERILOG_PIN": "4821"})  # it works...
    out = verify_fails(cli)
    assert records(out) == [f"staff #{mgr_id}"]  # ...but it is caught
    assert "changed: pin_hash" in out["problems"][0]["message"]


def test_a_missing_or_wrong_pin_writes_nothing_but_the_failed_attempt(cli: Cli) -> None:
    add_with_pin(cli, "ann", "4821")
    before = cli.audit_count()
    r = cli.fails("pack", "add", "P1", "--contents", "x", operator="ann")
    assert "ann has a PIN" in r.stderr and "STERILOG_PIN" in r.stderr
    r = cli.fails(
        "pack", "add", "P1", "--contents", "x", operator="ann", env={"STERILOG_PIN": "1234"}
    )
    assert "wrong PIN for ann" in r.stderr
    assert cli.json("pack", "list")["packs"] == []
    assert cli.audit_count() == before + 2
    rows = query(
        cli, f"SELECT action, operator, records FROM audit_log WHERE seq > {before} ORDER BY seq"
    )
    assert [(a, o) for a, o, _ in rows] == [("auth.failed", "ann"), ("auth.failed", "ann")]
    details = [json.loads(recs) for _, _, recs in rows]
    # A missing PIN is an event only; a wrong one is a `failed` PIN event (it counts towards
    # the lockout) that carries no hash and not the guess.
    assert details[0][0]["table"] is None and details[0][0]["content"]["pin"] == "missing"
    assert [(i["table"], i["content"]["kind"], i["content"]["pin_hash"]) for i in details[1]] == [
        ("pin_events", "failed", None)
    ]
    assert "1234" not in json.dumps(details)  # the wrong guess is not kept
    assert cli.json("audit", "verify")["ok"] is True
    cli.ok("pack", "add", "P1", "--contents", "x", operator="ann", env={"STERILOG_PIN": "4821"})


def test_a_pin_is_checked_for_every_writing_command_not_only_some(cli: Cli) -> None:
    add_with_pin(cli, "boss2", "9999", role="manager")
    before = cli.audit_count()
    for args in (
        ("room", "add", "R1"),
        ("pack", "add", "P1", "--contents", "x"),
        ("staff", "add", "x", "--name", "X", "--role", "inspector"),
        ("disinfectant", "add", "D", "--contact-min", "1"),
    ):
        r = cli.fails(*args, operator="boss2", env={"STERILOG_PIN": "0000"})
        assert "wrong PIN" in r.stderr, args
    assert cli.audit_count() == before + 4  # four failed attempts, nothing else


def test_reads_do_not_ask_for_a_pin(cli: Cli) -> None:
    add_with_pin(cli, "ann", "4821")
    before = cli.audit_count()
    cli.ok("room", "list", operator="ann")
    cli.ok("status", operator="ann")
    assert cli.audit_count() == before


def test_staff_add_pin_needs_a_terminal_or_sterilog_new_pin(cli: Cli) -> None:
    before = cli.audit_count()
    r = cli.fails("staff", "add", "ann", "--name", "Ann", "--role", "practitioner", "--pin")
    assert "STERILOG_NEW_PIN" in r.stderr
    for bad in ("12", "x" * 65, "12\x0134"):
        cli.fails(
            "staff",
            "add",
            "ann",
            "--name",
            "Ann",
            "--role",
            "practitioner",
            "--pin",
            env={"STERILOG_NEW_PIN": bad},
        )
    assert cli.audit_count() == before
    assert [s["id"] for s in cli.json("staff", "list")["staff"]] == ["boss"]


def test_a_pin_is_not_needed_from_someone_without_one_and_sterilog_pin_does_not_matter(
    cli: Cli,
) -> None:
    cli.ok("staff", "add", "ann", "--name", "Ann", "--role", "practitioner")
    cli.ok("pack", "add", "P1", "--contents", "x", operator="ann", env={"STERILOG_PIN": "nope"})


# --- PIN at a real terminal (pty) ----------------------------------------------------------------


def run_in_pty(
    cli: Cli, argv: list[str], answers: list[str], operator: str, timeout: float = 60
) -> tuple[int, str]:
    """Run `python -m sterilog` with a pseudo-terminal as its controlling terminal, answering
    each prompt in turn; returns (exit code, everything the terminal showed)."""
    import pty

    env = {
        **os.environ,
        "STERILOG_DB": cli.url,
        "STERILOG_OPERATOR": operator,
        "STERILOG_NOW": cli.now,
        "STERILOG_PIN": "",
        "STERILOG_NEW_PIN": "",
    }
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.chdir(Path(__file__).parent)
        os.execve(sys.executable, [sys.executable, "-m", "sterilog", *argv], env)
    shown = b""
    pending = list(answers)
    answered_upto = 0
    deadline = time.monotonic() + timeout
    finished = False
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""  # EIO: the child closed the terminal
            if not chunk:
                finished = True
                break
            shown += chunk
            # Answer a prompt only once it is fully shown: getpass flushes typed-ahead input.
            if pending and len(shown) > answered_upto and shown.endswith(b": "):
                os.write(fd, (pending.pop(0) + "\n").encode())
                answered_upto = len(shown)
    finally:
        if not finished:
            os.kill(pid, 9)
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert finished, f"the command did not finish at the terminal; it showed: {shown!r}"
    return os.waitstatus_to_exitcode(status), shown.decode(errors="replace")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX terminals only")
def test_at_a_terminal_the_pin_is_asked_hidden_and_a_wrong_one_is_audited(cli: Cli) -> None:
    add_with_pin(cli, "ann", "4821")
    code, shown = run_in_pty(cli, ["pack", "add", "P1", "--contents", "x"], ["4821"], "ann")
    assert code == 0, shown
    assert "PIN for ann" in shown and "4821" not in shown  # asked, not echoed
    before = cli.audit_count()
    code, shown = run_in_pty(cli, ["pack", "add", "P2", "--contents", "x"], ["0000"], "ann")
    assert code == 1, shown
    assert "wrong PIN" in shown and "0000" not in shown and "Traceback" not in shown
    assert cli.audit_count() == before + 1
    assert [p["id"] for p in cli.json("pack", "list")["packs"]] == ["P1"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX terminals only")
def test_at_a_terminal_staff_add_pin_asks_twice_and_stores_only_the_hash(cli: Cli) -> None:
    code, shown = run_in_pty(
        cli,
        ["staff", "add", "ann", "--name", "Ann", "--role", "practitioner", "--pin"],
        ["7351", "7351"],
        "boss",
    )
    assert code == 0, shown
    assert "7351" not in shown and "New PIN for ann" in shown
    stored = pin_hash(cli, "ann")
    assert stored.startswith("scrypt$") and "7351" not in stored
    cli.ok("pack", "add", "P1", "--contents", "x", operator="ann", env={"STERILOG_PIN": "7351"})


# --- roles on every writing command --------------------------------------------------------------

MANAGER_ONLY = "manager"
DAILY = "daily"

# (command, who may run it). Run in this order by the allowed role, each succeeds; the order
# makes every command's arguments valid, so a refusal can only be about the role.
WRITES: list[tuple[tuple[str, ...], str]] = [
    (("staff", "add", "zed", "--name", "Zed", "--role", "practitioner"), MANAGER_ONLY),
    (("staff", "pin", "zed"), MANAGER_ONLY),  # another's PIN: a manager's reset
    (("staff", "unlock", "zed"), MANAGER_ONLY),
    (("staff", "deactivate", "zed", "--reason", "left"), MANAGER_ONLY),
    (("staff", "reinstate", "zed"), MANAGER_ONLY),  # issue 14
    (("staff", "update", "zed", "--license-expires", "2030-01-01"), MANAGER_ONLY),
    (("settings", "scanner-gs", "~"), MANAGER_ONLY),
    (("room", "add", "R2"), MANAGER_ONLY),
    (("device", "add", "SN-2", "--model", "Pen 4"), MANAGER_ONLY),
    (("device", "retire", "SN-2", "--reason", "motor noise"), MANAGER_ONLY),
    (("device", "reinstate", "SN-2"), MANAGER_ONLY),  # issue 14
    (("device", "update", "SN-2", "--max-depth-mm", "2"), MANAGER_ONLY),
    (("sterilizer", "add", "AC2", "--model", "Little", "--type", "N"), MANAGER_ONLY),
    (("sterilizer", "program", "AC2", "fast", "--temp-c", "134", "--hold-min", "4"), MANAGER_ONLY),
    (("sterilizer", "service", "AC2", "--note", "door seal"), DAILY),
    (("sterilizer", "update", "AC2", "--serial", "601362"), MANAGER_ONLY),
    (("sterilizer", "program", "AC2", "univ", "--temp-c", "134", "--hold-min", "3"), MANAGER_ONLY),
    (("attach", "sterilizer", "AC2", "dac-universal/LICENSE"), DAILY),
    (("pack", "add", "P3", "--contents", "x"), DAILY),
    (("disinfectant", "add", "Wipes", "--contact-min", "2"), DAILY),
    (("disinfectant", "update", "Wipes", "--contact-min", "3"), MANAGER_ONLY),  # issue 14
    (("cartridge", "receive", hri("LOTC", "0001"), hri("LOTC", "0002")), DAILY),
    (("cartridge", "discard", hri("LOTC", "0002"), "--reason", "dropped"), DAILY),
    (("cartridge", "recall", "--gtin", GTIN, "--lot", "LOTC", "--reason", "FSN-1"), MANAGER_ONLY),
    (("air-removal", "record", "--sterilizer", "AC1", "--result", "pass"), DAILY),
    (
        (
            "cycle",
            "record",
            "--sterilizer",
            "AC1",
            "--program",
            "134-3.5",
            "--temp-c",
            "134",
            "--hold-min",
            "3.5",
            "--ci",
            "pass",
            "--pack",
            "P1",
            "--bi-lot",
            "BI-2",
        ),
        DAILY,
    ),
    (("cycle", "import", "--sterilizer", "AC2", "dac-universal/DACLogOK.TXT"), DAILY),
    (("cycle", "ci", "4", "--ci", "pass"), DAILY),
    (("bi", "mail", "2", "--lab", "Mesa Labs"), DAILY),
    (("bi", "received", "2", "--at", "2026-11-24T10:00:00+00:00"), DAILY),
    (("bi", "read", "2", "--result", "negative", "--control", "positive"), DAILY),
    (
        (
            "cycle",
            "record",
            "--sterilizer",
            "AC1",
            "--program",
            "134-3.5",
            "--temp-c",
            "134",
            "--hold-min",
            "3.5",
            "--ci",
            "pass",
            "--bi-lot",
            "BI-3",
        ),
        DAILY,
    ),
    (("bi", "invalid", "3", "--reason", "damaged"), DAILY),
    (("bi", "skip", "--sterilizer", "AC2", "--week", "2026-W40", "--reason", "shut"), MANAGER_ONLY),
    (("settings", "notify", "--webhook", "http://127.0.0.1:9/x"), MANAGER_ONLY),
    (("clean", "room", "R1", "--kind", "between-clients", "--disinfectant", "Clinell"), DAILY),
    (("clean", "device", "SN-1", "--disinfectant", "Clinell"), DAILY),
    (
        (
            "session",
            "start",
            "--room",
            "R1",
            "--device",
            "SN-1",
            "--cartridge",
            hri("LOTA", "0002"),
            "--pack",
            "P1",
            "--client",
            "C-7",
        ),
        DAILY,
    ),
    (("incident", "record", "--session", "2", "--kind", "pain", "--note", "sore"), DAILY),
    (("session", "end", "2"), DAILY),
    (("void", "room-clean", "2", "--reason", "wrong room"), MANAGER_ONLY),
    (("sign", "2026-11", "--meaning", "approved"), MANAGER_ONLY),
    # Issue 13: incident 1 (session 1, lot LOTA) exposes C-0042 and C-7 (session 2, LOTA).
    (("exposure", "open", "--incident", "1"), MANAGER_ONLY),
    (("exposure", "notify", "1", "--client", "C-0042", "--unreachable"), DAILY),
    (("exposure", "notify", "1", "--client", "C-7", "--unreachable"), DAILY),
    (("exposure", "close", "1", "--note", "two letters returned"), MANAGER_ONLY),
]


@pytest.mark.slow
def test_inspectors_cannot_write_and_practitioners_cannot_do_managers_acts(day: Cli) -> None:
    """Every writing command: an inspector gets exit 1 and nothing is written; a practitioner
    too for managers' acts; then the allowed role succeeds (so the arguments were fine)."""
    cli = day
    cli.now = "2026-11-24T10:00:00+00:00"
    tried = 0
    for listed, who in WRITES:
        if not exists(listed[0]):
            continue  # being built by others; picked up as soon as the command exists
        # Sample files (../shared/samples/autoclave) are named relative to that folder.
        args = tuple(str(samples_dir() / a) if a.startswith("dac-universal/") else a
                     for a in listed)
        tried += 1
        refused_for = ["ivy"] + (["ann"] if who == MANAGER_ONLY else [])
        for operator in refused_for:
            before = cli.audit_count()
            r = cli.fails(*args, operator=operator)
            assert "may not" in r.stderr, (args, operator, r.stderr)
            assert cli.audit_count() == before, (args, operator)
        before = cli.audit_count()
        allowed = "boss" if who == MANAGER_ONLY else "ann"
        r = cli.run(*args, operator=allowed, env={"STERILOG_NEW_PIN": "2468"})
        assert r.exit_code == 0, (args, allowed, r.output)
        assert cli.audit_count() == before + 1, args
        last = cli.json("audit", "log", "--limit", "1")["entries"][0]
        assert last["operator"] == allowed, args
    assert tried >= 21
    assert cli.json("audit", "verify")["ok"] is True


def test_the_role_table_covers_every_writing_command_there_is() -> None:
    """A new writing command must join WRITES (and so be role-tested) to pass this."""
    import inspect

    from sterilog.docgen import all_commands

    writing = set()
    for path, cmd in all_commands():
        if cmd.callback is None:
            continue
        source = inspect.getsource(getattr(cmd.callback, "__wrapped__", cmd.callback))
        if ".writing(" in source:
            writing.add(" ".join(path[1:]))
    tested = set()
    for args, _who in WRITES:
        words = [a for a in args[:2] if not a.startswith("-") and a[0].isalpha()]
        name = " ".join(words) if exists(words[0]) and " ".join(words) in writing else words[0]
        tested.add(name)
    assert writing == tested


def test_managers_may_do_the_daily_work_too(day: Cli) -> None:
    day.now = "2026-11-24T10:00:00+00:00"
    day.ok("clean", "room", "R1", "--kind", "between-clients", "--disinfectant", "Clinell")
    day.ok("clean", "device", "SN-1", "--disinfectant", "Clinell")
    day.ok("cartridge", "receive", hri("LOTD", "1"))
    out = day.json(
        "session",
        "start",
        "--room",
        "R1",
        "--device",
        "SN-1",
        "--cartridge",
        hri("LOTD", "1"),
        "--client",
        "C-8",
    )
    assert out["decision"] == "go"


def test_inspectors_read_everything_they_need(day: Cli, tmp_path: Path) -> None:
    before = day.audit_count()
    for args in (
        ("status",),
        ("session", "list", "--date", "2026-11-24"),
        ("audit", "verify"),
        ("audit", "log"),
        ("trace", "session", "1"),
        ("trace", "client", "C-0042"),
        ("trace", "lot", "--gtin", GTIN, "--lot", "LOTA"),
        ("trace", "load", "1"),
        ("trace", "bi", "1"),
        ("cycle", "list"),
        ("bi", "list"),
        ("staff", "list"),
        ("cartridge", "list"),
    ):
        r = day.run(*args, operator="ivy")
        assert r.exit_code == 0, (args, r.output)
    # Reports, labels and exports are reads too (made off-site copies are the inspector's).
    out = day.ok("report", "monthly", "--month", "2026-11", "-o", str(tmp_path / "m.pdf"),
                 operator="ivy")  # fmt: skip
    assert (tmp_path / "m.pdf").stat().st_size > 0, out.output
    day.ok("label", "load", "1", "-o", str(tmp_path / "l.pdf"), operator="ivy")
    day.ok("export", "--from", "2026-11-01", "--to", "2026-11-30", "--format", "json",
           "-o", str(tmp_path / "e.json"), operator="ivy")  # fmt: skip
    assert day.audit_count() == before


def test_an_inspector_cannot_treat_even_when_named_as_practitioner(day: Cli) -> None:
    day.now = "2026-11-24T10:00:00+00:00"
    day.ok("clean", "room", "R1", "--kind", "between-clients", "--disinfectant", "Clinell")
    day.ok("clean", "device", "SN-1", "--disinfectant", "Clinell")
    out = day.json(
        "session",
        "start",
        "--room",
        "R1",
        "--device",
        "SN-1",
        "--cartridge",
        hri("LOTA", "0002"),
        "--client",
        "C-9",
        "--practitioner",
        "ivy",
        expect=3,
    )
    assert [r["code"] for r in out["reasons"]] == ["practitioner-not-licensed"]


# --- deactivation --------------------------------------------------------------------------------


def test_a_deactivated_practitioner_cannot_act_or_be_named_but_keeps_their_records(
    day: Cli,
) -> None:
    day.now = "2026-11-24T10:00:00+00:00"
    day.ok("staff", "deactivate", "ann", "--reason", "left the clinic")
    before = day.audit_count()
    for args in (
        ("pack", "add", "P9", "--contents", "x"),
        ("clean", "room", "R1", "--kind", "spill", "--disinfectant", "Clinell"),
        ("session", "end", "1"),
    ):
        r = day.fails(*args, operator="ann")
        assert "deactivated" in r.stderr, args
    assert day.audit_count() == before
    # Nobody can start a session in their name either.
    day.ok("clean", "room", "R1", "--kind", "between-clients", "--disinfectant", "Clinell")
    day.ok("clean", "device", "SN-1", "--disinfectant", "Clinell")
    out = day.json(
        "session",
        "start",
        "--room",
        "R1",
        "--device",
        "SN-1",
        "--cartridge",
        hri("LOTA", "0002"),
        "--client",
        "C-9",
        "--practitioner",
        "ann",
        expect=3,
    )
    assert "practitioner-not-licensed" in [r["code"] for r in out["reasons"]]
    # What they did stays theirs.
    (s,) = day.json("trace", "client", "C-0042")["sessions"]
    assert s["practitioner"] == "ann"
    mine = [
        e for e in day.json("audit", "log", "--limit", "1000")["entries"] if e["operator"] == "ann"
    ]
    assert {e["action"] for e in mine} >= {"session.start", "session.end", "incident.record"}
    staff = {s["id"]: s for s in day.json("staff", "list")["staff"]}
    assert staff["ann"]["active"] is False
    assert day.json("audit", "verify")["ok"] is True


def test_deactivation_is_a_managers_act_once_and_never_of_oneself(day: Cli) -> None:
    before = day.audit_count()
    day.fails("staff", "deactivate", "boss", "--reason", "x")  # oneself
    day.fails("staff", "deactivate", "ivy", "--reason", "x", operator="ann")
    day.fails("staff", "deactivate", "nobody", "--reason", "x")
    assert day.audit_count() == before
    day.ok("staff", "deactivate", "ivy", "--reason", "contract ended")
    assert "already deactivated" in day.fails("staff", "deactivate", "ivy", "--reason", "x").stderr


def test_a_deactivation_that_lands_while_a_write_waits_for_the_lock_still_stops_it(
    day: Cli,
) -> None:
    """The checks must hold at the moment of writing, not only before the lock is taken.

    PostgreSQL grants advisory-lock waiters in arrival order, which makes the interleaving
    deterministic: the test holds the write lock; `staff deactivate ann` queues first, then
    ann's own write queues; the lock is released. Ann's write must then be refused.
    """
    if day.backend != "postgresql":
        pytest.skip("needs PostgreSQL's first-come lock queue to force the interleaving")
    from sterilog.db import PG_WRITE_LOCK_KEY

    env = {
        **os.environ,
        "STERILOG_DB": day.url,
        "STERILOG_NOW": "2026-11-24T10:00:00+00:00",
        "STERILOG_PIN": "",
        "STERILOG_NEW_PIN": "",
    }
    engine = day.engine()

    def waiting() -> int:
        return int(
            query(day, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")[
                0
            ][0]
        )

    def spawn(operator: str, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "sterilog", *args],
            env={**env, "STERILOG_OPERATOR": operator},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_for(n: int) -> None:
        deadline = time.monotonic() + 30
        while waiting() < n:
            assert time.monotonic() < deadline, "writer never queued for the lock"
            time.sleep(0.05)

    try:
        with engine.begin() as conn:
            conn.execute(text(f"SELECT pg_advisory_xact_lock({PG_WRITE_LOCK_KEY})"))
            boss = spawn("boss", "staff", "deactivate", "ann", "--reason", "left")
            wait_for(1)
            ann = spawn("ann", "pack", "add", "P9", "--contents", "x")
            wait_for(2)
    finally:
        engine.dispose()
    boss.communicate(timeout=60)
    _, ann_err = ann.communicate(timeout=60)
    assert boss.returncode == 0
    actions = [(e["operator"], e["action"]) for e in day.json("audit", "log")["entries"]]
    assert ("boss", "staff.deactivate") in actions
    assert ann.returncode == 1, (
        f"ann wrote after being deactivated: {actions[-2:]}; stderr: {ann_err}"
    )
    assert "deactivated" in ann_err
    assert ("ann", "pack.add") not in actions


# --- exports and files ---------------------------------------------------------------------------


def test_an_export_never_contains_a_pin_hash(day: Cli, tmp_path: Path) -> None:
    need("export")
    add_with_pin(day, "pinny", "4821")
    for fmt, target in (("json", tmp_path / "e.json"), ("csv", tmp_path / "csv")):
        day.ok(
            "export",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-30",
            "--format",
            fmt,
            "-o",
            str(target),
        )
        files = [target] if target.is_file() else sorted(target.iterdir())
        for f in files:
            body = f.read_text(encoding="utf-8")
            assert "scrypt$" not in body, f"{f.name} carries a PIN hash"
            assert pin_hash(day, "pinny").split("$")[-1] not in body, f.name


def test_a_new_sqlite_database_and_its_backup_are_owner_only(tmp_path: Path) -> None:
    import stat

    from click.testing import CliRunner

    old = os.umask(0o022)
    try:
        path = tmp_path / "clinic.db"
        env = {"STERILOG_NOW": "2026-11-24T09:00:00+00:00", "STERILOG_OPERATOR": "boss"}
        r = CliRunner().invoke(
            main, ["--db", str(path), "init", "--training", "--manager", "boss", "--name", "B"],
            env=env,
        )
        assert r.exit_code == 0, r.output
        r = CliRunner().invoke(main, ["--db", str(path), "room", "add", "R1"], env=env)
        assert r.exit_code == 0, r.output
        made = [p for p in tmp_path.iterdir()]
        if exists("backup"):
            r = CliRunner().invoke(
                main, ["--db", str(path), "backup", str(tmp_path / "b.db")], env=env
            )
            assert r.exit_code == 0, r.output
            made = [p for p in tmp_path.iterdir()]
            assert tmp_path / "b.db" in made
    finally:
        os.umask(old)
    for p in made:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, (p.name, oct(p.stat().st_mode))
