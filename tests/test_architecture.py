"""The floors of the house hold: import-linter's contracts (pyproject.toml) and no SQL on store tables outside store/.

The contracts fail the suite on an upward import (a domain package importing the application
floor, say), on a domain package reaching the store, and on an import cycle between sibling
modules or packages. The SQL scan fails it when a module outside ``shoplm/store`` writes SQL
against a store table or reaches for the store's engine.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from shoplm.store import TABLES

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "shoplm"

_TABLE = "|".join(sorted(map(re.escape, TABLES), key=len, reverse=True))
_Q = r"[\"`\[]?"  # a quoted identifier
SQL_ON_STORE_TABLES = re.compile(
    rf"\bselect\b[\s\S]*?\bfrom\s+{_Q}(?:{_TABLE})\b"
    rf"|\binsert\s+(?:or\s+\w+\s+)?into\s+{_Q}(?:{_TABLE})\b"
    rf"|\bupdate\s+{_Q}(?:{_TABLE}){_Q}\s+set\b"
    rf"|\bdelete\s+from\s+{_Q}(?:{_TABLE})\b"
    rf"|\b(?:create|drop|alter)\s+(?:table|index)\b[\s\S]*?\b(?:{_TABLE})\b",
    re.IGNORECASE,
)
#: Calls that run SQL or hand out a connection: only the store makes them.
ENGINE_CALLS = {"connect", "begin", "raw_connection", "exec_driver_sql"}


def sql_outside_store(source: str) -> list[str]:
    """What in ``source`` (a module outside the store) is SQL on a store table: 'line: what'."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            match = SQL_ON_STORE_TABLES.search(node.value)
            if match:
                found.append(f"{node.lineno}: SQL {match.group(0)[:60]!r}")
        elif isinstance(node, ast.JoinedStr):
            text = "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
            match = SQL_ON_STORE_TABLES.search(text)
            if match:
                found.append(f"{node.lineno}: SQL {match.group(0)[:60]!r}")
        elif isinstance(node, ast.Attribute):
            if node.attr in ENGINE_CALLS and isinstance(node.value, ast.Attribute) and node.value.attr == "engine":
                found.append(f"{node.lineno}: the store's engine ({ast.unparse(node)})")
            elif node.attr == "exec_driver_sql":
                found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_scan_finds_sql_on_store_tables() -> None:
    # The check itself can fail: each of these is SQL against the store from outside it.
    offending = '''
def history(store, user):
    """Docstrings may say 'select items from events' freely."""
    sql = "SELECT item_id FROM events WHERE user_id = ?"
    with store.engine.connect() as conn:
        conn.exec_driver_sql(sql, (user,))
    table = "orders"
    return f"update {table} set status = 'x'", "INSERT INTO api_keys VALUES (1)", "delete from messages"
'''
    found = sql_outside_store(offending)
    assert len(found) == 5, found
    assert not sql_outside_store('"""select items from events"""\nx = "events from the shop"\n')


def test_no_sql_on_store_tables_outside_the_store() -> None:
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == "store":
            continue
        problems += [f"{relative}:{line}" for line in sql_outside_store(path.read_text(encoding="utf-8"))]
    assert not problems, "SQL outside shoplm/store (add a repository method instead):\n" + "\n".join(problems)


def test_import_linter_contracts_are_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.fail("import-linter is not installed: pip install -e '.[dev]'")
    result = subprocess.run(
        [str(lint), "--no-cache", "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout and "4 kept" in result.stdout
