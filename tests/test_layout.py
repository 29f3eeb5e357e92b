"""The package's house rules, read from its source with ``ast`` (nothing is imported).

- no two modules import each other, directly or round a longer cycle, whether
  the import is at module level or inside a function (``TYPE_CHECKING``
  imports aside);
- ``processing`` imports neither Django nor Celery nor any module of the app
  outside ``processing``;
- no module is over 400 lines, and each says in its docstring what it owns.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = "django_image_sync"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        found[module_name(path)] = path
    return found


def _type_checking_block(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth, outside ``if TYPE_CHECKING:`` blocks."""
    for node in ast.iter_child_nodes(tree):
        if _type_checking_block(node):
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from _imports(node)


def imported_names(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules ``name`` imports: absolute names, ``from . import x`` resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _imports(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join([*anchor, *([base] if base else [])])
        found.add(base)
        for alias in node.names:
            # ``from . import files``: the name may be a module itself.
            if f"{base}.{alias.name}" in known:
                found.add(f"{base}.{alias.name}")
    return found


def app_graph() -> dict[str, set[str]]:
    """Which modules of the app each module of the app imports (packages' own
    ``__init__`` counted as the package)."""
    found = modules()
    known = set(found)
    graph = {}
    for name, path in found.items():
        targets = imported_names(name, path, known)
        graph[name] = {t for t in targets if t in known and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected group of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def _without_package_parents(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """A submodule importing its own package's ``__init__`` (or the reverse, to
    re-export) is how a package is built, not a cycle between rooms."""
    return {
        name: {t for t in targets if not name.startswith(f"{t}.") and not t.startswith(f"{name}.")}
        for name, targets in graph.items()
    }


def test_no_two_modules_import_each_other():
    assert cycles(_without_package_parents(app_graph())) == []


def test_the_cycle_check_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


FORBIDDEN_IN_PROCESSING = ("django", "celery", "kombu", "billiard")


@pytest.mark.parametrize(
    "name", [n for n in modules() if n == f"{PACKAGE}.processing" or ".processing." in n]
)
def test_processing_imports_neither_django_nor_celery_nor_the_app(name):
    found = modules()
    imported = imported_names(name, found[name], set(found))
    for target in imported:
        assert target.split(".")[0] not in FORBIDDEN_IN_PROCESSING, (name, target)
        if target.startswith(f"{PACKAGE}."):
            assert target.startswith(f"{PACKAGE}.processing"), (name, target)


@pytest.mark.parametrize("name", sorted(modules()))
def test_module_is_at_most_400_lines_and_says_what_it_owns(name):
    path = modules()[name]
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_LINES, f"{path} has {len(text.splitlines())} lines"
    if text.strip():
        assert ast.get_docstring(ast.parse(text)), f"{path} has no docstring"


def test_the_import_reader_sees_function_level_and_relative_imports():
    source = ROOT / "receivers.py"
    imported = imported_names(f"{PACKAGE}.receivers", source, set(modules()))
    assert {f"{PACKAGE}.files", f"{PACKAGE}.queue", f"{PACKAGE}.models"} <= imported
    tree = ast.parse("def f():\n    from . import tasks\nif TYPE_CHECKING:\n    import x\n")
    assert [type(n).__name__ for n in _imports(tree)] == ["ImportFrom"]


def test_every_test_the_docs_name_exists():
    """``docs/reliability.md`` and the other pages cite tests by path and name."""
    docs = ROOT.parent / "docs"
    missing = []
    for page in [*sorted(docs.glob("*.md")), ROOT.parent / "README.md"]:
        for path, name in re.findall(r"tests/([\w/]+\.py)::(\w+)", page.read_text()):
            source = ROOT.parent / "tests" / path
            defined = (
                {
                    node.name
                    for node in ast.walk(ast.parse(source.read_text()))
                    if isinstance(node, ast.FunctionDef | ast.ClassDef)
                }
                if source.is_file()
                else set()
            )
            if name not in defined:
                missing.append(f"{page.name}: tests/{path}::{name}")
    assert missing == []
