"""The one table of every rule (gate, cycle, monthly gap, status, warning), with stable codes.

`docs/gate.md` is generated from `RULES` (sterilog/docgen.py); `tests/test_docs.py` keeps it in
sync. The gate and cycle rows live next to their functions (`rules.py`, `cycle_rules.py`) so that
`sterilog check` imports only its own; the gap and status rows are here.
"""

from __future__ import annotations

from sterilog.compliance.cycle_rules import (
    CYCLE_RULES,
    air_removal_missing,
    bi_overdue,
    sterilizer_locked,
)
from sterilog.compliance.rules import (
    GATE_RULES,
    WARNING_RULES,
    RuleSpec,
    device_reprocessed,
    room_cleaned,
)

# The monthly report's gaps (SPEC §8). Each `same_as` gap runs the named rule's own function
# over the facts as of the record's own time, read from the database as it is now (voids
# applied): a record the gate or `cycle record` accepted is a gap only if a later correction
# (a void, a back-dated record) changed what was true at its time, or the rule pack changed.
GAP_RULES: tuple[RuleSpec, ...] = (
    RuleSpec(
        "gap-bi-overdue",
        bi_overdue,
        "a cycle of the month (not voided) that `sterilizer-bi-overdue` blocks when judged as of "
        "its own time: it carries no BI and no BI within the rule pack's interval before it "
        "counts. There are no calendar weeks: a week is judged by the same rolling window as "
        "the gate, so a clinic that was never blocked never has a spore-testing gap",
        "The report must show every load that ran without spore-test cover.",
        "Put a BI in the next load; assess the uncovered loads' packs.",
        scope="gap",
        same_as="sterilizer-bi-overdue",
    ),
    RuleSpec(
        "gap-air-removal",
        air_removal_missing,
        "a cycle of the month that `air-removal-test-missing` or `air-removal-test-failed` "
        "blocks when judged as of its own time (voided tests do not count); one line per "
        "sterilizer and day",
        "Every load of a pre-vacuum sterilizer needs that day's passing air-removal test first.",
        "Record the day's test before the first load.",
        scope="gap",
        same_as="air-removal-test-missing",
    ),
    RuleSpec(
        "gap-ci-missing",
        None,
        "a cycle of the month (not voided) has no chemical-indicator result",
        "Chemical monitoring of every load is required (CDC 2003).",
        "Record the indicator with every cycle.",
        scope="gap",
    ),
    RuleSpec(
        "gap-room-not-cleaned",
        room_cleaned,
        "a session of the month that `room-not-cleaned` blocks when judged as of its start: "
        "no between-clients or end-of-day clean (not voided) after the previous session in "
        "that room ended",
        "Surfaces must be cleaned and disinfected between clients.",
        "Clean the room after every client; trace the session to see who used it in between.",
        scope="gap",
        same_as="room-not-cleaned",
    ),
    RuleSpec(
        "gap-device-not-reprocessed",
        device_reprocessed,
        "a session of the month that `device-not-reprocessed` blocks when judged as of its "
        "start: no device clean (not voided) after the device's previous session ended",
        "The pen is cleaned and disinfected after every client.",
        "Reprocess the pen after every client.",
        scope="gap",
        same_as="device-not-reprocessed",
    ),
    RuleSpec(
        "gap-session-open",
        None,
        "a session started in the month is still open",
        "An open session means the room, pen and packs were never released for reprocessing.",
        "End it with `sterilog session end SESSION_ID`.",
        scope="gap",
    ),
)

