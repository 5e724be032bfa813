"""The package's import structure: every module imports on its own, no module outside the CLI imports
a CLI module, and the module-level import graph has no cycle.

* Each module of ``silif_deploy.{converters,hw_models,deploy}`` is imported first, alone, in a fresh
  interpreter: an import cycle that only bites when a given module is the first one imported (the
  order a user's script or a Dask worker may take) fails here, whatever order the suite imports in.
  A module whose optional dependency is not installed here (Lava in the main environment, torch in
  Lava's) must fail on that dependency and nothing else; every ``hw_models`` module imports.
* A static check over the source files (``ast``, nothing imported): ``deploy/cmd_*.py`` and
  ``deploy/cli.py`` are the CLI; nothing else imports them, not even lazily inside a function
  (shared helpers live in the module they belong to). The graph of module-level imports (those that
  run when the module is imported: not inside functions, not under ``if TYPE_CHECKING:``) of the
  whole package has no cycle.

What this proves: the structure rules hold for the code as written. The static graph is checked
against the runtime imports above (it must name at least the edges an import of the module runs).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import REPO

ROOTS = {"silif_deploy": REPO / "src" / "silif_deploy", "silif_deploy.converters": REPO / "converters",
         "silif_deploy.hw_models": REPO / "hw_models", "silif_deploy.deploy": REPO / "deploy"}
"""Installed package name → source folder (pyproject's package-dir)."""
CHECKED = ("silif_deploy.converters", "silif_deploy.hw_models", "silif_deploy.deploy")


def source_modules() -> dict[str, Path]:
    """Dotted module name → source file, for every module of the package."""
    modules: dict[str, Path] = {}
    for package, folder in ROOTS.items():
        for path in sorted(folder.rglob("*.py")):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
                continue
            modules[".".join([package, *parts])] = path
    return modules


MODULES = source_modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _resolve(module: str, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The package modules an import statement of ``module`` loads (the deepest existing module per name)."""
    if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            anchor = module.split(".") if _is_package(module) else module.split(".")[:-1]
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join([*anchor, *([base] if base else [])])
        targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
    found = []
    for target in targets:
        while target and target not in MODULES:
            target = target.rpartition(".")[0]
        if target and target != module:
            found.append(target)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(module: str) -> tuple[set[str], set[str]]:
    """(module-level imports, every import anywhere) of ``module``, as package module names."""
    tree = ast.parse(MODULES[module].read_text(), filename=str(MODULES[module]))
    top: set[str] = set()
    anywhere: set[str] = set()

    def visit(node: ast.AST, at_import_time: bool) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = _resolve(module, node)
            anywhere.update(names)
            if at_import_time:
                top.update(names)
            return
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, False)
            for child in node.orelse:
                visit(child, at_import_time)
            return
        inside_function = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, at_import_time and not inside_function)

    visit(tree, True)
    return top, anywhere


def _is_cli(module: str) -> bool:
    return module.startswith("silif_deploy.deploy.") and (
        module.rpartition(".")[2].startswith("cmd_") or module == "silif_deploy.deploy.cli")


def test_the_static_check_reads_the_imports_it_must():
    """The checker itself, on modules whose imports are known: a lazy import inside a function, a
    TYPE_CHECKING import and a module-level import are each classified as they run."""
    top, anywhere = imports("silif_deploy.deploy.cmd_report")
    assert "silif_deploy.deploy.report_builder" in anywhere - top  # imported inside run()
    top, anywhere = imports("silif_deploy.deploy.engines")
    assert "silif_deploy.hw_models.network" in anywhere - top  # under `if TYPE_CHECKING:`
    assert "silif_deploy.converters.files" in top
    assert sum(_is_cli(m) for m in MODULES) > 10  # cli.py and the cmd_*.py modules


def test_nothing_outside_the_cli_imports_a_cli_module():
    offenders = sorted(f"{module} imports {target}" for module in MODULES if not _is_cli(module)
                       for target in imports(module)[1] if _is_cli(target))
    assert offenders == []


def test_module_level_import_graph_has_no_cycle():
    graph = {module: sorted(imports(module)[0]) for module in MODULES}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []
    cycles: list[list[str]] = []

    def walk(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in graph[module]:
            if state.get(target) == 1:
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                walk(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            walk(module)
    assert [" -> ".join(c) for c in cycles] == []


_PROBE = """
import importlib, json, sys
name = sys.argv[1]
before = set(sys.modules)
try:
    importlib.import_module(name)
except ModuleNotFoundError as err:
    print(json.dumps({"missing": err.name}))
else:
    print(json.dumps({"loaded": sorted(m for m in set(sys.modules) - before if m.startswith("silif_deploy."))}))
"""


def _import_alone(module: str) -> tuple[str, dict]:
    run = subprocess.run([sys.executable, "-c", _PROBE, module], capture_output=True, text=True, timeout=300,
                         cwd=REPO / "tests")
    if run.returncode != 0:
        return module, {"error": run.stderr.strip().splitlines()[-1:] or [f"exit {run.returncode}"]}
    return module, json.loads(run.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def alone() -> dict[str, dict]:
    """Each checked module imported first and alone in a fresh interpreter (two at a time)."""
    checked = [m for m in MODULES if m.startswith(CHECKED)]
    with ThreadPoolExecutor(2) as pool:
        return dict(pool.map(_import_alone, checked))


def _not_installed(name: str) -> bool:
    top = name.partition(".")[0]
    return top != "silif_deploy" and importlib.util.find_spec(top) is None


def test_every_module_imports_alone_in_a_fresh_interpreter(alone):
    failed = {m: r for m, r in alone.items() if "error" in r or ("missing" in r and not _not_installed(r["missing"]))}
    assert failed == {}
    assert all("loaded" in r for m, r in alone.items() if m.startswith("silif_deploy.hw_models"))
    assert sum("loaded" in r for r in alone.values()) > len(alone) // 2


def test_the_static_graph_names_what_an_import_runs(alone):
    """Cross-check of the static reading: every package module a fresh import of a module loads is
    reachable in the static module-level graph (which may name more: the runtime loads a package's
    ``__init__`` first, and whatever it imports)."""
    graph = {module: imports(module)[0] for module in MODULES}

    def reach(module: str) -> set[str]:
        seen, todo = set(), [module]
        while todo:
            m = todo.pop()
            if m not in seen:
                seen.add(m)
                todo += graph[m]
        return seen

    implicit = set().union(*(reach(m) for m in MODULES if _is_package(m)))  # a package's __init__ runs first
    unexplained = {m: sorted(set(r["loaded"]) - reach(m) - implicit)
                   for m, r in alone.items() if "loaded" in r}
    assert {m: u for m, u in unexplained.items() if u} == {}
