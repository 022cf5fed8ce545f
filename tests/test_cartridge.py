"""Cartridges (SPEC §6.2): receive, list, recall and discard, on both backends."""

from __future__ import annotations

import datetime as dt

import pytest
from conftest import NOW, Cli
from sqlalchemy import select

GS = "\x1d"
GTIN = "09506000134352"


def gtin(body: str) -> str:
    """A GTIN-14 with a correct check digit for the 13 given digits."""
    assert len(body) == 13 and body.isdigit()
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


OTHER = gtin("0950600013436")


def hri(lot: str, expiry: str = "271231", serial: str | None = None, g: str = GTIN) -> str:
    return f"(01){g}(17){expiry}(10){lot}" + (f"(21){serial}" if serial else "")


def raw(lot: str, expiry: str = "271231", serial: str | None = None, g: str = GTIN) -> str:
    return f"]d201{g}17{expiry}10{lot}" + (f"{GS}21{serial}" if serial else "")


def link(lot: str, expiry: str = "271231", serial: str | None = None, g: str = GTIN) -> str:
    return (
        f"https://id.example.org/01/{g}/10/{lot}"
        + (f"/21/{serial}" if serial else "")
        + (f"?17={expiry}")
    )


def units(cli: Cli, *args: str) -> list[dict[str, object]]:
    out: list[dict[str, object]] = cli.json("cartridge", "list", *args)["units"]
    return out


def add_session(cli: Cli, unit_id: int, client: str, started_at: str) -> int:
    """A treatment session using `unit_id`, written with the models through the audit chain.

    `session start` (the gate) is built elsewhere and needs cleans, packs and more; these tests
    only need the row the gate would write, recorded the way every write is.
    """
    from sterilog import audit
    from sterilog.db import write_session
    from sterilog.models import CartridgeLot, CartridgeUnit, Device, Room, Session, Staff

    if "room" not in cli.env:
        cli.ok("room", "add", "R1")
        cli.ok("device", "add", "SN-1", "--model", "Pen")
        cli.ok("staff", "add", "ann", "--name", "Ann", "--role", "practitioner")
        cli.env["room"] = "R1"
    engine = cli.engine()
    now = dt.datetime.fromisoformat(NOW)
    try:
        with write_session(engine) as s:
            unit = s.get(CartridgeUnit, unit_id)
            assert unit is not None
            lot = s.get(CartridgeLot, unit.lot_id)
            assert lot is not None
            ann = s.execute(select(Staff).where(Staff.code == "ann")).scalar_one()
            row = Session(
                room_id=s.execute(select(Room.id).where(Room.code == "R1")).scalar_one(),
                device_id=s.execute(select(Device.id).where(Device.code == "SN-1")).scalar_one(),
                unit_id=unit.id,
                practitioner_id=ann.id,
                client=client,
                depth_mm=0.5,
                gtin=lot.gtin,
                lot=lot.lot,
                serial=unit.serial,
                expiry=lot.expiry,
                started_at=dt.datetime.fromisoformat(started_at),
                recorded_at=now,
                operator_id=ann.id,
            )
            s.add(row)
            audit.append(
                s, action="session.start", operator="ann", now=now, clock="test", objects=[row]
            )
            return row.id
    finally:
        engine.dispose()


def receipts(cli: Cli) -> list[dict[str, object]]:
    from sterilog.models import CartridgeReceipt

    engine = cli.engine()
    try:
        with engine.connect() as conn:
            return [
                dict(r._mapping)
                for r in conn.execute(
                    select(
                        CartridgeReceipt.quantity,
                        CartridgeReceipt.supplier,
                        CartridgeReceipt.invoice,
                        CartridgeReceipt.scan,
                        CartridgeReceipt.at,
                    ).order_by(CartridgeReceipt.id)
                )
            ]
    finally:
        engine.dispose()


def verify_ok(cli: Cli) -> None:
    out = cli.json("audit", "verify")
    assert out["ok"] is True, out["problems"]


# --- receive -----------------------------------------------------------------------------------


def test_the_test_gtins_have_correct_check_digits() -> None:
    assert gtin("0950600013435") == GTIN
    assert OTHER != GTIN and len(OTHER) == 14


FORMS = {"hri": hri, "raw": raw, "link": link}


