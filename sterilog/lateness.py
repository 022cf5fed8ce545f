"""Late entries: the one definition, used by every command, list and report.

A record is a *late entry* when its event time (`at`, a session's `started_at`) lies more than
the rule pack's `late_entry_minutes` before the time it was recorded (`recorded_at`, the clock of
record). A late entry is not wrong (a paper backlog is entered later), but an inspector must see
it: a clean entered on Friday "for" Monday is not the same evidence as one entered on Monday.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

DEFAULT_LATE_ENTRY_MINUTES = 60


def is_late(at: dt.datetime | None, recorded_at: dt.datetime | None, minutes: int) -> bool:
    """True when `at` is more than `minutes` before `recorded_at`."""
    if at is None or recorded_at is None:
        return False
    return recorded_at - at > dt.timedelta(minutes=minutes)


def text_mark(row: dict[str, Any], tz: Any) -> str:
    """The text a list row of a late entry ends with: `LATE (entered <local time> by <who>)`;
    empty for a row that is not late (rows carry `late`, `recorded_at`, `entered_by`)."""
    if not row.get("late"):
        return ""
    from sterilog.clock import fmt_local

    recorded = dt.datetime.fromisoformat(str(row["recorded_at"]).replace("Z", "+00:00"))
    by = row.get("entered_by") or "unknown"
    return f"LATE (entered {fmt_local(recorded, tz)} by {by})"
