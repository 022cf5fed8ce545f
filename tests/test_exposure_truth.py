"""An exposure says what trace says now (issue 13, review): the clients to notify are the ones
`trace bi` / `trace lot` / the incident's lists give for the exposure's source today, so a void
that widens a suspect range adds clients (already-notified ones stay notified), and a voided
source leaves the exposure void: not open, not due, its notices kept. `exposure list`,
`exposure show`, `exposure notify`, `status` and the monthly report's page 1 all agree; on both
backends through the real CLI."""

from __future__ import annotations

from typing import Any

from clinic import GTIN, hri
from conftest import Cli
from test_one_truth import air, at, clean, load, read, registers, session, void


def exposure_rows(cli: Cli, end: str = at(1, 0, month=11)) -> list[Any]:
    """The monthly report's page-1 exposure rows, as its data layer computes them."""
    from sqlalchemy.orm import Session

    from sterilog.clock import parse_instant
    from sterilog.reports.decision import exposure_rows as rows

    engine = cli.engine()
    try:
        with Session(engine) as db:
            return rows(db, parse_instant(end))
    finally:
        engine.dispose()


def traced_clients(cli: Cli, bi_id: int, when: str) -> list[str]:
    return sorted({s["client"] for s in cli.json("trace", "bi", str(bi_id), now=when)["sessions"]})


def shown_clients(cli: Cli, exp: int, when: str) -> list[str]:
    shown = cli.json("exposure", "show", str(exp), now=when)
    return sorted(c["client"] for c in shown["clients_detail"])


def exposure_items(cli: Cli, when: str) -> list[dict[str, Any]]:
    return [i for i in cli.json("status", now=when)["items"] if i["kind"] == "exposure"]


def lot_session(cli: Cli, when: str, lot: str, client: str, *, end: str) -> int:
    sid = cli.json("session", "start", "--room", "R1", "--device", "SN-1", "--cartridge",
                   hri(lot, "0001"), "--client", client, operator="ann",
                   now=when)["session_id"]  # fmt: skip
    cli.ok("session", "end", str(sid), operator="ann", now=end)
    return int(sid)


def two_loads_second_positive(cli: Cli) -> dict[str, Any]:
    """Load 1 (BI 1) packs treat C-P1, BI 1 reads negative; load 2 (BI 2) packs treat C-P2,
    BI 2 reads positive: the exposure lists C-P2 only, as trace does at that moment."""
    registers(cli)
    air(cli, at(6, 7))
    first = load(cli, at(6, 7, 10), "P1", bi=True)
    clean(cli, at(6, 8))
    session(cli, at(6, 8, 10), "0001", "P1", client="C-P1", end=at(6, 8, 40))
    air(cli, at(7, 7))
    read(cli, first["bi_id"], "negative", at(7, 7, 5))
    second = load(cli, at(7, 7, 10), "P2", bi=True)
    clean(cli, at(7, 8))
    session(cli, at(7, 8, 10), "0002", "P2", client="C-P2", end=at(7, 8, 40))
    positive = read(cli, second["bi_id"], "positive", at(8, 7))
    assert positive["exposure_id"] is not None
    assert traced_clients(cli, second["bi_id"], at(8, 7, 1)) == ["C-P2"]
    return {"first": first, "second": second, "exp": int(positive["exposure_id"])}


def test_a_void_that_widens_the_suspect_range_adds_its_clients_to_notify(cli: Cli) -> None:
    ep = two_loads_second_positive(cli)
    exp, bi = ep["exp"], ep["second"]["bi_id"]
    void(cli, "bi-read", 1, at(8, 8))  # BI 1's negative read was entered for the wrong BI
    assert traced_clients(cli, bi, at(8, 9)) == ["C-P1", "C-P2"]
    assert shown_clients(cli, exp, at(8, 9)) == ["C-P1", "C-P2"]

    out = cli.json("exposure", "notify", str(exp), "--client", "C-P2", "--how", "phone",
                   now=at(8, 10))  # fmt: skip
    assert (out["clients"], out["notified"], out["open"], out["state"]) == (2, 1, True, "open")
    [item] = exposure_items(cli, at(8, 11))
    assert item["state"] == "due" and "1 of 2 client(s) notified" in item["message"]
    [listed] = cli.json("exposure", "list", "--open", now=at(8, 11))["exposures"]
    assert (listed["id"], listed["clients"], listed["notified"]) == (exp, 2, 1)
    [row] = exposure_rows(cli)
    assert (row.clients, row.notified, row.closed_at) == (2, 1, None)

    out = cli.json("exposure", "notify", str(exp), "--client", "C-P1", "--how", "letter",
                   now=at(8, 12))  # fmt: skip
    assert (out["open"], out["closed_at"]) == (False, "2026-10-08T12:00:00Z")
    assert exposure_items(cli, at(8, 13)) == []


def test_a_widening_after_the_exposure_closed_reopens_it_for_the_new_client(cli: Cli) -> None:
    ep = two_loads_second_positive(cli)
    exp = str(ep["exp"])
    cli.ok("exposure", "notify", exp, "--client", "C-P2", "--how", "phone", now=at(8, 8))
    assert exposure_items(cli, at(8, 9)) == []  # every client then listed was told: closed
    void(cli, "bi-read", 1, at(8, 10))

    [item] = exposure_items(cli, at(8, 11))
    assert item["subject"] == exp and "1 of 2 client(s) notified" in item["message"]
    shown = cli.json("exposure", "show", exp, now=at(8, 11))
    told = {c["client"]: c["how"] for c in shown["clients_detail"]}
    assert told == {"C-P1": None, "C-P2": "phone"}  # the earlier notice stands
    assert (shown["open"], shown["closed_at"]) == (True, None)
    assert shown["closure"]["note"] == "every client notified (1)"  # the record is kept
    [row] = exposure_rows(cli)
    assert row.closed_at is None

    out = cli.json("exposure", "notify", exp, "--client", "C-P1", "--how", "phone",
                   now=at(8, 12))  # fmt: skip
    assert (out["open"], out["closed_at"], out["notified"]) == (False, "2026-10-08T12:00:00Z", 2)
    assert exposure_items(cli, at(8, 13)) == []