@pytest.mark.parametrize(
    ("first", "second"), [("hri", "raw"), ("raw", "link"), ("link", "hri"), ("hri", "hri")]
)
def test_every_form_of_a_scan_is_the_same_unit_and_is_received_only_once(
    cli: Cli, first: str, second: str
) -> None:
    out = cli.json("cartridge", "receive", FORMS[first]("A1B2", serial="0001"))
    assert [{k: u[k] for k in ("gtin", "lot", "serial", "expiry")} for u in out["units"]] == [
        {"gtin": GTIN, "lot": "A1B2", "serial": "0001", "expiry": "2027-12-31"}
    ]
    before = cli.audit_count()
    r = cli.fails("cartridge", "receive", FORMS[second]("A1B2", serial="0001"))
    assert r.stdout == ""
    assert (
        f"cartridge GTIN {GTIN} lot A1B2 serial 0001 was already received (on 2026-11-24)"
        in r.stderr
    )
    assert "nothing was received" in r.stderr
    assert cli.audit_count() == before
    assert len(units(cli)) == 1


def test_receiving_lists_the_units_in_text_and_json(cli: Cli) -> None:
    r = cli.ok("cartridge", "receive", hri("A1", serial="7"), hri("B2", expiry="280200"))
    assert r.stderr == ""
    assert r.stdout.splitlines() == [
        "Received 2 cartridge unit(s):",
        f"  GTIN {GTIN}  lot A1  serial 7  expires 2027-12-31",
        f"  GTIN {GTIN}  lot B2  1 unserialized  expires 2028-02-29",
    ]


def test_an_unserialized_scan_is_quantity_units_each_its_own_row(cli: Cli) -> None:
    out = cli.json("cartridge", "receive", hri("L1"), "--quantity", "5")
    assert out["received"] == 5 and len(out["receipt_ids"]) == 1
    assert [u["serial"] for u in out["units"]] == [None] * 5
    assert len({u["unit_id"] for u in out["units"]}) == 5
    assert {u["lot"] for u in out["units"]} == {"L1"}
    # The same lot again: another receipt of the same lot, default quantity 1.
    out = cli.json("cartridge", "receive", raw("L1"))
    assert len(out["units"]) == 1
    assert [r["quantity"] for r in receipts(cli)] == [5, 1]
    assert len(units(cli, "--lot", "L1")) == 6
    verify_ok(cli)


def test_supplier_invoice_raw_scan_and_event_time_are_stored_on_the_receipt(cli: Cli) -> None:
    scan = raw("A1", serial="9")
    cli.ok(
        "cartridge",
        "receive",
        scan,
        "--supplier",
        "Dermatech Ltd",
        "--invoice",
        "INV-88",
        "--at",
        "2026-11-23T16:30",
    )
    (rec,) = receipts(cli)
    assert rec["quantity"] == 1
    assert rec["supplier"] == "Dermatech Ltd"
    assert rec["invoice"] == "INV-88"
    assert rec["scan"] == scan
    assert rec["at"] == dt.datetime(2026, 11, 23, 16, 30, tzinfo=dt.UTC)
    (unit,) = units(cli)
    assert unit["received_at"] == "2026-11-23T16:30:00Z"
    verify_ok(cli)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((hri("A1").replace(GTIN, GTIN[:-1] + "3"),), "has a wrong check digit: expected 2"),
        (("hello",), "not a GS1 barcode"),
        ((f"(01){GTIN}(17)271231",), "missing lot (10)"),
        ((f"(01){GTIN}(10)A1",), "missing expiry date (17)"),
        ((hri("A1", expiry="271332"),), "is not a real date"),
        (
            (hri("A1", expiry="261123", serial="1"),),
            f"cartridge GTIN {GTIN} lot A1 serial 1 expired on 2026-11-23 (its last usable day)",
        ),
        (
            (hri("A1", serial="1"), "--quantity", "2"),
            "--quantity 2 with a serialized scan (serial 1): a serialized scan is exactly one unit",
        ),
        ((hri("A1"), "--quantity", "0"), "--quantity must be at least 1 and at most 100000"),
        ((hri("A1"), "--quantity", "-3"), "--quantity must be at least 1"),
        ((hri("A1"), "--quantity", "100001"), "got 100001"),
        (
            (hri("A1", serial="1"), link("A1", serial="1")),
            f"cartridge GTIN {GTIN} lot A1 serial 1 is scanned twice in this command:"
            " already received (scan 2 of 2)",
        ),
        (
            (hri("A1"), hri("A1", expiry="280101")),
            f"lot A1 of GTIN {GTIN} was scanned earlier with expiry 2027-12-31, but this scan"
            " says 2028-01-01 (scan 2 of 2)",
        ),
        ((hri("A1"), "--at", "2026-11-24T09:00:01+00:00"), "--at is in the future"),
        ((hri("A1"), "--at", "yesterday"), "is not an ISO 8601 time"),
        (
            (hri("A1"), "--supplier", "a\x01b"),
            "--supplier must not contain tabs, control or invisible characters",
        ),
    ],
)
def test_a_refused_receipt_says_why_and_writes_nothing(
    cli: Cli, args: tuple[str, ...], message: str
) -> None:
    before = cli.audit_count()
    r = cli.fails("cartridge", "receive", *args)
    assert r.stdout == ""
    assert message in r.stderr
    assert cli.audit_count() == before
    assert units(cli) == []


