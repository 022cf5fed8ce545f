"""Issue 14, point 4: void what you can see -- every voidable record's ID is printed, `void`
says in words what it voided, and `void bi-read` takes the read ID that `bi read`/`bi list`
show. Both backends."""

from __future__ import annotations

from conftest import Cli
from test_sterilization import DAY1, DAY2, air, clinic, cycle, read

__all__ = ["clinic"]


def test_void_bi_read_takes_the_read_id_shown_and_says_what_it_voided(clinic: Cli) -> None:
    d1 = f"{DAY1}T18:00:00Z"
    air(clinic, f"{DAY1}T07:00:00Z", now=d1)
    load1 = cycle(clinic, "--pack", "P1", "--bi-lot", "SP-1", "--at", f"{DAY1}T07:30:00Z", now=d1)
    load2 = cycle(clinic, "--pack", "P2", "--bi-lot", "SP-1", "--at", f"{DAY1}T13:00:00Z", now=d1)
    # BI 2 is read first (read 1), then BI 1 positive (read 2): "BI 2" is not "read 2".
    first = read(clinic, load2["bi_id"], "negative", f"{DAY1}T16:00:00Z", now=d1)
    text = clinic.ok("bi", "read", str(load1["bi_id"]), "--result", "positive", "--control",
                     "positive", "--at", f"{DAY2}T08:00:00Z").stdout
    listed = {b["bi_id"]: b["read_id"] for b in clinic.json("bi", "list")["bis"]}
    positive_read = listed[load1["bi_id"]]
    assert positive_read != load1["bi_id"] and first["read_id"] == listed[load2["bi_id"]]
    assert f"read {positive_read}" in text
    assert f"void bi-read {positive_read}" in text
    table = clinic.ok("bi", "list").stdout
    assert "READ_ID" in table.splitlines()[0]
    suspect = {c["load_id"] for c in clinic.json("cycle", "list")["cycles"] if c["suspect"]}
    assert suspect
    r = clinic.ok("void", "bi-read", str(positive_read), "--reason", "misread the colour")
    line = r.stdout.splitlines()[0]
    assert line.startswith(f"Voided positive read of BI {load1['bi_id']} (load {load1['load_id']})")
    assert "no longer suspect" in line
    for load in suspect:
        assert str(load) in line.split("no longer suspect")[0]
    assert not any(c["suspect"] for c in clinic.json("cycle", "list")["cycles"])
    # BI 2's negative read is untouched.
    assert {b["bi_id"]: b["result"] for b in clinic.json("bi", "list")["bis"]}[
        load2["bi_id"]
    ] == "negative"


def test_every_voidable_record_prints_its_id(clinic: Cli) -> None:
    air_out = clinic.ok("air-removal", "record", "--sterilizer", "AC1", "--result", "pass",
                        "--at", f"{DAY2}T07:00:00Z").stdout
    assert "Air-removal test 1 " in air_out
    service = clinic.ok("sterilizer", "service", "AC1", "--note", "door seal").stdout
    assert "service 1 " in service
    words = clinic.ok("void", "service", "1", "--reason", "wrong sterilizer").stdout
    assert words.startswith("Voided service 1 of AC1 (door seal)")
    words = clinic.ok("void", "air-removal", "1", "--reason", "typo").stdout
    assert words.startswith("Voided air-removal test 1 of AC1 (pass)")