def test_a_voided_recall_leaves_its_exposure_void_and_keeps_its_notices(cli: Cli) -> None:
    registers(cli)
    clean(cli, at(6, 8))
    session(cli, at(6, 8, 10), "0001", client="C1", end=at(6, 8, 40))
    clean(cli, at(6, 9))
    session(cli, at(6, 9, 10), "0002", client="C2", end=at(6, 9, 40))
    rec = cli.json("cartridge", "recall", "--gtin", GTIN, "--lot", "LOTA", "--reason", "FSN",
                   now=at(6, 10))  # fmt: skip
    exp = str(rec["exposure_id"])
    cli.ok("exposure", "notify", exp, "--client", "C1", "--how", "phone", now=at(6, 10, 30))
    void(cli, "recall", rec["recall_id"], at(6, 11))

    assert exposure_items(cli, at(6, 12)) == []
    assert cli.json("exposure", "list", "--open", now=at(6, 12))["exposures"] == []
    [listed] = cli.json("exposure", "list", now=at(6, 12))["exposures"]
    assert (listed["open"], listed["state"]) == (False, "void")
    shown = cli.json("exposure", "show", exp, now=at(6, 12))
    assert shown["void"]["reason"] == "mistake" and shown["void"]["at"] == "2026-10-06T11:00:00Z"
    told = {c["client"]: c["how"] for c in shown["clients_detail"]}
    assert told == {"C1": "phone", "C2": None}  # as listed at opening; the notice is kept
    text = cli.ok("exposure", "show", exp, now=at(6, 12)).stdout
    assert "void" in text.lower() and "mistake" in text
    r = cli.fails("exposure", "notify", exp, "--client", "C2", "--how", "phone", now=at(6, 13))
    assert "voided" in r.stderr
    [row] = exposure_rows(cli)
    assert row.closed_at is not None and row.state == "void"  # page 1: not open, and says void
    # the gate agrees: the lot is usable again
    clean(cli, at(6, 14))
    session(cli, at(6, 14, 10), "0003", client="C3")


def test_a_voided_positive_read_leaves_its_exposure_void_and_a_new_read_opens_another(
    cli: Cli,
) -> None:
    ep = two_loads_second_positive(cli)
    exp, bi = ep["exp"], ep["second"]["bi_id"]
    reads = cli.json("bi", "list", now=at(8, 8))["bis"]
    [positive] = [b["read_id"] for b in reads if b["bi_id"] == bi]
    void(cli, "bi-read", positive, at(8, 8))

    assert exposure_items(cli, at(8, 9)) == []
    shown = cli.json("exposure", "show", str(exp), now=at(8, 9))
    assert (shown["state"], shown["open"]) == ("void", False)
    assert shown["void"]["kind"] == "bi-read" and shown["void"]["record_id"] == positive
    episode = cli.json("trace", "bi", str(bi), now=at(8, 9))["episode"]
    assert episode is None or episode["exposure"] is None or not episode["exposure"]["open"]

    again = read(cli, bi, "positive", at(8, 10))  # read again, correctly this time
    assert again["exposure_id"] not in (None, exp)
    [item] = exposure_items(cli, at(8, 11))
    assert item["subject"] == str(again["exposure_id"])
    assert cli.json("exposure", "show", str(exp), now=at(8, 11))["state"] == "void"


def test_an_incident_exposure_follows_a_void_that_widens_its_device_list(cli: Cli) -> None:
    registers(cli)
    for lot in ("LOTB", "LOTC"):  # one lot each: the clients share only the pen
        cli.ok("cartridge", "receive", hri(lot, "0001"), now=at(6, 7))
    clean(cli, at(6, 8))
    first = lot_session(cli, at(6, 8, 10), "LOTB", "C-FIRST", end=at(6, 8, 40))
    clean(cli, at(6, 9))  # room clean 2, device clean 2
    lot_session(cli, at(6, 9, 10), "LOTC", "C-SECOND", end=at(6, 9, 40))
    inc = cli.json("incident", "record", "--session", str(first), "--kind", "infection",
                   "--note", "red", operator="ann", now=at(7, 9))["incident_id"]  # fmt: skip
    exp = str(cli.json("exposure", "open", "--incident", str(inc), now=at(7, 10))["id"])
    assert shown_clients(cli, int(exp), at(7, 11)) == ["C-FIRST"]
    cli.ok("exposure", "notify", exp, "--client", "C-FIRST", "--how", "phone", now=at(7, 11))
    # the 09:00 device clean was of another pen: C-SECOND followed on an uncleaned pen
    void(cli, "device-clean", 2, at(7, 12))
    assert shown_clients(cli, int(exp), at(7, 13)) == ["C-FIRST", "C-SECOND"]
    [item] = exposure_items(cli, at(7, 13))
    assert "1 of 2 client(s) notified" in item["message"]

    void(cli, "incident", inc, at(7, 14))  # recorded against the wrong session
    assert exposure_items(cli, at(7, 15)) == []
    assert cli.json("exposure", "show", exp, now=at(7, 15))["state"] == "void"
    r = cli.fails("exposure", "close", exp, "--note", "x", now=at(7, 16))
    assert "void" in r.stderr
