"""Closed vocabularies, each defined once (SPEC §4-§7). Importable without the models."""

from __future__ import annotations

# Room cleans: the first two make a room ready for the next client; a spill clean does not.
ROOM_CLEAN_KINDS = ("between-clients", "end-of-day", "spill")
READY_KINDS = ROOM_CLEAN_KINDS[:2]

ROLES = ("practitioner", "manager", "inspector")
MANAGER_ROLES = frozenset({"manager"})
DAILY_ROLES = frozenset({"manager", "practitioner"})

INCIDENT_KINDS = (
    "infection",
    "scarring",
    "hyperpigmentation",
    "pain",
    "allergic-reaction",
    "exposure",
    "other",
)
SEVERITIES = ("mild", "moderate", "severe")
# Exposures (issue 13): what opened one, and how a client was told.
EXPOSURE_CAUSES = ("bi", "recall", "incident")
NOTIFY_HOW = ("phone", "letter", "email", "in-person")
UNREACHABLE = "unreachable"  # a notice that records the client could not be reached

PASS, FAIL = "pass", "fail"
PASS_FAIL = (PASS, FAIL)  # chemical indicators and air-removal tests
NEGATIVE, POSITIVE = "negative", "positive"
BI_RESULTS = (NEGATIVE, POSITIVE)  # the BI's own growth
CONTROL_RESULTS = (POSITIVE, NEGATIVE)  # the unprocessed control: positive means valid
# cycles.ci of an imported load whose chemical indicator nobody has read yet (issue 15): the
# reading arrives later as a cycle_cis row. A load's status is one of LOAD_STATUSES.
NO_CI = "none"
LOAD_PASSED, LOAD_FAILED, LOAD_CI_PENDING = "passed", "failed", "ci-pending"
LOAD_STATUSES = (LOAD_PASSED, LOAD_FAILED, LOAD_CI_PENDING)

# Mail-in spore tests (issue 16): what the lab can be told and why a BI may not count.
BI_LAB_EVENTS = ("mailed", "received", "invalid", "report")
BI_INVALID_REASONS = ("late-receipt", "expired-envelope", "missing-strip", "damaged", "other")
BI_STATES = ("placed", "mailed", "received", "negative", "positive", "invalid")

# Voidable record kinds (SPEC §7) and the table each names. Sessions, refusals and receipts are
# physical acts and cannot be voided.
VOIDABLE: dict[str, str] = {
    "cycle": "cycles",
    "bi-read": "bi_reads",
    "air-removal": "air_removal_tests",
    "room-clean": "room_cleans",
    "device-clean": "device_cleans",
    "incident": "incidents",
    "recall": "recalls",
    "discard": "discards",
    "service": "sterilizer_services",
    "bi-skip": "bi_skips",
}
VOIDABLE_KINDS = tuple(VOIDABLE)


def sql_in(values: tuple[str, ...]) -> str:
    """`'a', 'b'` for a CHECK constraint or an IN list of fixed vocabulary (never user input)."""
    return ", ".join(f"'{v}'" for v in values)
