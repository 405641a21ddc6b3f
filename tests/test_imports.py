"""Imports point one way: no cycles in cfx, a fixed order inside cfx/experiments.

The graph is read from the source with ``ast`` (nothing is imported). ``from P import name``
counts as an import of the module ``P.name`` when that is a module, else of ``P``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "cfx"

# cfx/experiments, bottom to top: a module imports only modules of a lower rank. Modules of
# one kind never import another kind. A new module must be placed here: ``kinds.*`` covers a
# kind that is one module; the modules of a kind that is a package are listed one by one.
EXPERIMENTS_ORDER = {
    "cfx.experiments.fields": 0,
    "cfx.experiments._errors": 0.5,  # ConfigError, ConfigSource, key paths (re-exported by config)
    "cfx.experiments.config": 1,
    "cfx.experiments._hyperparams": 1.5,  # a generator's hyperparameters typed (re-exported by sections)
    "cfx.experiments.store": 2,
    "cfx.experiments.progress": 3,
    "cfx.experiments.tables": 4,
    "cfx.experiments.sections": 4,  # the sections every kind shares
    "cfx.experiments.runs": 4.5,  # the run helpers every kind shares
    "cfx.experiments.kinds": 5,
    "cfx.experiments.kinds.*": 6,
    "cfx.experiments.kinds.ct._tables": 5.5,  # the ct kind's paper numbers, pooled tables and figure
    "cfx.experiments.kinds.ct.reference": 6,  # the ct kind's preset ct-2026 and pooled evaluation
    "cfx.experiments.kinds.ct.settings": 6,  # the ct kind's ct section (CTConfig fields, its generator)
    "cfx.experiments.kinds.ct._schema": 7,  # the ct kind's config schema (imports its ct section)
    "cfx.experiments.kinds.ct": 9,
    "cfx.experiments.kinds.benchmark.schema": 6,
    "cfx.experiments.kinds.benchmark.runner": 7,
    "cfx.experiments.kinds.benchmark.report": 8,
    "cfx.experiments.kinds.benchmark": 9,
    "cfx.experiments.kinds.eccco.schema": 6,
    "cfx.experiments.kinds.eccco.preset": 6,
    "cfx.experiments.kinds.eccco.paper": 6,
    "cfx.experiments.kinds.eccco._paper_tables": 5.5,  # the paper's numbers (read from paper_tables.csv)
    "cfx.experiments.kinds.eccco._factuals": 6,  # the runner's factual selection
    "cfx.experiments.kinds.eccco.runner": 7,
    "cfx.experiments.kinds.eccco.report": 8,
    "cfx.experiments.kinds.eccco": 9,
    "cfx.experiments.kinds.dynamics.report": 6,  # the dynamics kind's tables, summary.md and figures
    "cfx.experiments.kinds.dynamics": 9,
    "cfx.experiments": 10,
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(module: str, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The cfx modules one import statement in ``module`` refers to."""
    targets = []
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
        for name in names:
            # `import cfx.a.b` imports cfx.a.b (and its parents, implicitly: not counted)
            if name in MODULES:
                targets.append(name)
        return targets
    base = node.module or ""
    if node.level:
        pkg = module if MODULES[module].name == "__init__.py" else module.rsplit(".", 1)[0]
        for _ in range(node.level - 1):
            pkg = pkg.rsplit(".", 1)[0]
        base = f"{pkg}.{base}" if base else pkg
    if base not in MODULES:
        return []
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        targets.append(sub if sub in MODULES else base)
    return targets


def _imports(module: str, *, top_level_only: bool) -> set[str]:
    tree = ast.parse(MODULES[module].read_text(), filename=str(MODULES[module]))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    if top_level_only:  # statements run at import time, including inside module-level try/if
        stack, nodes = list(tree.body), []
        while stack:
            n = stack.pop()
            nodes.append(n)
            if isinstance(n, (ast.If, ast.Try)):
                if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test):
                    continue
                stack += (
                    n.body
                    + n.orelse
                    + getattr(n, "finalbody", [])
                    + [s for h in getattr(n, "handlers", []) for s in h.body]
                )
    out = set()
    for n in nodes:
        if isinstance(n, (ast.Import, ast.ImportFrom)):
            out.update(t for t in _resolve(module, n) if t != module)
    return out


