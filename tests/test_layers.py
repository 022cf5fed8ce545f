"""The layers of docs/architecture.md are enforced: imports go one way, the compliance core is
the only home of the voids table and of every vocabulary, and the gate's fact queries import
without the models. Pure source checks (ast), no database."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "sterilog"

# Rank of each top-level part of the package: a module may import its own layer or a lower one.
# Foundation (0): leaves every layer may use, including the models (compliance/vocab.py is a
# leaf: it imports nothing of sterilog).
RANK = {
    "cli": 5,
    "__main__": 5,
    "docgen": 5,  # builds docs/cli.md from the Click tree
    "reports": 4,  # reads compliance and services' query functions
    "services": 3,
    "compliance": 2,
    "models": 1,
    "tables": 1,  # the Core tables of the per-client writes (issue 17); models maps them
    "db": 1,
    "audit": 1,
    "migrate": 1,
    "__init__": 0,
    "sqltypes": 0,
    "errors": 0,
    "clock": 0,
    "scan": 0,
    "rulepack": 0,
    "importers": 0,  # pure: a device's bytes in, dataclasses out
    "lateness": 0,
    "tempfiles": 0,
    "output": 1,  # every file written for a person (issue 14): tempfiles, errors, click
    "schema": 1,
    "privileges": 1,
    "compliance.vocab": 0,
}
# The gate imports these on its interactive path: never the models, not even lazily.
MODEL_FREE = (
    "tables",
    "compliance",
    "compliance.vocab",
    "compliance.rules",
    "compliance.cycle_rules",
    "compliance.table",
    "compliance.facts",
    "compliance.history",
)


def _name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def _part(module: str) -> str:
    """The RANK key of a dotted name inside sterilog ('' for sterilog itself)."""
    if module in RANK:
        return module
    return module.split(".")[0]


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, sterilog-relative module) of every import, top-level or inside a function."""
    tree = ast.parse(path.read_text(), str(path))
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [
                (node.lineno, a.name.removeprefix("sterilog."))
                for a in node.names
                if a.name.startswith("sterilog.")
            ]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "sterilog":
                out += [
                    (node.lineno, a.name)
                    for a in node.names
                    if (ROOT / a.name).is_dir() or (ROOT / f"{a.name}.py").exists()
                ]
            elif node.module.startswith("sterilog."):
                mod = node.module.removeprefix("sterilog.")
                out.append((node.lineno, mod))
                # `from sterilog.compliance import vocab` imports the leaf, not the package
                out += [
                    (node.lineno, f"{mod}.{a.name}")
                    for a in node.names
                    if f"{mod}.{a.name}" in RANK
                ]
    return out


def _modules() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py") if "_alembic" not in p.parts)


def violations() -> list[str]:
    bad = []
    for path in _modules():
        me = _name(path)
        mine = RANK[_part(me)]
        for line, target in _imports(path):
            part = _part(target)
            if part not in RANK:
                bad.append(f"{me}:{line} imports unknown part sterilog.{target}; add it to RANK")
                continue
            if part == "compliance" and any(
                target == t or target.startswith(t + ".") for t in ("compliance.vocab",)
            ):
                part = "compliance.vocab"
            if RANK[part] > mine:
                bad.append(f"{me}:{line} imports sterilog.{target} (a higher layer)")
            if part in ("cli", "__main__") and _part(me) not in ("cli", "__main__", "docgen"):
                bad.append(f"{me}:{line} imports the CLI")
            if me in MODEL_FREE and part == "models":
                bad.append(f"{me}:{line} imports the models (the gate's path must not)")
    return bad


def test_imports_go_one_way() -> None:
    assert violations() == []


@pytest.mark.parametrize(
    ("where", "line", "expected"),
    [
        ("compliance/x.py", "def f():\n    from sterilog.services import gate\n", "higher layer"),
        ("services/x.py", "from sterilog.reports import monthly\n", "higher layer"),
        ("models.py", "from sterilog.compliance import facts\n", "higher layer"),
        ("reports/x.py", "import sterilog.cli.app\n", "imports the CLI"),
        ("compliance/facts.py", "from sterilog.models import Void\n", "imports the models"),
        ("services/x.py", "from sterilog.compliance import facts, vocab\n", None),
        ("models.py", "from sterilog.compliance.vocab import ROLES\n", None),
    ],
)
def test_the_checker_catches_an_import_against_the_direction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str, line: str, expected: str | None
) -> None:
    target = tmp_path / where
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(line)
    for sub in ("cli", "services", "reports", "compliance"):
        (tmp_path / sub).mkdir(exist_ok=True)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    found = violations()
    if expected is None:
        assert found == []
    else:
        assert found and any(expected in f for f in found), found


def test_the_gate_path_imports_no_models() -> None:
    code = (
        "import sys; import sterilog.compliance.facts, sterilog.compliance.rules, "
        "sterilog.services.gate; "
        "print(sorted(m for m in ('sterilog.models', 'reportlab', 'alembic', "
        "'sterilog.compliance.history', 'sterilog.compliance.cycle_rules') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def _sources() -> list[tuple[Path, str]]:
    return [(p, p.read_text()) for p in _modules()]


def test_only_the_compliance_core_names_the_voids_table() -> None:
    patterns = [
        re.compile(r"\b(FROM|JOIN|INTO)\s+voids\b", re.IGNORECASE),  # SQL on the table
        re.compile(r"\bVoid\s*[.(,)]|import[^\n]*\bVoid\b|^\s*Void,$", re.MULTILINE),  # the model
    ]
    allowed = {
        ROOT / "models.py",
        ROOT / "compliance" / "facts.py",
        ROOT / "compliance" / "voids.py",
    }
    offenders = [
        f"{p.relative_to(ROOT)}: {m.group(0)!r}"
        for p, src in _sources()
        if p not in allowed
        for pattern in patterns
        if (m := pattern.search(src)) is not None
    ]
    assert offenders == []


@pytest.mark.parametrize(
    "literal",
    [
        r'"between-clients",\s*"end-of-day"',
        r'"practitioner",\s*"manager",\s*"inspector"',
        r"'practitioner', 'manager', 'inspector'",
        r'"infection",\s*"scarring"',
        r'"mild",\s*"moderate",\s*"severe"',
        r'"negative",\s*"positive"',
        r'"positive",\s*"negative"',
        r'"pass",\s*"fail"',
        r'"room-clean":\s*"',
        r'"ci-pending"',  # the load statuses (vocab.LOAD_STATUSES)
        r'\bNO_CI\s*=',
    ],
)
def test_each_vocabulary_is_defined_once(literal: str) -> None:
    pattern = re.compile(literal)
    homes = [p.relative_to(ROOT).as_posix() for p, src in _sources() if pattern.search(src)]
    assert set(homes) <= {"compliance/vocab.py"}, homes


def test_the_voidable_kinds_are_the_void_commands_choices_and_the_reports_summaries() -> None:
    from sterilog.compliance.vocab import VOIDABLE_KINDS
    from sterilog.compliance.voids import KINDS
    from sterilog.reports.monthly import _VOID_SUMMARY

    assert tuple(KINDS) == VOIDABLE_KINDS
    assert set(_VOID_SUMMARY) == set(VOIDABLE_KINDS)