def test_quantity_with_a_serialized_scan_of_one_is_accepted(cli: Cli) -> None:
    out = cli.json("cartridge", "receive", hri("A1", serial="1"), "--quantity", "1")
    assert len(out["units"]) == 1


def test_a_later_delivery_of_a_lot_with_a_different_expiry_is_refused_with_both_dates(
    cli: Cli,
) -> None:
    cli.ok("cartridge", "receive", hri("A1", serial="1"))
    before = cli.audit_count()
    r = cli.fails("cartridge", "receive", hri("A1", expiry="280630", serial="2"))
    assert (
        f"lot A1 of GTIN {GTIN} is on file with expiry 2027-12-31, but this scan says 2028-06-30"
        in r.stderr
    )
    assert cli.audit_count() == before


def test_one_bad_scan_among_good_ones_receives_nothing(cli: Cli) -> None:
    cli.ok("cartridge", "receive", hri("OLD", serial="1"))
    before = cli.audit_count()
    r = cli.fails(
        "cartridge",
        "receive",
        hri("A1", serial="1"),
        hri("B1", g=OTHER),
        hri("OLD", serial="1"),
        "--supplier",
        "S",
    )
    assert f"cartridge GTIN {GTIN} lot OLD serial 1 was already received" in r.stderr
    assert "(scan 3 of 3)" in r.stderr
    assert cli.audit_count() == before
    assert [u["lot"] for u in units(cli)] == ["OLD"]
    assert len(receipts(cli)) == 1
    # Fixed, the same delivery goes in as a whole, with one receipt per scan.
    out = cli.json(
        "cartridge", "receive", hri("A1", serial="1"), hri("B1", g=OTHER), "--supplier", "S"
    )
    assert [(u["gtin"], u["lot"]) for u in out["units"]] == [(GTIN, "A1"), (OTHER, "B1")]
    assert len(out["receipt_ids"]) == 2
    verify_ok(cli)


def test_a_cartridge_expiring_today_is_receivable_until_midnight_in_the_clinic_zone(
    cli: Cli,
) -> None:
    # 30 June 2027 ends at 23:00 UTC in London (BST).
    scan = hri("S1", expiry="270630", serial="1")
    r = cli.fails("cartridge", "receive", scan, now="2027-06-30T23:00:00+00:00")
    assert "expired on 2027-06-30" in r.stderr
    cli.ok("cartridge", "receive", scan, now="2027-06-30T22:59:59+00:00")


def test_expiry_day_00_means_the_last_day_of_the_month(cli: Cli) -> None:
    out = cli.json("cartridge", "receive", hri("A1", expiry="270200"))
    assert out["units"][0]["expiry"] == "2027-02-28"


def test_a_recalled_lot_cannot_be_received(cli: Cli) -> None:
    cli.ok("cartridge", "receive", hri("A1", serial="1"))
    cli.ok("cartridge", "recall", "--gtin", GTIN, "--lot", "A1", "--reason", "FSN-1")
    before = cli.audit_count()
    r = cli.fails("cartridge", "receive", hri("A1", serial="2"))
    assert f"lot A1 of GTIN {GTIN} is under recall (since 2026-11-24: FSN-1)" in r.stderr
    assert cli.audit_count() == before


def test_receiving_needs_an_operator_and_inspectors_may_not(cli: Cli) -> None:
    cli.ok("staff", "add", "ivy", "--name", "Ivy", "--role", "inspector")
    cli.ok("staff", "add", "ann", "--name", "Ann", "--role", "practitioner")
    before = cli.audit_count()
    assert "operator" in cli.fails("cartridge", "receive", hri("A1"), operator=False).stderr
    assert "may not" in cli.fails("cartridge", "receive", hri("A1"), operator="ivy").stderr
    assert cli.audit_count() == before
    cli.ok("cartridge", "receive", hri("A1"), operator="ann")