# `sterilog status` items: each says now what the gate or `cycle record` will block next.
STATUS_RULES: tuple[RuleSpec, ...] = (
    RuleSpec(
        "status-device-counter",
        None,
        "imported device cycles of a sterilizer skip cycle numbers, go backwards, or are dated "
        "before the cycle numbered before them (state `check`; also a sterilization gap)",
        "A missing device cycle may be a load nobody recorded, or a cycle cloned under a new "
        "number; the device's own counter is the evidence.",
        "Import the missing cycles' records, or explain the gap (a service visit, a test "
        "cycle) in a note attached to the sterilizer.",
        scope="status",
    ),
    RuleSpec(
        "status-pack-ci-missing",
        None,
        "an imported load with packs has no chemical-indicator reading yet (state `due`)",
        "See `pack-ci-missing`.",
        "Read the packs' indicators and record them with "
        "`sterilog cycle ci LOAD_ID --ci pass|fail`.",
        scope="status",
    ),
    RuleSpec(
        "status-bi-at-lab",
        None,
        "a BI mailed to a lab (`bi mail`) has no result and was not declared invalid: its age "
        "and the lab's receipt deadline (`lab_receipt_days` after the test); state `overdue` "
        "once `lab_result_days` have passed or the deadline passed unreceived",
        "A mailed BI counts for the weekly rule only until `lab_result_days` after it was "
        "placed; labs reject strips received late.",
        "Chase the lab; record `sterilog bi received BI_ID --at TIME`, "
        "`sterilog bi read BI_ID --result negative|positive --control positive|negative "
        "--report-no NO` or `sterilog bi invalid BI_ID --reason late-receipt|expired-envelope|"
        "missing-strip|damaged|other`.",
        scope="status",
    ),
    RuleSpec(
        "status-exposure-open",
        None,
        "an exposure (positive BI, recall, incident) is open: clients not yet notified (state "
        "`due`), or all accounted for but not closed (state `check`)",
        "Clients treated with packs of a suspect load or a recalled lot must be told; the "
        "report's page 1 cannot be green while an exposure is open.",
        "Notify each client (`sterilog exposure notify ID --client CLIENT --how ...`, or "
        "`--unreachable` after trying); when only unreachable ones are left, a manager closes "
        "it (`sterilog exposure close ID --note TEXT`).",
        scope="status",
    ),
    RuleSpec(
        "status-sterilizer-locked",
        sterilizer_locked,
        "`sterilizer-locked` would block a load now",
        "See `sterilizer-locked`.",
        "Run test cycles with a BI.",
        scope="status",
        same_as="sterilizer-locked",
    ),
    RuleSpec(
        "status-bi-overdue",
        bi_overdue,
        "`sterilizer-bi-overdue` would block a cycle without a BI now (state `overdue`); within "
        "`bi_due_warning_hours` of that: state `due`",
        "See `sterilizer-bi-overdue`.",
        "Put a BI in the next load.",
        scope="status",
        same_as="sterilizer-bi-overdue",
    ),
    RuleSpec(
        "status-air-removal",
        air_removal_missing,
        "`air-removal-test-missing` (state `due`) or `air-removal-test-failed` (state "
        "`blocked`) would block a load now",
        "See those rules.",
        "Run and record the day's air-removal test.",
        scope="status",
        same_as="air-removal-test-missing",
    ),
    RuleSpec(
        "status-room-not-cleaned",
        room_cleaned,
        "`room-not-cleaned` would block a session in the room now",
        "See `room-not-cleaned`.",
        "Clean the room.",
        scope="status",
        same_as="room-not-cleaned",
    ),
    RuleSpec(
        "status-device-not-reprocessed",
        device_reprocessed,
        "`device-not-reprocessed` would block a session with the (not retired) device now",
        "See `device-not-reprocessed`.",
        "Clean the device.",
        scope="status",
        same_as="device-not-reprocessed",
    ),
    RuleSpec(
        "status-session-open",
        None,
        "a session is open (state `overdue` after `open_session_warning_hours`)",
        "The room and pen cannot be reprocessed until it ends.",
        "End it with `sterilog session end SESSION_ID`.",
        scope="status",
    ),
    RuleSpec(
        "status-stock",
        None,
        "units still on the shelf belong to a recalled lot (`blocked`), an expired lot "
        "(`overdue`) or one expiring within `cartridge_expiry_warning_days` (`due`)",
        "The gate will refuse them (`cartridge-recalled`, `cartridge-expired`).",
        "Quarantine, return or discard them.",
        scope="status",
    ),
    RuleSpec(
        "status-licence",
        None,
        "an active staff member's licence has expired (`blocked`, as "
        "`practitioner-not-licensed`) or expires within 30 days (`due`)",
        "See `practitioner-not-licensed`.",
        "Renew the licence.",
        scope="status",
    ),
)

RULES: tuple[RuleSpec, ...] = (
    *GATE_RULES,
    *CYCLE_RULES,
    *GAP_RULES,
    *STATUS_RULES,
    *WARNING_RULES,
)
SCOPES = ("gate", "cycle", "gap", "status", "warning")
BY_CODE: dict[str, RuleSpec] = {r.code: r for r in RULES}
