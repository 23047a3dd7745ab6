"""The shape of the code: no import cycles, and libraries that do not reach into services.

Imports are read from the source (every `import`, including those under
`if TYPE_CHECKING:` and inside functions), so a cycle is caught whether or not
it would fail at run time.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "chat_contracts": ROOT / "libs/contracts/src/chat_contracts",
    "chat_platform": ROOT / "libs/platform/src/chat_platform",
    "chat_testkit": ROOT / "libs/testkit/src/chat_testkit",
    "chat_auth": ROOT / "services/auth/src/chat_auth",
    "chat_message": ROOT / "services/message/src/chat_message",
    "chat_gateway": ROOT / "services/gateway/src/chat_gateway",
}
LIBRARIES = {"chat_contracts", "chat_platform"}


def module_name(package: str, path: Path) -> str:
    parts = path.relative_to(PACKAGES[package]).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((package, *parts))


def modules() -> dict[str, Path]:
    return {
        module_name(package, path): path
        for package, folder in PACKAGES.items()
        for path in sorted(folder.rglob("*.py"))
    }


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `name` imports (`from x import y` counts `x.y` when it is a module)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")[
                    : len(name.split(".")) - node.level + (1 if is_package else 0)
                ]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        found.update(t for t in targets if t in known and t != name)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, set(known)) for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (or a module importing itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges[node]):
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
            if len(group) > 1 or node in edges[node]:
                groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return groups


def test_no_module_of_any_service_or_library_is_part_of_an_import_cycle() -> None:
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_a_cycle_through_a_type_only_import() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(edges) == [["a", "b", "c"]]
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from chat_x.b import B\n"
    path = ROOT / "build" / "probe.py"
    path.parent.mkdir(exist_ok=True)
    path.write_text(source)
    try:
        assert imports_of("chat_x.a", path, {"chat_x.b"}) == {"chat_x.b"}
    finally:
        path.unlink()


@pytest.mark.parametrize("library", sorted(LIBRARIES))
def test_libraries_do_not_import_services(library: str) -> None:
    services = {"chat_auth", "chat_message", "chat_gateway", "chat_testkit"}
    reaching = {
        (module, target)
        for module, targets in graph().items()
        if module.split(".")[0] == library
        for target in targets
        if target.split(".")[0] in services
    }
    assert reaching == set()