# --- list --------------------------------------------------------------------------------------


def test_list_gives_each_unit_its_status_with_recalled_before_used_discarded_and_expired(
    cli: Cli,
) -> None:
    cli.ok("cartridge", "receive", *(hri("A1", serial=str(n)) for n in range(1, 5)))
    cli.ok("cartridge", "receive", hri("R1", serial="1"), hri("R1", serial="2"))
    cli.ok("cartridge", "receive", hri("R1", serial="3"))
    cli.ok("cartridge", "receive", hri("E1", expiry="261130"), "--quantity", "2")
    ids = {(u["lot"], u["serial"]): u["unit_id"] for u in units(cli)}
    used = add_session(cli, ids[("A1", "1")], "C-1", "2026-11-24T08:00:00+00:00")
    add_session(cli, ids[("R1", "1")], "C-2", "2026-11-24T08:30:00+00:00")
    cli.ok("cartridge", "discard", hri("A1", serial="2"), "--reason", "dropped")
    cli.ok("cartridge", "discard", hri("R1", serial="2"), "--reason", "dropped")
    cli.ok("cartridge", "recall", "--gtin", GTIN, "--lot", "R1", "--reason", "FSN")

    listed = units(cli)
    status = {(u["lot"], u["serial"]): u["status"] for u in listed}
    assert status == {
        ("A1", "1"): "used",
        ("A1", "2"): "discarded",
        ("A1", "3"): "in-stock",
        ("A1", "4"): "in-stock",
        ("R1", "1"): "recalled",  # SPEC §6.2: a recall marks used units too
        ("R1", "2"): "recalled",  # ... and every other unit of the lot
        ("R1", "3"): "recalled",
        ("E1", None): "in-stock",
    }
    a1 = next(u for u in listed if u["unit_id"] == ids[("A1", "1")])
    assert a1 == {
        "unit_id": ids[("A1", "1")],
        "gtin": GTIN,
        "lot": "A1",
        "serial": "1",
        "expiry": "2027-12-31",
        "status": "used",
        "received_at": "2026-11-24T09:00:00Z",
        "session_id": used,
        # issue 11: received now, so not a late entry
        "late": False,
        "recorded_at": "2026-11-24T09:00:00Z",
        "entered_by": "boss",
    }
    # After 30 November ends the E1 lot has expired; recalled still beats expired.
    later = "2026-12-01T00:00:00+00:00"
    expired = cli.json("cartridge", "list", "--status", "expired", now=later)["units"]
    assert [(u["lot"], u["serial"]) for u in expired] == [("E1", None), ("E1", None)]
    assert [u["serial"] for u in units(cli, "--status", "recalled")] == ["1", "2", "3"]
    assert [u["serial"] for u in units(cli, "--status", "in-stock", "--lot", "A1")] == ["3", "4"]
    assert len(units(cli, "--status", "in-stock")) == 4
    assert len(units(cli, "--status", "used")) == 1  # the other used unit is in the recalled lot
    assert len(units(cli, "--status", "discarded")) == 1  # likewise the other discarded one
    assert len(units(cli, "--gtin", GTIN, "--lot", "R1")) == 3
    assert units(cli, "--gtin", OTHER) == []
    verify_ok(cli)


def test_list_prints_a_table_and_refuses_an_unknown_status_as_a_usage_error(cli: Cli) -> None:
    assert cli.ok("cartridge", "list").stdout == "(none)\n"
    cli.ok("cartridge", "receive", hri("A1", serial="1"))
    lines = cli.ok("cartridge", "list").stdout.splitlines()
    assert lines[0].split() == [
        "UNIT_ID",
        "GTIN",
        "LOT",
        "SERIAL",
        "EXPIRY",
        "STATUS",
        "RECEIVED",
        "SESSION",
    ]
    assert lines[1].split() == [
        "1",
        GTIN,
        "A1",
        "1",
        "2027-12-31",
        "in-stock",
        "2026-11-24",
        "09:00",
        "-",
    ]
    r = cli.fails("cartridge", "list", "--status", "lost", code=2)
    assert "'lost' is not one of" in r.stderr


# --- recall ------------------------------------------------------------------------------------


