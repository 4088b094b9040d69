"""The package's shape: no import cycle between its parts, no import upward (read from the source by ast).

A part is the first name below ``clipo`` (``clipo.mini.train`` → ``mini``). Imports inside functions
count: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "clipo"
TOP = {"cli", "commands", "analysis"}
"""The command line and the analysis read everything; nothing below them may import them."""
BOTTOM = {"errors": set(), "records": {"errors"}}
"""The bottom layer and the only parts each may import."""


def module_imports() -> dict[str, set[str]]:
    """Module name → the clipo modules it imports (absolute and relative imports, at any depth)."""
    found: dict[str, set[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                names.add(base)
                if base == "clipo":  # `from clipo import records`
                    names |= {f"clipo.{a.name}" for a in node.names}
        found[module] = {n for n in names if n.startswith("clipo.")}
    return found


def part(module: str) -> str:
    return module.split(".")[1]


def part_graph(imports: dict[str, set[str]]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for module, targets in imports.items():
        if module == "clipo":
            continue
        graph[part(module)] |= {part(t) for t in targets if part(t) != part(module)}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path [a, b, ..., a], or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_walker_sees_lazy_and_relative_imports():
    imports = module_imports()
    assert "clipo.hf" in imports["clipo.evaluate"]  # imported inside evaluate()
    assert {"clipo.errors", "clipo.records"} <= imports["clipo.scores"]


def test_no_import_cycle_between_parts():
    cycle = find_cycle(part_graph(module_imports()))
    assert cycle is None, f"import cycle between parts: {' -> '.join(cycle)}"


def test_nothing_below_the_top_imports_cli_commands_or_analysis():
    upward = sorted(
        f"{module} imports {target}"
        for module, targets in module_imports().items()
        if module != "clipo" and part(module) not in TOP
        for target in targets
        if part(target) in TOP
    )
    assert not upward, "upward import(s): " + "; ".join(upward)


def test_the_bottom_layer_imports_nothing_of_the_package_above_it():
    imports = module_imports()
    for name, allowed in BOTTOM.items():
        extra = {part(t) for t in imports[f"clipo.{name}"]} - allowed - {name}
        assert not extra, f"clipo.{name} imports {', '.join(sorted(extra))}"


MAX_FUNCTION_LINES = 120
"""The house limit (issue 19): a function longer than this is split into named phases. Argument-parser
tables (``register``: one add_argument per option) are exempt, as they read as a list, not as logic."""


def test_no_function_is_longer_than_the_house_limit():
    long = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name != "register":
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(SRC.parent)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, "split these into named phases: " + "; ".join(long)
