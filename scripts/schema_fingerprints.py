"""Regenerate sterilog/schemas/*.json: the schema every migration revision defines, per backend.

    python scripts/schema_fingerprints.py            # SQLite + a throwaway PostgreSQL server
    python scripts/schema_fingerprints.py --check    # exit 1 if the stored files are stale

Run it after adding or changing a migration (tests/test_schema_fingerprints.py fails until you
do). It runs the migrations on empty scratch databases, one revision at a time; nothing in it is
written by hand. PostgreSQL comes from tests/pgserver.py (initdb/pg_ctl must be installed).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def generate() -> dict[str, str]:
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    from sterilog import schema

    files: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{tmp}/scratch.db", poolclass=NullPool)
        for rev, objects in schema.build(engine):
            files[schema.data_name(rev, "sqlite")] = schema.dump(rev, "sqlite", objects)
        engine.dispose()
        from pgserver import start_postgres

        server = start_postgres(Path(tmp))
        try:
            engine = create_engine(server.create_database("fingerprint"), poolclass=NullPool)
            for rev, objects in schema.build(engine):
                files[schema.data_name(rev, "postgresql")] = schema.dump(rev, "postgresql", objects)
            engine.dispose()
        finally:
            server.stop()
    return files


def main() -> int:
    check = "--check" in sys.argv[1:]
    target = ROOT / "sterilog" / "schemas"
    files = generate()
    stale = sorted(
        name
        for name in set(files) | {p.name for p in target.glob("*.json")}
        if not (target / name).is_file()
        or name not in files
        or (target / name).read_text("utf-8") != files[name]
    )
    if check:
        for name in stale:
            print(f"stale: sterilog/schemas/{name}")
        return 1 if stale else 0
    for p in target.glob("*.json"):
        if p.name not in files:
            p.unlink()
    for name, content in files.items():
        (target / name).write_text(content, "utf-8")
    print(f"wrote {len(files)} files to {target}" + (f" ({len(stale)} changed)" if stale else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