def test_a_recall_blocks_the_stock_and_lists_the_sessions_that_used_the_lot(cli: Cli) -> None:
    cli.ok("cartridge", "receive", *(hri("A1", serial=str(n)) for n in range(1, 5)))
    cli.ok("cartridge", "receive", hri("B1", serial="1"))
    ids = {(u["lot"], u["serial"]): u["unit_id"] for u in units(cli)}
    late = add_session(cli, ids[("A1", "1")], "client-late", "2026-11-23T15:00:00+00:00")
    early = add_session(cli, ids[("A1", "2")], "client-early", "2026-11-20T10:00:00+00:00")
    add_session(cli, ids[("B1", "1")], "other-lot", "2026-11-21T10:00:00+00:00")
    cli.ok("cartridge", "discard", hri("A1", serial="3"), "--reason", "torn")

    out = cli.json("cartridge", "recall", "--gtin", GTIN, "--lot", "A1", "--reason", "FSN 2026/11")
    assert out["gtin"] == GTIN and out["lot"] == "A1"
    assert isinstance(out["recall_id"], int)
    assert out["units_in_stock"] == 1
    keys = ("session_id", "client", "started_at", "room", "practitioner")
    assert [{k: s[k] for k in keys} for s in out["sessions"]] == [
        {
            "session_id": early,
            "client": "client-early",
            "started_at": "2026-11-20T10:00:00Z",
            "room": "R1",
            "practitioner": "ann",
        },
        {
            "session_id": late,
            "client": "client-late",
            "started_at": "2026-11-23T15:00:00Z",
            "room": "R1",
            "practitioner": "ann",
        },
    ]
    verify_ok(cli)


def test_recall_text_output_names_the_blocked_stock_and_the_sessions(cli: Cli) -> None:
    cli.ok("cartridge", "receive", hri("A1", serial="1"), hri("A1", serial="2"))
    add_session(cli, 1, "client-1", "2026-11-20T10:00:00+00:00")
    r = cli.ok("cartridge", "recall", "--gtin", GTIN, "--lot", "A1", "--reason", "FSN")
    lines = r.stdout.splitlines()
    assert lines[0] == f"Recalled lot A1 of GTIN {GTIN} (recall 1)."
    assert lines[1] == "1 unit(s) in stock are now blocked."
    assert lines[2] == "1 session(s) already used this lot:"
    assert lines[4].split() == ["1", "2026-11-20", "10:00", "client-1", "R1", "ann"]


def test_a_recall_of_a_lot_no_session_used_says_so(cli: Cli) -> None:
    cli.ok("cartridge", "receive", hri("A1"), "--quantity", "3")
    r = cli.ok("cartridge", "recall", "--gtin", GTIN[1:], "--lot", "A1", "--reason", "FSN")
    assert "3 unit(s) in stock are now blocked." in r.stdout
    assert "No session has used this lot." in r.stdout


def test_recall_is_a_managers_act_and_refuses_unknown_or_already_recalled_lots(
    cli: Cli,
) -> None:
    cli.ok("staff", "add", "ann", "--name", "Ann", "--role", "practitioner")
    cli.ok("cartridge", "receive", hri("A1", serial="1"))
    before = cli.audit_count()
    args = ("cartridge", "recall", "--gtin", GTIN, "--lot", "A1", "--reason", "FSN")
    r = cli.fails(*args, operator="ann")
    assert "may not" in r.stderr
    assert cli.audit_count() == before
    r = cli.fails("cartridge", "recall", "--gtin", GTIN, "--lot", "ZZ", "--reason", "FSN")
    assert f"no cartridge lot ZZ of GTIN {GTIN} was ever received" in r.stderr
    assert cli.audit_count() == before
    r = cli.fails(*args[:-1], "  ")
    assert "--reason must not be empty" in r.stderr
    cli.ok(*args)
    before = cli.audit_count()
    r = cli.fails(*args)
    assert f"lot A1 of GTIN {GTIN} is already recalled (recall 1, 2026-11-24)" in r.stderr
    assert cli.audit_count() == before


# --- discard -----------------------------------------------------------------------------------


