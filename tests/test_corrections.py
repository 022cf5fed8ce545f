"""Issue 14, point 3: corrections as history, never overwrites. Both backends."""

from __future__ import annotations

import pytest
from conftest import Cli
from test_gate import clean, hri, setup_clinic, start


@pytest.fixture
def clinic(cli: Cli) -> Cli:
    setup_clinic(cli)
    return cli


def test_a_session_ended_late_is_ended_when_the_client_left(clinic: Cli) -> None:
    sid = start(clinic, packs=("P1",))["session_id"]  # 09:00
    later = "2026-11-24T14:00:00+00:00"
    before = clinic.audit_count()
    r = clinic.fails("session", "end", str(sid), "--at", "2026-11-24T08:59", operator="ann",
                     now=later)
    assert "before session 1 started" in r.stderr
    clinic.fails("session", "end", str(sid), "--at", "2026-11-24T15:00", operator="ann",
                 now=later)  # the future
    assert clinic.audit_count() == before
    out = clinic.json("session", "end", str(sid), "--at", "2026-11-24T09:45", operator="ann",
                      now=later)
    assert out["ended_at"] == "2026-11-24T09:45:00Z"
    # Cleaned at 10:00, after the client really left: the next client needs no second clean.
    clean(clinic, "R1", "SN-1", at="2026-11-24T10:00:00+00:00", now=later)
    nxt = start(clinic, scan=hri("LOTA", "0002"), client="C-2", now=later, packs=())
    assert nxt["decision"] == "go", nxt


def test_a_lapsed_licence_is_renewed_and_trace_keeps_the_old_one(clinic: Cli) -> None:
    clinic.ok("staff", "add", "carl", "--name", "Carl", "--role", "practitioner",
              "--license", "OLD-1", "--license-expires", "2026-11-01")
    out = start(clinic, operator="carl", expect=3)
    assert "practitioner-not-licensed" in [r["code"] for r in out["reasons"]]
    # docs/gate.md's remedy: a manager renews it (staff add of the same ID is refused).
    clinic.fails("staff", "add", "carl", "--name", "Carl", "--role", "practitioner")
    before = clinic.audit_count()
    r = clinic.run("staff", "update", "carl", "--license-expires", "2028-01-01", operator="ann")
    assert r.exit_code != 0 and clinic.audit_count() == before  # a practitioner may not
    later = "2026-11-24T11:00:00+00:00"
    upd = clinic.json("staff", "update", "carl", "--license", "NEW-2", "--license-expires",
                      "2028-01-01", now=later)
    assert (upd["license"], upd["license_expires"]) == ("NEW-2", "2028-01-01")
    clean(clinic, "R1", "SN-1", at="2026-11-24T11:00:00+00:00", now=later)
    go = start(clinic, operator="carl", client="C-5", now=later, scan=hri("LOTA", "0002"))
    assert go["decision"] == "go", go
    traced = clinic.json("trace", "session", str(go["session_id"]))
    assert "NEW-2" in str(traced) and "OLD-1" not in str(traced)
    assert clinic.json("audit", "verify")["ok"] is True


def test_status_and_the_gate_agree_about_a_renewed_licence(clinic: Cli) -> None:
    clinic.ok("staff", "add", "carl", "--name", "Carl", "--role", "practitioner",
              "--license", "OLD-1", "--license-expires", "2026-11-01")

    def licence_items() -> list[dict[str, str]]:
        items = clinic.json("status")["items"]
        return [i for i in items if i["kind"] == "licence" and i["subject"] == "carl"]

    (item,) = licence_items()
    assert item["state"] == "blocked" and "2026-11-01" in item["message"]
    clinic.json("staff", "update", "carl", "--license-expires", "2028-01-01")
    assert licence_items() == []  # renewed: status says what the gate now says
    clinic.json("staff", "update", "carl", "--license-expires", "2026-12-10")
    (item,) = licence_items()
    assert item["state"] == "due" and "2026-12-10" in item["message"]


