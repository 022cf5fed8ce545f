"""Exposures (issue 13): opened by a positive BI read and a recall with trace's own client list,
notified client by client, closed; on both backends through the real CLI."""

from __future__ import annotations

from pathlib import Path

from conftest import Cli
from test_reports import at, hri, monthly, one_day, pages, registers


def positive_bi_day(cli: Cli) -> dict:
    """Day 8: a load with a BI, two sessions use its packs, then the BI reads positive."""
    cli.ok("air-removal", "record", "--sterilizer", "AC1", "--result", "pass", now=at(8, 7))
    load = cli.json("cycle", "record", "--sterilizer", "AC1", "--program", "134-3.5",
                    "--temp-c", "134", "--hold-min", "3.5", "--ci", "pass", "--pack", "P3",
                    "--pack", "P2", "--bi-lot", "BI-L2", now=at(8, 7, 30))
    sids = []
    for n, (pack, client, serial) in enumerate((("P3", "C-7", "0003"), ("P2", "C-8", "0004"))):
        cli.ok("clean", "room", "R1", "--kind", "between-clients", "--disinfectant", "Clinell",
               now=at(8, 8 + n, 10))
        cli.ok("clean", "device", "SN-1", "--disinfectant", "Clinell", now=at(8, 8 + n, 10))
        sids.append(cli.json("session", "start", "--room", "R1", "--device", "SN-1",
                             "--cartridge", hri("LOTA", serial), "--pack", pack, "--client",
                             client, operator="ann", now=at(8, 8 + n, 30))["session_id"])
        cli.ok("session", "end", str(sids[-1]), operator="ann", now=at(8, 8 + n, 50))
    read = cli.json("bi", "read", str(load["bi_id"]), "--result", "positive", "--control",
                    "positive", now=at(9, 8))
    return {"load": load, "sessions": sids, "read": read}


def build(cli: Cli) -> dict:
    registers(cli)
    one_day(cli, 6, "0001", client="C-1")
    return positive_bi_day(cli)


def test_a_positive_bi_opens_an_exposure_with_trace_bis_clients(cli: Cli) -> None:
    ep = build(cli)
    exp_id = ep["read"]["exposure_id"]
    assert exp_id is not None
    traced = cli.json("trace", "bi", str(ep["load"]["bi_id"]))
    trace_clients = sorted({s["client"] for s in traced["sessions"]})
    [row] = cli.json("exposure", "list")["exposures"]
    assert set(row) >= {"id", "cause", "opened_at", "clients", "notified", "open"}
    assert (row["id"], row["cause"], row["clients"], row["notified"], row["open"]) == (
        exp_id, "bi", len(trace_clients), 0, True)
    shown = cli.json("exposure", "show", str(exp_id))
    assert sorted(c["client"] for c in shown["clients_detail"]) == trace_clients == ["C-7", "C-8"]
    items = cli.json("status")["items"]
    assert any(i["kind"] == "exposure" and i["subject"] == str(exp_id) for i in items)


def test_notifying_every_client_closes_the_exposure(cli: Cli, tmp_path: Path) -> None:
    ep = build(cli)
    exp = str(ep["read"]["exposure_id"])
    cli.fails("exposure", "close", exp, "--note", "done", operator="boss")  # nobody told yet
    r = cli.fails("exposure", "notify", exp, "--client", "C-99", "--how", "phone")
    assert "not among" in r.stderr
    out = cli.json("exposure", "notify", exp, "--client", "C-7", "--how", "phone",
                   "--at", at(9, 9), now=at(9, 10))
    assert (out["notified"], out["open"]) == (1, True)
    cli.fails("exposure", "notify", exp, "--client", "C-7", "--how", "letter")  # once
    out = cli.json("exposure", "notify", exp, "--client", "C-8", "--how", "in-person",
                   "--note", "at the desk", now=at(9, 11))
    assert (out["notified"], out["open"]) == (2, False)
    assert cli.json("exposure", "list", "--open")["exposures"] == []
    assert not any(i["kind"] == "exposure" for i in cli.json("status")["items"])
    text = " ".join(" ".join(pages(monthly(cli, tmp_path))).split())
    assert f"exposure {exp}" in text.lower() and "closed" in text.lower()
    assert "2026-10-09" in text


def test_an_unreachable_client_needs_a_manager_to_close(cli: Cli) -> None:
    ep = build(cli)
    exp = str(ep["read"]["exposure_id"])
    cli.ok("exposure", "notify", exp, "--client", "C-7", "--how", "email", now=at(9, 9))
    cli.ok("exposure", "notify", exp, "--client", "C-8", "--unreachable", "--note", "no answer",
           now=at(9, 9))
    assert cli.json("exposure", "show", exp)["open"] is True
    cli.fails("exposure", "close", exp, "--note", "tried", operator="ann")  # not a manager
    out = cli.json("exposure", "close", exp, "--note", "two calls, one letter", operator="boss",
                   now=at(9, 12))
    assert (out["open"], out["unreachable"], out["closed_at"]) == (False, 1, "2026-10-09T12:00:00Z")


