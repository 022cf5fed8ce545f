"""The compliance core: every rule and every fact a rule needs, defined once.

- `vocab`: the closed vocabularies (clean kinds, roles, incident kinds, result values, the
  voidable record kinds and their tables).
- `rules`: pure rules over frozen facts, and the one rule table `RULES` (gate, cycle, monthly
  gap and status rules, each with a stable code). `docs/gate.md` is generated from it.
- `facts`: every fact query a rule needs, in plain SQL (no ORM, no models import), each
  void-aware by construction. The gate imports this, and so does everything else.
- `voids`: the one module that names the `voids` table for ORM readers (reports, export).

Nothing here prints, commits or reads the clock; times are passed in.
"""
