"""The reports' structure (issue 13): the monthly report is a package with one module per
section (data first, layout after), no function in sterilog/reports/ is longer than 80 lines,
and no report imports another module's private (underscore) helpers. Pure source checks (ast)."""

from __future__ import annotations

import ast
from pathlib import Path

REPORTS = Path(__file__).resolve().parent.parent / "sterilog" / "reports"
MAX_LINES = 80


def _sources() -> list[Path]:
    return sorted(REPORTS.rglob("*.py"))


def long_functions(max_lines: int = MAX_LINES) -> list[str]:
    out = []
    for path in _sources():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                length = (node.end_lineno or node.lineno) - start + 1
                if length > max_lines:
                    rel = path.relative_to(REPORTS.parent).as_posix()
                    out.append(f"{rel}:{node.lineno} {node.name} is {length} lines")
    return out


def private_imports() -> list[str]:
    """`from sterilog.X import _name` anywhere in the reports."""
    out = []
    for path in _sources():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sterilog."):
                for alias in node.names:
                    if alias.name.startswith("_"):
                        rel = path.relative_to(REPORTS.parent).as_posix()
                        out.append(f"{rel}:{node.lineno} imports {node.module}.{alias.name}")
    return out


def test_no_function_in_the_reports_is_longer_than_80_lines() -> None:
    assert long_functions() == []


def test_the_check_counts_lines_as_written() -> None:
    """The check itself: a 81-line function is found, an 80-line one is not."""
    body = "\n".join(f"    x{i} = {i}" for i in range(79))
    tree = ast.parse(f"def f():\n{body}\n    return 1\n")
    node = tree.body[0]
    assert isinstance(node, ast.FunctionDef)
    assert (node.end_lineno or 0) - node.lineno + 1 == 81
    assert long_functions(max_lines=10) != []


def test_no_report_imports_another_modules_private_helpers() -> None:
    assert private_imports() == []
    audit_src = (REPORTS / "audit_report.py").read_text()
    assert "reports.monthly" not in audit_src


def test_the_monthly_report_is_a_package_of_sections_with_rows_then_render() -> None:
    package = REPORTS / "monthly"
    assert (package / "__init__.py").is_file()
    assert not (REPORTS / "monthly.py").exists()
    from sterilog.reports import monthly

    sections = [f.__module__ for f in monthly.SECTION_FUNCTIONS]
    assert len(sections) == len(set(sections)) == len(monthly.SECTIONS)
    for name in sections:
        module = ast.parse((package / (name.rsplit(".", 1)[1] + ".py")).read_text())
        functions = [n.name for n in module.body if isinstance(n, ast.FunctionDef)]
        assert "render" in functions, name
    source = (package / "__init__.py").read_text()
    assert source.index("def rows(") > 0 and source.index("def render(") > 0
