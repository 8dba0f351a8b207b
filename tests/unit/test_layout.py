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


_CONTAINERS = ("dict", "set", "list", "defaultdict", "WeakKeyDictionary", "WeakValueDictionary", "WeakSet")


def _is_empty_container(value: ast.expr | None) -> bool:
    """`{}`, `set()`, `[]`, `weakref.WeakKeyDictionary()` …: a store filled at run time."""
    if isinstance(value, ast.Dict):
        return not value.keys
    if isinstance(value, ast.List | ast.Set):
        return not value.elts
    if isinstance(value, ast.Call):
        func = value.func
        return (func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)) in _CONTAINERS
    return False


def _module_level_stores(tree: ast.Module) -> list[tuple[int, str]]:
    """(line, name) of module-level names bound to an empty mutable container."""
    found = []
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and _is_empty_container(node.value):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            found += [(node.lineno, t.id) for t in targets if isinstance(t, ast.Name)]
    return found


def _flags_on_functions(tree: ast.Module) -> list[tuple[int, str]]:
    """(line, name) of attributes set on a function object defined in the same body (`f.flag = True`)."""
    found = []
    for scope in ast.walk(tree):
        body = getattr(scope, "body", None)
        if not isinstance(body, list):
            continue
        functions = {n.name for n in body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
        for node in body:
            for target in node.targets if isinstance(node, ast.Assign) else ():
                if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) \
                        and target.value.id in functions:
                    found.append((node.lineno, f"{target.value.id}.{target.attr}"))
    return found


def test_per_runtime_state_lives_on_the_runtime():
    """No module-level registries (keyed by id(rt), by engine, or filled at run time) and no flags set
    on function objects: what lasts as long as a runtime is one `Runtime.part` object (issue 10 §5)."""
    problems = []
    for path in _modules("service", "bot"):
        text = path.read_text()
        tree = ast.parse(text)
        where = str(path.relative_to(ROOT))
        problems += [f"{where}:{line}: module-level store {name}" for line, name in _module_level_stores(tree)]
        problems += [f"{where}:{line}: flag on a function {name}" for line, name in _flags_on_functions(tree)]
        problems += [f"{where}: imports weakref" for node in ast.walk(tree)
                     if isinstance(node, ast.Import | ast.ImportFrom)
                     and "weakref" in ([a.name for a in node.names] if isinstance(node, ast.Import) else [node.module])]
        problems += [f"{where}:{node.lineno}: keys by id() of a runtime" for node in ast.walk(tree)
                     if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "id" and node.args
                     and getattr(node.args[0], "id", getattr(node.args[0], "attr", None)) in ("rt", "runtime")]
    assert problems == []
