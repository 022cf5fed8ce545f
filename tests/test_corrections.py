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