def test_a_session_before_a_renewal_shows_the_old_licence(clinic: Cli) -> None:
    sid = start(clinic, packs=("P1",))["session_id"]
    clinic.json("staff", "update", "ann", "--license", "PR-9", "--license-expires",
                "2030-01-01", now="2026-11-24T11:00:00+00:00")
    detail = clinic.json("trace", "session", str(sid))
    text = str(detail)
    assert "PR-1" in text and "2027-06-30" in text and "PR-9" not in text
    staff = {s["id"]: s for s in clinic.json("staff", "list")["staff"]}
    assert staff["ann"]["license"] == "PR-9"


def test_a_retired_device_and_a_deactivated_colleague_can_be_reinstated(clinic: Cli) -> None:
    clinic.ok("device", "retire", "SN-1", "--reason", "motor noise")
    out = start(clinic, expect=3)
    assert "device-retired" in [r["code"] for r in out["reasons"]]
    clinic.fails("device", "reinstate", "SN-2")  # not retired
    clinic.ok("device", "reinstate", "SN-1")
    assert start(clinic)["decision"] == "go"
    assert not {d["id"]: d for d in clinic.json("device", "list")["devices"]}["SN-1"]["retired"]
    # and may be retired again, but not in the second it was reinstated (the clock counts whole
    # seconds: a stop at the reinstatement's instant would not stand, and used to be recorded)
    r = clinic.fails("device", "retire", "SN-1", "--reason", "again")
    assert "same second" in r.stderr
    later = clinic.now.replace(":00+00:00", ":01+00:00")
    assert later != clinic.now
    clinic.ok("device", "retire", "SN-1", "--reason", "again", now=later)
    assert {d["id"]: d for d in clinic.json("device", "list", now=later)["devices"]}["SN-1"][
        "retired"
    ]

    clinic.ok("staff", "deactivate", "ann", "--reason", "left")
    r = clinic.run("clean", "room", "R2", "--kind", "between-clients", "--disinfectant",
                   "Clinell", operator="ann")
    assert r.exit_code != 0
    clinic.ok("staff", "reinstate", "ann")
    clinic.ok("clean", "room", "R2", "--kind", "between-clients", "--disinfectant", "Clinell",
              operator="ann")
    assert "same second" in clinic.fails("staff", "deactivate", "ann", "--reason", "x").stderr
    assert {s["id"]: s for s in clinic.json("staff", "list")["staff"]}["ann"]["active"]
    assert clinic.json("audit", "verify")["ok"] is True


def test_device_depth_and_disinfectant_contact_time_can_be_corrected(clinic: Cli) -> None:
    out = start(clinic, extra=("--depth-mm", "2.0"), packs=("P1",), expect=0)
    assert out["decision"] == "go"
    clinic.ok("session", "end", "1", operator="ann")
    clinic.ok("device", "update", "SN-2", "--max-depth-mm", "1.0")
    clean(clinic, "R2", "SN-2")
    out = start(clinic, room="R2", device="SN-2", scan=hri("LOTA", "0002"),
                extra=("--depth-mm", "1.5"), expect=3)
    assert "device-depth-exceeded" in [r["code"] for r in out["reasons"]]
    clinic.ok("disinfectant", "update", "Clinell", "--contact-min", "3")
    r = clinic.fails("clean", "room", "R1", "--kind", "between-clients", "--disinfectant",
                     "Clinell", "--contact-min", "2")
    assert "label contact time is 3" in r.stderr
    listed = {d["id"]: d for d in clinic.json("disinfectant", "list")["disinfectants"]}
    assert listed["Clinell"]["contact_min"] == 3


def test_an_incident_without_a_session(clinic: Cli) -> None:
    out = clinic.json("incident", "record", "--kind", "exposure", "--staff", "ann", "--room",
                      "R1", "--device", "SN-1", "--note", "needlestick while cleaning the pen",
                      operator="ann")
    assert out["session_id"] is None and out["incident_id"] == 1
    clinic.fails("incident", "record", "--kind", "exposure", "--staff", "nobody",
                 "--note", "x", operator="ann")
    clinic.fails("incident", "record", "--session", "1", "--room", "R1", "--kind", "other",
                 "--note", "x", operator="ann")
    words = clinic.ok("void", "incident", "1", "--reason", "duplicate").stdout
    assert words.startswith("Voided exposure incident 1 (no session)")
    assert clinic.json("audit", "verify")["ok"] is True
