"""`cycle import`, `cycle ci`, continuity and attachments, end to end on both backends, with
the real device records in ../shared/samples/autoclave (used as they are)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from autoclave_samples import ALL_FILES, DAC, TUTT, sample
from conftest import Cli
from sqlalchemy import text
from test_gate import codes, setup_clinic, start


def _f_to_c(f: float) -> float:
    return (f - 32) * 5 / 9


def _tamper(cli: Cli, *statements: str, params: dict | None = None) -> None:
    engine = cli.engine()
    try:
        with engine.begin() as conn:
            for s in statements:
                conn.execute(text(s), params or {})
    finally:
        engine.dispose()


def _dac(cli: Cli, type_: str = "S") -> None:
    cli.ok("sterilizer", "add", "DAC", "--model", "DAC Universal", "--type", type_,
           "--serial", "601362")
    cli.ok("sterilizer", "program", "DAC", "universal", "--temp-c", "134", "--hold-min", "3")


def _tutt(cli: Cli, code: str = "EL", serial: str = "00000000") -> None:
    cli.ok("sterilizer", "add", code, "--model", "Tuttnauer Elara11", "--type", "B",
           "--serial", serial)
    cli.ok("sterilizer", "program", code, "wrapped", "--temp-c", "134", "--hold-min", "5")


def imp(cli: Cli, sterilizer: str, *names: str, extra: tuple[str, ...] = (),
        expect: int = 0) -> dict:
    files = [str(sample(n)) for n in names]
    out: dict = cli.json("cycle", "import", "--sterilizer", sterilizer, *files, *extra,
                         expect=expect)
    return out


def test_000100_is_a_passed_load_whose_hold_and_min_max_match_the_trace(cli: Cli) -> None:
    _tutt(cli)
    out = imp(cli, "EL", f"{TUTT}/000100.txt", extra=("--ci", "pass", "--ci-type", "5"))
    assert out["skipped"] == []
    [c] = out["cycles"]
    assert (c["kind"], c["device_cycle_no"], c["status"], c["load_no"]) == ("load", 100,
                                                                             "passed", 1)
    # The expected values are read from the file here, independently of the parser.
    data = sample(f"{TUTT}/000100.txt").read_bytes()
    s_rows = [ln.split() for ln in data.decode("latin-1").splitlines() if ln.startswith("S ")]
    temps = [float(r[2]) for r in s_rows]
    first, last = s_rows[0][1], s_rows[-1][1]
    secs = [sum(int(x) * m for x, m in zip(t.split(":"), (3600, 60, 1), strict=True))
            for t in (first, last)]
    assert c["hold_s"] == secs[1] - secs[0] == 300
    assert c["temp_min_c"] == pytest.approx(_f_to_c(min(temps)), abs=0.001)
    assert c["temp_max_c"] == pytest.approx(_f_to_c(max(temps)), abs=0.001)
    assert c["sha256"] == hashlib.sha256(data).hexdigest()
    listed = cli.json("cycle", "list")["cycles"]
    assert [(x["load_id"], x["status"], x["source"], x["device_cycle_no"]) for x in listed] == [
        (c["load_id"], "passed", "imported", 100)]
    cli.json("audit", "verify")


def test_the_text_output_names_load_device_cycle_hold_and_range(cli: Cli) -> None:
    _tutt(cli)
    out = cli.ok("cycle", "import", "--sterilizer", "EL", str(sample(f"{TUTT}/000100.txt")))
    assert "device cycle 100 2017-01-01 16:23 -> load 1 (#1): hold 5:00 (computed), " \
           "135.2-135.5 °C, 213-217 kPa; CI-PENDING" in out.stdout
    assert "`sterilog cycle ci LOAD_ID --ci pass|fail`" in out.stdout


def test_02_is_an_air_removal_test_and_01_a_load_failed_by_its_zeroed_trace(cli: Cli) -> None:
    _tutt(cli, "EL2", "88888888")
    out = imp(cli, "EL2", f"{TUTT}/02.txt", f"{TUTT}/01.txt")
    bd, load = out["cycles"]
    assert (bd["kind"], bd["device_cycle_no"], bd["load_id"]) == ("air-removal", 1, None)
    assert bd["air_test_id"] is not None
    assert (load["kind"], load["device_cycle_no"], load["status"]) == ("load", 2, "failed")
    assert load["hold_s"] == 0
    engine = cli.engine()
    try:
        with engine.connect() as conn:
            tests = conn.execute(text("SELECT id, result FROM air_removal_tests")).all()
            loads = conn.execute(text("SELECT count(*) FROM cycles")).scalar_one()
    finally:
        engine.dispose()
    assert [t[0] for t in tests] == [bd["air_test_id"]]
    assert loads == 1


def test_dac_failed_records_are_failed_loads_with_their_error_codes(cli: Cli) -> None:
    _dac(cli)
    out = imp(cli, "DAC", *(f"{DAC}/{n}" for n in (
        "DACLogFehler.TXT", "DACLogFehlerII.TXT", "DACLogFehlerIII.TXT", "DACLogFehlerIV.TXT")))
    by_no = {c["device_cycle_no"]: c for c in out["cycles"]}
    assert sorted(by_no) == [14, 456, 1015, 1100]
    for no, code in ((14, 97), (456, 93), (1015, 92), (1100, 81)):
        c = by_no[no]
        assert c["status"] == "failed"
        assert c["device_ok"] is False
        assert f"Error code {code}" in c["device_reason"]
        assert any(f"Error code {code}" in f for f in c["failures"])
    assert "truncated" in by_no[1015]["device_reason"]
    # The 21-second hold: the device printed 0:21, the trace shows less; failed on both counts.
    short = by_no[456]
    assert short["device_hold_s"] == 21
    assert short["hold_s"] < 180
    assert any("below the program's 3 min" in f for f in short["failures"])


def test_a_short_hold_fails_even_when_the_device_said_ok(cli: Cli, tmp_path: Path) -> None:
    _dac(cli)
    # Fixture variant of DACLogOK.TXT (from shared/samples): the last four samples removed,
    # so the printed trace covers 1:31 of the 3-minute hold while the device still says Ok.
    lines = sample(f"{DAC}/DACLogOK.TXT").read_text("ascii").split("\n")
    cut = [ln for ln in lines if not ln.startswith(("01:07:01", "01:07:31", "01:08:02",
                                                    "01:08:32"))]
    f = tmp_path / "short.TXT"
    f.write_text("\n".join(cut), "ascii")
    out = cli.json("cycle", "import", "--sterilizer", "DAC", str(f))
    [c] = out["cycles"]
    assert c["device_ok"] is True and c["device_reason"] is None
    assert c["hold_s"] == 61  # 01:05:30 -> 01:06:31
    assert c["status"] == "failed"
    assert c["failures"] == [
        "hold at or above 134 °C computed from the trace is 1:01 (m:ss), below the "
        "program's 3 min"]


def test_dac_log_yields_its_cycles_reimport_skips_all_and_gaps_show(cli: Cli) -> None:
    _dac(cli)
    out = imp(cli, "DAC", f"{DAC}/DAC.Log")
    assert [c["device_cycle_no"] for c in out["cycles"]] == [13, 14, 15, 16, 17]
    assert [c["status"] for c in out["cycles"]] == ["ci-pending", "failed", "ci-pending",
                                                   "ci-pending", "ci-pending"]
    before = cli.audit_count()
    again = imp(cli, "DAC", *(f for f in ALL_FILES if f.endswith(".TXT")))
    assert [c["device_cycle_no"] for c in again["cycles"]] == [456, 1015, 1100]
    assert sorted(again["skipped"]) == [13, 14]
    third = imp(cli, "DAC", *(f for f in ALL_FILES if f.startswith(DAC)))
    assert third["cycles"] == []
    assert sorted(third["skipped"]) == [13, 14, 15, 16, 17, 456, 1015, 1100]
    assert cli.audit_count() == before + 1  # the skipped-only import wrote nothing
    items = [i for i in cli.json("status")["items"] if i["kind"] == "counter"]
    gaps = [i["message"] for i in items]
    assert len(gaps) == 3
    assert "device cycle(s) 18-455 not imported (438 missing" in gaps[0]
    assert "457-1014" in gaps[1] and "1016-1099" in gaps[2]
    assert all(i["subject"] == "DAC" and i["state"] == "check" for i in items)


def test_a_cycle_dated_before_the_previous_number_is_shown(cli: Cli, tmp_path: Path) -> None:
    _dac(cli)
    imp(cli, "DAC", f"{DAC}/DACLogOK.TXT")
    # Fixture variant of DACLogOK.TXT: cycle 14, dated a day before cycle 13 (a clock set back).
    text_ = sample(f"{DAC}/DACLogOK.TXT").read_text("ascii")
    f = tmp_path / "back.TXT"
    f.write_text(text_.replace("Zyklus:     13", "Zyklus:     14")
                 .replace("16-03-2016", "15-03-2016"), "ascii")
    cli.ok("cycle", "import", "--sterilizer", "DAC", str(f))
    [item] = [i for i in cli.json("status")["items"] if i["kind"] == "counter"]
    assert "device cycle 14 is dated 2016-03-15 00:53, before cycle 13" in item["message"]


def test_a_serial_mismatch_names_both_serials_and_writes_nothing(cli: Cli) -> None:
    _tutt(cli)  # serial 00000000
    before = cli.audit_count()
    r = cli.fails("cycle", "import", "--sterilizer", "EL", str(sample(f"{TUTT}/000100.txt")),
                  str(sample(f"{TUTT}/01.txt")))
    assert "recorded by serial '88888888'" in r.stderr
    assert "sterilizer EL's serial is '00000000'" in r.stderr
    assert cli.audit_count() == before


def test_no_serial_on_file_is_refused_until_sterilizer_update(cli: Cli) -> None:
    cli.ok("sterilizer", "add", "EL", "--model", "Elara11", "--type", "B")
    cli.ok("sterilizer", "program", "EL", "wrapped", "--temp-c", "134", "--hold-min", "5")
    r = cli.fails("cycle", "import", "--sterilizer", "EL", str(sample(f"{TUTT}/000100.txt")))
    assert "has no serial on file" in r.stderr and "sterilizer update EL --serial" in r.stderr
    cli.ok("sterilizer", "update", "EL", "--serial", "00000000")
    assert cli.json("sterilizer", "list")["sterilizers"][0]["serial"] == "00000000"
    imp(cli, "EL", f"{TUTT}/000100.txt")


def test_no_fitting_program_says_which_to_add(cli: Cli) -> None:
    cli.ok("sterilizer", "add", "DAC", "--model", "DAC", "--type", "S", "--serial", "601362")
    r = cli.fails("cycle", "import", "--sterilizer", "DAC", str(sample(f"{DAC}/DACLogOK.TXT")))
    assert "no program of DAC fits it" in r.stderr
    assert "sterilog sterilizer program DAC NAME --temp-c 134.0 --hold-min 3" in r.stderr


def test_an_unknown_file_is_exit_1_naming_it(cli: Cli, tmp_path: Path) -> None:
    _dac(cli)
    f = tmp_path / "photo.jpg"
    f.write_bytes(b"\xff\xd8\xff\xe0 not a record")
    r = cli.fails("cycle", "import", "--sterilizer", "DAC", str(f))
    assert r.stderr.startswith("Error: photo.jpg: not a cycle record of a supported autoclave")


def test_pack_options_need_exactly_one_file(cli: Cli) -> None:
    _dac(cli)
    r = cli.fails("cycle", "import", "--sterilizer", "DAC", str(sample(f"{DAC}/DACLogOK.TXT")),
                  str(sample(f"{DAC}/DACLogFehler.TXT")), "--ci", "pass")
    assert "go with one FILE only" in r.stderr


def test_an_imported_load_without_ci_blocks_its_packs_until_cycle_ci(
    cli: Cli, tmp_path: Path
) -> None:
    setup_clinic(cli)
    _dac(cli)
    cli.ok("air-removal", "record", "--sterilizer", "DAC", "--result", "pass",
           "--at", "2016-03-16T00:30:00+00:00")
    out = imp(cli, "DAC", f"{DAC}/DACLogOK.TXT", extra=("--pack", "P3", "--bi-lot", "BI-D"))
    [c] = out["cycles"]
    assert c["status"] == "ci-pending"
    refused = start(cli, packs=("P3",), expect=3)
    assert codes(refused) == ["pack-ci-missing"]
    status = cli.json("status")["items"]
    assert any(i["kind"] == "ci" and i["subject"] == f"load {c['load_id']}" for i in status)
    r = cli.fails("label", "load", str(c["load_id"]), "-o", str(tmp_path / "labels.pdf"))
    assert "chemical indicator has not been read" in r.stderr
    done = cli.json("cycle", "ci", str(c["load_id"]), "--ci", "pass", "--ci-type", "5")
    assert done["status"] == "passed"
    cli.fails("cycle", "ci", str(c["load_id"]), "--ci", "fail")  # a reading is final
    start(cli, packs=("P3",))
    again = cli.fails("cycle", "import", "--sterilizer", "DAC",
                      str(sample(f"{DAC}/DACLogOK.TXT")), "--pack", "P2")
    assert f"already imported (device cycle 13 is load {c['load_id']})" in again.stderr


def test_a_failed_ci_reading_fails_the_imported_load(cli: Cli) -> None:
    setup_clinic(cli)
    _dac(cli)
    cli.ok("air-removal", "record", "--sterilizer", "DAC", "--result", "pass",
           "--at", "2016-03-16T00:30:00+00:00")
    [c] = imp(cli, "DAC", f"{DAC}/DACLogOK.TXT", extra=("--pack", "P3", "--bi-lot", "B"))["cycles"]
    assert cli.json("cycle", "ci", str(c["load_id"]), "--ci", "fail")["status"] == "failed"
    assert codes(start(cli, packs=("P3",), expect=3)) == ["pack-load-failed"]


def test_a_load_with_packs_is_held_to_the_cycle_rules(cli: Cli) -> None:
    setup_clinic(cli)
    _dac(cli)  # type S: no air-removal test recorded on 2016-03-16
    before = cli.audit_count()
    out = cli.json("cycle", "import", "--sterilizer", "DAC", str(sample(f"{DAC}/DACLogOK.TXT")),
                   "--pack", "P3", "--bi-lot", "B", expect=3)
    assert [r["code"] for r in out["reasons"]] == ["air-removal-test-missing"]
    assert cli.audit_count() == before


def test_a_typed_cycle_still_works_and_cycle_ci_refuses_it(cli: Cli) -> None:
    setup_clinic(cli)
    assert [x["source"] for x in cli.json("cycle", "list")["cycles"]] == ["typed"]
    r = cli.fails("cycle", "ci", "1", "--ci", "pass")
    assert "recorded with the cycle" in r.stderr


def test_trace_load_shows_device_cycle_file_hash_and_source(cli: Cli, tmp_path: Path) -> None:
    setup_clinic(cli)  # load 1 is typed
    _dac(cli)
    [c] = imp(cli, "DAC", f"{DAC}/DACLogOK.TXT")["cycles"]
    digest = hashlib.sha256(sample(f"{DAC}/DACLogOK.TXT").read_bytes()).hexdigest()
    shown = cli.ok("trace", "load", str(c["load_id"])).stdout
    assert "imported from the sterilizer's record: device cycle 13 (serial 601362), " \
           "file DACLogOK.TXT lines 1-35" in shown
    assert f"File SHA-256: {digest}" in shown
    assert "hold 3:02 at or above 134 °C, 135.3-135.4 °C" in shown
    load = cli.json("trace", "load", str(c["load_id"]))["load"]
    assert (load["source"], load["device"]["device_cycle_no"]) == ("imported", 13)
    assert load["device"]["sha256"] == digest
    assert "Source: typed" in cli.ok("trace", "load", "1").stdout
    report = tmp_path / "lab.pdf"
    report.write_bytes(b"%PDF-1.4 lab")
    cli.ok("attach", "load", "1", str(report))
    assert "Document: attachment 2 lab.pdf sha256 " in cli.ok("trace", "load", "1").stdout
    assert [a["filename"] for a in cli.json("trace", "load", "1")["load"]["attachments"]] == [
        "lab.pdf"]
    assert cli.json("trace", "load", "1")["load"]["source"] == "typed"


# --- attachments -------------------------------------------------------------------------------


def test_attach_list_get_round_trip(cli: Cli, tmp_path: Path) -> None:
    setup_clinic(cli)
    pdf = tmp_path / "lab report.pdf"
    pdf.write_bytes(b"%PDF-1.4\n spore test negative \n%%EOF\n")
    out = cli.json("attach", "bi", "1", str(pdf), "--note", "lab report")
    assert out["media_type"] == "application/pdf"
    assert out["sha256"] == hashlib.sha256(pdf.read_bytes()).hexdigest()
    cli.json("attach", "sterilizer", "AC1", str(pdf))
    listed = cli.json("attachment", "list", "bi", "1")["attachments"]
    assert [(a["attachment_id"], a["note"]) for a in listed] == [(out["attachment_id"],
                                                                  "lab report")]
    assert len(cli.json("attachment", "list")["attachments"]) == 2
    target = tmp_path / "copy.pdf"
    cli.ok("attachment", "get", str(out["attachment_id"]), "-o", str(target))
    assert target.read_bytes() == pdf.read_bytes()
    r = cli.fails("attachment", "get", str(out["attachment_id"]), "-o", str(target))
    assert "already exists" in r.stderr
    cli.json("audit", "verify")


def test_an_imported_load_lists_its_device_file(cli: Cli) -> None:
    _dac(cli)
    [c] = imp(cli, "DAC", f"{DAC}/DACLogOK.TXT")["cycles"]
    [a] = cli.json("attachment", "list", "load", str(c["load_id"]))["attachments"]
    assert (a["filename"], a["sha256"]) == ("DACLogOK.TXT", c["sha256"])


def test_attaching_to_a_missing_exposure_names_it(cli: Cli, tmp_path: Path) -> None:
    f = tmp_path / "note.txt"
    f.write_text("x")
    r = cli.fails("attach", "exposure", "1", str(f))
    assert "exposure" in r.stderr and "1" in r.stderr and "Traceback" not in r.stderr


def test_attachments_over_20_mb_and_empty_files_are_refused(cli: Cli, tmp_path: Path) -> None:
    setup_clinic(cli)
    big = tmp_path / "big.bin"
    with big.open("wb") as fh:
        fh.truncate(20 * 1024 * 1024 + 1)
    before = cli.audit_count()
    assert "limited to 20 MB" in cli.fails("attach", "load", "1", str(big)).stderr
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    assert "is empty" in cli.fails("attach", "load", "1", str(empty)).stderr
    small = tmp_path / "ok.txt"
    small.write_text("fine")
    assert "unknown load 99" in cli.fails("attach", "load", "99", str(small)).stderr
    assert cli.audit_count() == before


def test_changed_or_removed_attachment_bytes_fail_audit_verify(cli: Cli, tmp_path: Path) -> None:
    setup_clinic(cli)
    f = tmp_path / "cert.pdf"
    f.write_bytes(b"%PDF-1.4 validation certificate")
    a = cli.json("attach", "sterilizer", "AC1", str(f))["attachment_id"]
    b = cli.json("attach", "load", "1", str(f))["attachment_id"]
    _tamper(cli, "UPDATE attachments SET data = :d WHERE id = :i",
            params={"d": b"%PDF-1.4 forged certificate", "i": a})
    out = cli.json("audit", "verify", expect=4)
    assert [p["record"] for p in out["problems"]] == [f"attachments #{a}"]
    assert "changed: data" in out["problems"][0]["message"]
    r = cli.run("attachment", "get", str(a), "-o", str(tmp_path / "x.pdf"))
    assert r.exit_code == 4 and "do not match its recorded SHA-256" in r.stderr
    _tamper(cli, f"DELETE FROM attachments WHERE id = {b}")
    out = cli.json("audit", "verify", expect=4)
    assert f"attachments #{b}" in [p["record"] for p in out["problems"]]


def test_the_audit_entry_carries_the_hash_not_the_bytes(cli: Cli) -> None:
    _dac(cli)
    imp(cli, "DAC", f"{DAC}/DAC.Log")
    data = sample(f"{DAC}/DAC.Log").read_bytes()
    engine = cli.engine()
    try:
        with engine.connect() as conn:
            records = conn.execute(text(
                "SELECT records FROM audit_log WHERE action = 'cycle.import'")).scalar_one()
    finally:
        engine.dispose()
    digest = hashlib.sha256(data).hexdigest()
    assert f'"data":"sha256:{digest}"' in records
    assert f'"sha256":"{digest}"' in records
    assert len(records) < len(data)


def test_csv_export_writes_attachments_with_their_hashes_in_the_manifest(
    cli: Cli, tmp_path: Path
) -> None:
    import json

    _dac(cli)
    [c] = imp(cli, "DAC", f"{DAC}/DACLogOK.TXT")["cycles"]
    pdf = tmp_path / "cert.pdf"
    pdf.write_bytes(b"%PDF-1.4 certificate")
    cli.ok("attach", "sterilizer", "DAC", str(pdf))
    out = tmp_path / "export"
    cli.ok("export", "--from", "2016-03-01", "--to", "2016-03-31", "--format", "csv",
           "-o", str(out))
    manifest = json.loads((out / "manifest.json").read_text())
    files = {a["filename"]: a for a in manifest["attachments"]}
    assert set(files) == {"DACLogOK.TXT", "cert.pdf"}
    for a in files.values():
        data = (out / a["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == a["sha256"]
    assert (out / files["DACLogOK.TXT"]["file"]).read_bytes() == \
        sample(f"{DAC}/DACLogOK.TXT").read_bytes()
    imported = (out / "imported_cycles.csv").read_text()
    assert "601362" in imported and ",13," in imported
    cycles = (out / "cycles.csv").read_text()
    assert "ci-pending" in cycles
    assert c["load_id"] == 1


def _pdf_text(path: Path) -> str:
    import io

    from pypdf import PdfReader

    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(path.read_bytes())).pages)


def test_the_monthly_report_marks_imported_and_typed_loads_and_the_counter_gaps(
    cli: Cli, tmp_path: Path
) -> None:
    _dac(cli)
    imp(cli, "DAC", f"{DAC}/DACLogOK.TXT", f"{DAC}/DACLogFehlerII.TXT")
    # A typed load in the same month as the imported 456 (March 2017).
    cli.ok("sterilizer", "add", "AC9", "--model", "M", "--type", "N")
    cli.ok("cycle", "record", "--sterilizer", "AC9", "--program", "134-3.5", "--temp-c", "134",
           "--hold-min", "3.5", "--ci", "pass", "--bi-lot", "L", "--at",
           "2017-03-20T10:00:00+00:00")
    pdf = tmp_path / "m.pdf"
    cli.ok("report", "monthly", "--month", "2017-03", "-o", str(pdf))
    text = " ".join(_pdf_text(pdf).split())
    assert "1 imported from the sterilizers' records, 1 typed" in text
    assert "imported, device #456" in text and "DACLogFehlerII.TXT" in text
    assert "typed" in text
    assert "device cycle(s) 14-455 not imported (442 missing" in text
    digest = hashlib.sha256(sample(f"{DAC}/DACLogFehlerII.TXT").read_bytes()).hexdigest()
    assert digest in "".join(text.split())  # the table cell may wrap the hash


def test_the_trace_report_shows_the_device_evidence(cli: Cli, tmp_path: Path) -> None:
    _dac(cli)
    [c] = imp(cli, "DAC", f"{DAC}/DACLogFehlerII.TXT")["cycles"]
    pdf = tmp_path / "t.pdf"
    cli.ok("report", "trace", "load", str(c["load_id"]), "-o", str(pdf))
    text = " ".join(_pdf_text(pdf).split())
    assert "imported: device cycle 456 of serial 601362, file DACLogFehlerII.TXT" in text
    assert "hold 0:00 at or above 134 °C" in text
    assert "device verdict FAILED (Error code 93 (Sterilisation: FEHL); then Error code 72)" \
        in text


def test_an_unread_ci_of_an_imported_load_with_packs_is_a_monthly_gap(
    cli: Cli, tmp_path: Path
) -> None:
    _dac(cli)
    cli.ok("pack", "add", "P9", "--contents", "handpiece")
    cli.ok("air-removal", "record", "--sterilizer", "DAC", "--result", "pass",
           "--at", "2016-03-16T00:30:00+00:00")
    [c] = imp(cli, "DAC", f"{DAC}/DACLogOK.TXT", extra=("--pack", "P9", "--bi-lot", "B"))[
        "cycles"]
    pdf = tmp_path / "m.pdf"
    cli.ok("report", "monthly", "--month", "2016-03", "-o", str(pdf))
    text = " ".join(_pdf_text(pdf).split())
    assert f"load {c['load_id']} (#1 on DAC): no chemical-indicator result" in text
    assert "INCOMPLETE" in text
    cli.ok("cycle", "ci", str(c["load_id"]), "--ci", "pass")
    pdf2 = tmp_path / "m2.pdf"
    cli.ok("report", "monthly", "--month", "2016-03", "-o", str(pdf2))
    text2 = " ".join(_pdf_text(pdf2).split())
    assert "no chemical-indicator result" not in text2
    # The log shows the reading, as `trace load` does (it said "not read" after the reading).
    assert "hold 3:02 pass BI 1 (B)" in text2
    assert cli.json("trace", "load", str(c["load_id"]))["load"]["status"] == "passed"