def test_a_recall_and_an_incident_open_exposures(cli: Cli, tmp_path: Path) -> None:
    registers(cli)
    s1 = one_day(cli, 6, "0001", client="C-1")["session_id"]
    one_day(cli, 7, "0002", client="C-2")
    out = cli.json("cartridge", "recall", "--gtin", "09506000134352", "--lot", "LOTA",
                   "--reason", "FSN", operator="boss", now=at(8, 7))
    shown = cli.json("exposure", "show", str(out["exposure_id"]))
    assert (shown["cause"], sorted(c["client"] for c in shown["clients_detail"])) == (
        "recall", sorted(s["client"] for s in out["sessions"]))
    inc = cli.json("incident", "record", "--session", str(s1), "--kind", "infection", "--note",
                   "red", operator="ann", now=at(8, 9))["incident_id"]
    cli.fails("exposure", "open", "--incident", str(inc), operator="ann")
    opened = cli.json("exposure", "open", "--incident", str(inc), operator="boss", now=at(8, 10))
    assert opened["cause"] == "incident" and opened["clients"] >= 1
    cli.fails("exposure", "open", "--incident", str(inc), operator="boss")  # once per incident
    f = tmp_path / "letter.txt"
    f.write_text("dear client")
    cli.ok("attach", "exposure", str(opened["id"]), str(f), operator="boss")
    cli.fails("exposure", "show", "999")


def test_the_positive_bi_episode_is_one_block_in_trace_bi_and_the_monthly_report(
    cli: Cli, tmp_path: Path
) -> None:
    ep = build(cli)
    bi = str(ep["load"]["bi_id"])
    cli.ok("sterilizer", "service", "AC1", "--note", "gasket replaced", now=at(9, 9))
    episode = cli.json("trace", "bi", bi)["episode"]
    assert episode["lock_until"] is None and episode["cleared_by"] is None  # still locked
    assert [s["note"] for s in episode["services"]] == ["gasket replaced"]
    assert episode["exposure"]["clients"] == 2 and episode["exposure"]["open"] is True
    fates = {x["load_id"]: x for x in episode["suspect_loads"]}
    assert fates[ep["load"]["load_id"]]["sessions_before_read"] == 2
    text = " ".join(" ".join(pages(monthly(cli, tmp_path))).split())
    assert f"Positive spore test: BI {bi}" in text and "STILL LOCKED" in text
    assert "gasket replaced" in text
    page1 = " ".join(pages(monthly(cli, tmp_path, "again.pdf"))[0].split())
    assert "ATTENTION" in page1 and "exposure(s) open" in page1
    assert "2 client(s) affected, 0 notified" in page1
    # retention from the rule pack (default pack: 3 years after the month)
    assert "records until 2029-10-31 (3 years" in page1


def test_a_cjk_client_reference_prints_as_typed(cli: Cli, tmp_path: Path) -> None:
    """Characters DejaVu lacks fall back, per character, to the bundled CJK font."""
    from pypdf import PdfReader

    registers(cli)
    cjk = "王小明-東京"
    sid = one_day(cli, 6, "0001", client=cjk)["session_id"]
    target = tmp_path / "t.pdf"
    cli.ok("report", "trace", "session", str(sid), "-o", str(target))
    reader = PdfReader(str(target))
    text = " ".join(p.extract_text() for p in reader.pages)
    assert cjk in text
    fonts = {
        str(f["/BaseFont"])
        for p in reader.pages
        for f in p["/Resources"]["/Font"].values()
    }
    assert any("WenQuanYi" in f for f in fonts) and any("DejaVu" in f for f in fonts)


def test_trace_lot_shows_one_row_per_delivery_and_what_became_of_the_units(
    cli: Cli, tmp_path: Path
) -> None:
    registers(cli)  # one delivery of 5 serialized units of LOTA
    one_day(cli, 6, "0001", client="C-1")
    cli.ok("cartridge", "discard", hri("LOTA", "0005"), "--reason", "torn", now=at(6, 12))
    target = tmp_path / "lot.pdf"
    cli.ok("report", "trace", "lot", "--gtin", "09506000134352", "--lot", "LOTA",
           "-o", str(target))
    text = " ".join(" ".join(pages(target)).split())
    assert "5 received: 1 used, 1 discarded, 3 left" in text
    deliveries = text.split("Deliveries of this lot", 1)[1]
    assert deliveries.count("Acme <Supplies> & Co") == 1


def test_a_cjk_client_reference_prints_in_the_monthly_sessions_table(
    cli: Cli, tmp_path: Path
) -> None:
    registers(cli)
    cjk = "김민준-서울"
    one_day(cli, 6, "0001", client=cjk)
    text = " ".join(pages(monthly(cli, tmp_path)))
    assert cjk in text


def test_the_monthly_report_ends_with_logbooks_and_registers(cli: Cli, tmp_path: Path) -> None:
    registers(cli)
    one_day(cli, 6, "0001", client="C-1")
    cli.ok("sterilizer", "service", "AC1", "--note", "annual validation", now=at(6, 16))
    whole = pages(monthly(cli, tmp_path))
    tail = " ".join(" ".join(p.split()) for p in whole[-3:])
    assert "Appendix A. Sterilizer logbooks" in tail and "Sterilizer AC1" in tail
    assert "annual validation" in tail and "1 load(s): 0 failed, 0 suspect" in tail
    assert "Appendix B. Registers" in tail and "PR-1" in tail and "2027-06-30" in tail
    assert "SN-1" in tail and "Pen 4" in tail
