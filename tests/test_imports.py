"""Every public module imports first thing in a fresh process, before Airflow itself is imported.

Airflow's providers manager calls ``get_provider_info()`` while Airflow is still being imported; if
the provider's first import is what starts Airflow's, nothing the provider info reads may need
Airflow in turn (a circular import that only a fresh process shows).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import airflow_provider_videogen
from airflow_provider_videogen.styles import STYLES

MODULES = [
    "airflow_provider_videogen.exceptions",
    "airflow_provider_videogen.video_download",
    "airflow_provider_videogen.hooks.videogen",
    "airflow_provider_videogen.operators.videogen",
    "airflow_provider_videogen.sensors.videogen",
    "airflow_provider_videogen.triggers.videogen",
    "airflow_provider_videogen.styles",
    # Each style's own module, as the registry lists them.
    *(type(style).__module__ for style in STYLES.values()),
    "airflow_provider_videogen.generation_request",
    "airflow_provider_videogen.testing",
]


# Imported only when the OpenLineage provider asks an operator for its facets: never by importing the provider.
LINEAGE = "airflow_provider_videogen.lineage"


@pytest.mark.parametrize("module", MODULES)
def test_the_module_imports_first_in_a_fresh_process(module):
    code = f"import sys, {module}; assert {LINEAGE!r} not in sys.modules, 'OpenLineage support was imported'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


PACKAGE = Path(airflow_provider_videogen.__file__).parent
#: The simulator is a program of its own inside the package, with its own layout: it is held to its own test.
SIMULATOR = "airflow_provider_videogen.testing"


def module_imports(*, simulator: bool = False) -> dict[str, set[str]]:
    """Every module of the provider and the package modules it imports anywhere (functions and type checks too).

    :param simulator: take the modules of the simulator (``testing``) instead of the provider's.
    """
    names = {
        ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): path
        for path in PACKAGE.rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        if name.startswith(SIMULATOR) != simulator:
            continue
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # ``from package import module`` imports the module; ``from module import name`` the module.
                submodules = {f"{node.module}.{alias.name}" for alias in node.names} & names.keys()
                targets.update(submodules or {node.module})
        graph[name] = {target for target in targets if target in names and target != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other in a loop (Tarjan's strongly connected components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(name: str) -> None:
        index[name] = low[name] = len(index)
        stack.append(name)
        for target in sorted(graph.get(name, ())):
            if target not in index:
                visit(target)
                low[name] = min(low[name], low[target])
            elif target in stack:
                low[name] = min(low[name], index[target])
        if low[name] == index[name]:
            group = []
            while (member := stack.pop()) != name:
                group.append(member)
            group.append(name)
            if len(group) > 1:
                found.append(sorted(group))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return found


def test_no_modules_of_the_provider_import_each_other_in_a_circle():
    assert circles(module_imports()) == []


def test_no_modules_of_the_simulator_import_each_other_in_a_circle():
    # Its routes, file host and state see the server through a protocol, and the records they share sit beneath them.
    graph = module_imports(simulator=True)
    assert "airflow_provider_videogen.testing.simulator.server" in graph
    assert circles(graph) == []


def test_the_task_and_request_models_know_no_style():
    # The styles read answers into tasks and turn requests into bodies: the models stay beneath them.
    graph = module_imports()
    for model in ("airflow_provider_videogen.video_task", "airflow_provider_videogen.generation_request"):
        assert not {name for name in graph[model] if name.startswith("airflow_provider_videogen.styles")}, model