def _rank(module: str) -> int | None:
    if module in EXPERIMENTS_ORDER:
        return EXPERIMENTS_ORDER[module]
    rest = module.removeprefix("cfx.experiments.kinds.")
    if rest != module and "." not in rest:  # a one-module kind (a package kind's modules are listed)
        return EXPERIMENTS_ORDER["cfx.experiments.kinds.*"]
    return None


def _kind_of(module: str) -> str | None:
    """The kind a module belongs to (``cfx.experiments.kinds.<kind>[.<sub>]``), else None."""
    rest = module.removeprefix("cfx.experiments.kinds.")
    return None if rest == module else rest.split(".")[0]


def test_the_graph_is_read():
    bench = "cfx.experiments.kinds.benchmark"
    assert "cfx.experiments.config" in _imports(f"{bench}.schema", top_level_only=True)
    assert "cfx.experiments.tables" in _imports(f"{bench}.report", top_level_only=True)
    assert "cfx.search" in _imports(f"{bench}.runner", top_level_only=False)  # a lazy import
    assert "cfx.search" not in _imports(f"{bench}.runner", top_level_only=True)
    assert {f"{bench}.schema", f"{bench}.runner", f"{bench}.report"} <= _imports(bench, top_level_only=True)


def test_no_import_cycles_in_cfx():
    """Module-level imports (what runs on ``import``) form no cycle anywhere in cfx."""
    graph = {m: _imports(m, top_level_only=True) for m in MODULES}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                cycle = stack[stack.index(t) :] + [t]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_experiments_modules_import_downwards_only():
    """Every import inside cfx/experiments, lazy ones included, points to a lower module."""
    mods = [m for m in MODULES if m == "cfx.experiments" or m.startswith("cfx.experiments.")]
    unplaced = [m for m in mods if _rank(m) is None]
    assert not unplaced, f"place these modules in EXPERIMENTS_ORDER: {unplaced}"
    for m in mods:
        for t in _imports(m, top_level_only=False):
            if _rank(t) is None:
                continue
            assert _rank(t) < _rank(m), f"{m} (rank {_rank(m)}) imports {t} (rank {_rank(t)}): imports point down"
            assert _kind_of(t) in (None, _kind_of(m)), f"{m} imports {t}: one kind never imports another"


def test_nothing_below_imports_the_experiment_layer():
    """The library (search, generators, models, ...) never imports experiments, plotting or the CLI;
    plotting takes arrays and data frames only, so it imports no other part of cfx (but its own cfx._charts)."""
    upper = ("cfx.experiments", "cfx.cli", "cfx.plotting", "cfx._charts")  # _charts: plotting's charts
    allowed = {"cfx", "cfx.__main__", "cfx.cli"}  # cfx/__init__ loads the upper layer lazily, on attribute access
    for m in MODULES:
        if m in allowed or m.startswith(upper):
            continue
        bad = [t for t in _imports(m, top_level_only=False) if t.startswith(upper)]
        assert not bad, f"{m} imports {bad}"
    assert _imports("cfx.plotting", top_level_only=False) == {"cfx._charts"}
    assert _imports("cfx._charts", top_level_only=False) == set()
    assert not [t for t in _imports("cfx.experiments.kinds", top_level_only=False) if "kinds." in t]


