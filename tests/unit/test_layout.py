"""The layout that ARCHITECTURE.md describes: one file name per module, and every package says what it
is for (issue 10). The import rules themselves are import-linter's (`lint-imports`)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PARTS = ("service", "bot", "troubleshooting", "standin", "sandbox_slack")


def _modules(*tops: str) -> list[Path]:
    return [p for top in tops for p in (ROOT / top).rglob("*.py")
            if "migrations" not in p.parts and "__pycache__" not in p.parts]


def test_no_two_modules_share_a_file_name():
    names: dict[str, list[str]] = defaultdict(list)
    for path in _modules("service", "bot", "troubleshooting"):
        if path.name not in ("__init__.py", "__main__.py"):
            names[path.name].append(str(path.relative_to(ROOT)))
    assert {name: paths for name, paths in names.items() if len(paths) > 1} == {}


def test_every_package_opens_with_a_docstring():
    missing = []
    for path in _modules(*PARTS):
        if path.name == "__init__.py" and not ast.get_docstring(ast.parse(path.read_text())):
            missing.append(str(path.relative_to(ROOT)))
    assert missing == []
