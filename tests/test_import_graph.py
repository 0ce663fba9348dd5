"""The import graph of our three packages: no cycles, and imports run one way.

    numerai_assets.cli -> numerai_assets.definitions -> the stage packages -> numerai_assets.shared
    -> model_core

A stage imports only earlier stages (pipeline order: ingest, training, ensemble, diagnostics,
live, backfill), never a later one; `model_core` imports nothing else of ours; `tournament_sim`
only `model_core`; only the command line imports `tournament_sim` (the demo, `sim` commands).
Every import that can run counts: module-level and inside functions (imports under
`if TYPE_CHECKING:` never run, and are left out). Read from the source (ast), nothing is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("model_core", "numerai_assets", "tournament_sim")
STAGES = ("ingest", "training", "ensemble", "diagnostics", "live", "backfill")  # pipeline order
MAX_TOP_LEVEL_MODULES = 8


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


MODULES = _modules()


def _ours(name: str) -> str | None:
    """The module of ours that `name` (a dotted import target) is, or lies in; None if not ours."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: str) -> set[str]:
    """Every module of ours that `module` imports, anywhere in its source."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    tree = ast.parse(path.read_text(), str(path))
    type_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
        for stmt in node.body
        for inner in ast.walk(stmt)
    }
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import name`: the submodule pkg.name when there is one, else pkg itself.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names
            ]
        else:
            continue
        found.update(t for t in map(_ours, targets) if t is not None and t != module)
    return found


GRAPH = {module: _imports(module) for module in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _unit(module: str) -> tuple[int, str]:
    """(layer, unit): a module may import its own unit and any lower layer."""
    parts = module.split(".")
    if parts[0] == "model_core":
        return 0, "model_core"
    if parts[0] == "tournament_sim":
        return 1, "tournament_sim"
    if module == "numerai_assets":
        return 2, "numerai_assets"
    if parts[1] == "shared":
        return 2, "shared"
    if parts[1] in STAGES:
        return 3 + STAGES.index(parts[1]), parts[1]
    if parts[1] == "definitions":
        return 3 + len(STAGES), "definitions"
    if parts[1] == "cli":
        return 4 + len(STAGES), "cli"
    raise AssertionError(f"{module}: not in a known place (add it to a stage, shared or cli)")


def _allowed(source: str, target: str) -> bool:
    (src_layer, src_unit), (dst_layer, dst_unit) = _unit(source), _unit(target)
    if src_unit == dst_unit:
        return True
    if dst_unit == "tournament_sim":  # the simulated tournament: the command line's demo only
        return src_unit == "cli"
    if src_unit == "tournament_sim":
        return dst_unit == "model_core"
    return dst_layer < src_layer


def test_the_graph_was_read():
    assert "numerai_assets.definitions" in GRAPH and "model_core.train" in GRAPH
    assert "numerai_assets.shared.settings" in GRAPH["numerai_assets.definitions"]


def test_no_import_cycles():
    cycles = _cycles(GRAPH)
    assert not cycles, "import cycles (module-level or inside functions):\n" + "\n".join(
        " <-> ".join(cycle) for cycle in cycles
    )


def test_model_core_imports_nothing_else_of_ours():
    bad = {
        f"{m} imports {t}"
        for m, targets in GRAPH.items()
        if m.startswith("model_core")
        for t in targets
        if not t.startswith("model_core")
    }
    assert not bad, sorted(bad)


def test_imports_run_one_way():
    """cli -> definitions -> stages (each only earlier ones) -> shared -> model_core."""
    bad = sorted(f"{m} imports {t}" for m, targets in GRAPH.items() for t in targets if not _allowed(m, t))
    assert not bad, (
        "imports against the direction cli -> definitions -> stages -> shared -> model_core:\n"
        + ("\n".join(bad))
    )


def test_the_code_location_is_laid_out_by_stage():
    root = ROOT / "numerai_assets"
    packages = {p.name for p in root.iterdir() if (p / "__init__.py").exists()}
    assert packages == {"shared", "cli", *STAGES}, "a new package must be a stage (in STAGES), shared or cli"
    top_level = sorted(p.name for p in root.glob("*.py"))
    assert len(top_level) <= MAX_TOP_LEVEL_MODULES, top_level


@pytest.mark.parametrize(
    "package",
    sorted(m for m, p in MODULES.items() if p.name == "__init__.py" and m.startswith("numerai_assets")),
)
def test_every_package_says_in_one_line_what_it_is_for(package):
    doc = ast.get_docstring(ast.parse(MODULES[package].read_text()))
    assert doc and "\n" not in doc.strip(), f"{MODULES[package]}: give it a one-line docstring"