# The top of the tree: every module and package directly under cfx/, public or private. A new
# one is a decision about the architecture: place it here (host plumbing of the search goes
# into cfx/search/ as a private module instead).
TOP_LEVEL = {
    "public": {
        "causal",
        "classifier",
        "cli",
        "constraints",
        "explain",
        "io",
        "losses",
        "plotting",
        "probing",
        "terms",
        "registry",
        "restarts",
        "sampling",
        "stats",
        "data",
        "dynamics",
        "evaluation",
        "experiments",
        "generators",
        "models",
        "search",
        "training",
        "global_rules",
        "intervals",
    },
    "private": {"_charts", "_deprecated", "_reductions", "_sgld", "_sparsity", "_spread", "_streams", "_validate"},
}
# What cfx.search (the search and its plumbing) may import from the rest of cfx: the pieces
# a search is made of, nothing that uses the search.
SEARCH_DEPENDS_ON = {
    "cfx._deprecated",
    "cfx._validate",
    "cfx._reductions",
    "cfx.classifier",
    "cfx.constraints",
    "cfx.terms",
    "cfx.generators.base",
    "cfx.generators",
}  # cfx.generators: lazily, for a hint naming the registry
# The only modules outside cfx.search that read its private parts, and which parts.
SEARCH_PRIVATE_READERS = {
    "cfx.explain": {"cfx.search._checks", "cfx.search._convergence"},
    "cfx._sparsity": {"cfx.search._convergence"},  # explain's sparsity and validity passes
    "cfx.restarts": {"cfx.search._convergence"},
}


def test_the_top_level_is_the_listed_tree():
    found = {
        p.stem if p.is_file() else p.name
        for p in PKG.iterdir()
        if (p.suffix == ".py" and p.stem not in ("__init__", "__main__")) or (p / "__init__.py").exists()
    }
    listed = TOP_LEVEL["public"] | TOP_LEVEL["private"]
    assert found - listed == set(), (
        f"new top-level modules, place them in TOP_LEVEL (or inside a package): {found - listed}"
    )
    assert listed - found == set(), f"TOP_LEVEL lists modules that are gone: {listed - found}"
    assert all(n.startswith("_") for n in TOP_LEVEL["private"]) and not any(
        n.startswith("_") for n in TOP_LEVEL["public"]
    )


def test_the_search_package_imports_only_its_pieces():
    """cfx.search's modules import each other and the pieces a search is made of; nothing that uses the search."""
    for m in MODULES:
        if m == "cfx.search" or m.startswith("cfx.search."):
            outside = {t for t in _imports(m, top_level_only=False) if not t.startswith("cfx.search")}
            assert outside <= SEARCH_DEPENDS_ON, f"{m} imports {sorted(outside - SEARCH_DEPENDS_ON)}"
    assert "cfx.search._core" in _imports("cfx.search", top_level_only=True)


def test_the_search_plumbing_stays_private():
    """Outside cfx.search, cfx imports the package's public names, not its private modules (a short list excepted);
    and the pieces below the search (generators, models, losses, ...) never import it."""
    for m in MODULES:
        if m == "cfx.search" or m.startswith("cfx.search."):
            continue
        private = {t for t in _imports(m, top_level_only=False) if t.startswith("cfx.search._")}
        assert private <= SEARCH_PRIVATE_READERS.get(m, set()), f"{m} imports the private {sorted(private)}"
    below = [m for m in MODULES if m in SEARCH_DEPENDS_ON or m.startswith(("cfx.generators.", "cfx.models"))]
    for m in below:
        assert not [t for t in _imports(m, top_level_only=False) if t.startswith("cfx.search")], (
            f"{m} imports cfx.search"
        )


# The layers that use the search never reach down-and-back: a piece (model, generator, data set, loss)
# imports none of them, at import time or lazily.
USES_OF_THE_SEARCH = (
    "cfx.search",
    "cfx.training",
    "cfx.evaluation",
    "cfx.dynamics",
    "cfx.explain",
    "cfx.restarts",
    "cfx.experiments",
    "cfx.cli",
)
PIECES = (
    "cfx.models",
    "cfx.generators",
    "cfx.data",
    "cfx.classifier",
    "cfx.constraints",
    "cfx.terms",
    "cfx.registry",
    "cfx._validate",
    "cfx._reductions",
    "cfx._streams",
    "cfx._deprecated",
    "cfx.losses",
)


def test_the_pieces_never_import_the_layers_above():
    for m in MODULES:
        if not (m in PIECES or m.startswith(tuple(p + "." for p in PIECES))):
            continue
        for t in _imports(m, top_level_only=False):
            if t.startswith(USES_OF_THE_SEARCH):
                pytest.fail(f"{m} imports {t}: a piece imports no layer above it (register it from there instead)")
