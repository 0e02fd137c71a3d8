"""The package's shape: imports go one way (web -> service -> engine -> parts), no import cycles, no module
over 400 lines, and the package's __init__ is imported by no part of it."""

from __future__ import annotations

import ast
from pathlib import Path

from support import ROOT


STUDIO = ROOT / "studio"
MAX_LINES = 400


def modules() -> dict[str, Path]:
    found = {}
    for path in STUDIO.rglob("*.py"):
        parts = path.with_suffix("").relative_to(STUDIO.parent).parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The studio modules `name` imports at run time (TYPE_CHECKING blocks left out)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    typing_only = {id(sub) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and "TYPE_CHECKING" in ast.unparse(node.test) for sub in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only or not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        if target.startswith("studio"):
            for alias in node.names:
                full = f"{target}.{alias.name}"
                found.add(full if full in known else target)
    return found - {name}


# Top to bottom: the package and the generated reference (they read everything), the front doors, the
# service layer under them, the engine, and the parts the engine is made of.
LAYERS = (("studio.web", 4), ("studio.service", 3), ("studio.engine", 2))


def layer(name: str) -> int:
    if name in ("studio", "studio.docs"):
        return 5
    return next((rank for prefix, rank in LAYERS if name == prefix or name.startswith(prefix + ".")), 1)


def test_imports_go_one_way_and_never_in_a_circle():
    mods = modules()
    graph = {name: imports(name, path, set(mods)) & set(mods) for name, path in mods.items()}
    upward = [(a, b) for a, targets in graph.items() for b in targets if layer(b) > layer(a)]
    assert upward == [], "a lower layer imports a higher one (web -> service -> engine -> parts)"
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            assert state.get(nxt) != 1, "import cycle: " + " -> ".join(path + [node, nxt])
            if nxt not in state:
                visit(nxt, path + [node])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [])


def test_no_module_is_over_400_lines():
    long = {name: n for name, path in modules().items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_a_reader_finds_families_tasks_samplers_previews_and_settings_by_file_name():
    for place in ("fields.py", "samplers.py", "families/__init__.py", "tasks/__init__.py", "previews/__init__.py",
                  "engine/__init__.py", "service/__init__.py", "options.py", "config.py", "web/page.py",
                  "web/generate_api.py", "web/sdapi/routes.py"):
        assert (STUDIO / place).is_file(), place