def test_discarding_a_serialized_unit_and_refusing_it_twice(cli: Cli) -> None:
    cli.ok("cartridge", "receive", hri("A1", serial="1"), hri("A1", serial="2"))
    out = cli.json("cartridge", "discard", raw("A1", serial="2"), "--reason", "packaging torn")
    assert out["unit_id"] == 2 and out["serial"] == "2" and out["lot"] == "A1"
    before = cli.audit_count()
    r = cli.fails("cartridge", "discard", link("A1", serial="2"), "--reason", "again")
    assert (
        f"cartridge GTIN {GTIN} lot A1 serial 2 was already discarded"
        " (on 2026-11-24: packaging torn)" in r.stderr
    )
    assert cli.audit_count() == before
    assert [u["status"] for u in units(cli)] == ["in-stock", "discarded"]
    verify_ok(cli)


def test_a_used_or_unknown_unit_cannot_be_discarded(cli: Cli) -> None:
    cli.ok("cartridge", "receive", hri("A1", serial="1"))
    session_id = add_session(cli, 1, "C-1", "2026-11-24T08:00:00+00:00")
    before = cli.audit_count()
    cases = [
        (hri("A1", serial="1"), f"serial 1 was already used (session {session_id})"),
        (hri("A1", serial="9"), f"cartridge GTIN {GTIN} lot A1 serial 9 was never received"),
        (hri("ZZ", serial="1"), f"no cartridge lot ZZ of GTIN {GTIN} was ever received"),
        (hri("A1"), f"lot A1 of GTIN {GTIN} was received serialized only"),
        (f"(01){GTIN}(21)1", "missing lot (10)"),
        ("(01)123", "GTIN in (01) must be 14 digits"),
    ]
    for scan, message in cases:
        r = cli.fails("cartridge", "discard", scan, "--reason", "x")
        assert message in r.stderr, scan
    assert cli.audit_count() == before


def test_an_unserialized_scan_discards_one_unused_unit_of_the_lot_lowest_first(cli: Cli) -> None:
    first = cli.json("cartridge", "receive", hri("L1"), "--quantity", "3")["units"]
    ids = [u["unit_id"] for u in first]
    add_session(cli, ids[0], "C-1", "2026-11-24T08:00:00+00:00")
    # A scan without expiry still names the lot.
    out = cli.json("cartridge", "discard", f"(01){GTIN}(10)L1", "--reason", "dropped")
    assert out["unit_id"] == ids[1] and out["serial"] is None
    r = cli.ok("cartridge", "discard", hri("L1"), "--reason", "dropped", "--at", "2026-11-24T08:00")
    expected = f"Discarded cartridge GTIN {GTIN} lot L1 unit {ids[2]} (unserialized)"
    assert r.stdout.startswith(expected)
    assert "(discard " in r.stdout  # issue 14: the ID `void discard` needs
    before = cli.audit_count()
    r = cli.fails("cartridge", "discard", hri("L1"), "--reason", "dropped")
    assert (
        f"no unused unserialized cartridge of lot L1 of GTIN {GTIN} is left to discard"
        " (3 received, 1 used, 2 already discarded)" in r.stderr
    )
    assert cli.audit_count() == before
    assert [u["status"] for u in units(cli)] == ["used", "discarded", "discarded"]
    verify_ok(cli)


def test_discard_needs_a_daily_role_and_refuses_a_future_time(cli: Cli) -> None:
    cli.ok("staff", "add", "ivy", "--name", "Ivy", "--role", "inspector")
    cli.ok("cartridge", "receive", hri("A1", serial="1"))
    before = cli.audit_count()
    r = cli.fails("cartridge", "discard", hri("A1", serial="1"), "--reason", "x", operator="ivy")
    assert "may not" in r.stderr
    r = cli.fails(
        "cartridge", "discard", hri("A1", serial="1"), "--reason", "x", "--at", "2030-01-01T00:00"
    )
    assert "--at is in the future" in r.stderr
    assert cli.audit_count() == before


def test_a_days_cartridge_work_leaves_a_verifiable_audit_log(cli: Cli) -> None:
    cli.ok("cartridge", "receive", hri("A1", serial="1"), raw("B1"), "--quantity", "1")
    cli.ok("cartridge", "receive", link("C1", g=OTHER), "--quantity", "50", "--invoice", "I-1")
    add_session(cli, 1, "C-1", "2026-11-24T08:00:00+00:00")
    cli.ok("cartridge", "discard", hri("C1", g=OTHER), "--reason", "x")
    cli.ok("cartridge", "recall", "--gtin", OTHER, "--lot", "C1", "--reason", "FSN")
    out = cli.json("audit", "verify")
    assert out["ok"] is True
    assert out["entries"] == cli.audit_count()
