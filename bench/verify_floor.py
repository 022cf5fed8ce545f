"""What `audit verify` cannot avoid paying, stage by stage, on a SQLite database.

    python bench/verify_floor.py <database>

Each stage alone, in one process, as CPU seconds (`time.process_time`) and per audit entry:
fetching the log, fetching every record row, SHA-256 of what an entry hashes, decoding
`records` with orjson. No comparison and no loop body beyond the call itself: the sum is the
floor any verifier written in Python pays before doing its job (docs/performance.md,
session 6). Reads only; a database from `bench/generate.py` (or the bench cache) is the
intended input.
"""

from __future__ import annotations

import hashlib
import sqlite3
import sys
import time

import orjson

LOG = "SELECT seq, at, clock, operator, action, records, prev_hash, hash FROM audit_log"


def main(path: str) -> None:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    tables = [
        name
        for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if name not in ("audit_log", "alembic_version") and not name.startswith("sqlite_")
    ]
    stages: dict[str, float] = {}

    start = time.process_time()
    entries = 0
    cursor = con.execute(LOG + " ORDER BY seq")
    while rows := cursor.fetchmany(5000):
        entries += len(rows)
    stages["fetch audit_log (8 columns)"] = time.process_time() - start

    start = time.process_time()
    record_rows = 0
    for name in tables:
        cursor = con.execute(f'SELECT * FROM "{name}"')
        while rows := cursor.fetchmany(5000):
            record_rows += len(rows)
    stages[f"fetch every record row ({record_rows} rows)"] = time.process_time() - start

    hashing = decoding = 0.0
    cursor = con.execute(LOG + " ORDER BY seq")
    while rows := cursor.fetchmany(5000):
        texts = [f"{r[6]}\n{r[1]}{r[2]}{r[3]}{r[4]}\n{r[5]}".encode() for r in rows]
        start = time.process_time()
        for t in texts:
            hashlib.sha256(t).hexdigest()
        hashing += time.process_time() - start
        records = [r[5] for r in rows]
        start = time.process_time()
        for r in records:
            orjson.loads(r)
        decoding += time.process_time() - start
    stages["SHA-256 of each entry's text"] = hashing
    stages["decode records (orjson)"] = decoding

    print(f"{entries} entries")
    for name, seconds in stages.items():
        print(f"{name:42} {seconds:6.2f} s CPU  {seconds / entries * 1e6:5.1f} us/entry")
    total = sum(stages.values())
    print(f"{'sum':42} {total:6.2f} s CPU  {total / entries * 1e6:5.1f} us/entry")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
