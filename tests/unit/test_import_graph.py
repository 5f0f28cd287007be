"""The package's import graph: no cycles (counting imports inside functions too), no import up
the layers, and checking a config never loads torch."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "essa_hpc"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the essa_hpc modules it imports anywhere in its body (functions included)."""
    modules = {module_name(p): p for p in PKG.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                submodules = {f"{base}.{a.name}" for a in node.names} & modules.keys()
                # `from pkg import submodule` depends on the submodule; `from mod import name` on mod
                targets |= submodules if len(submodules) == len(node.names) else {base} | submodules
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


# The layers, bottom first: a module may import its own layer and the ones below, never above.
# The declarations (config) sit below everything that implements a kind; "module:Attr" strings
# in them are not imports.
LAYERS = [
    ["essa_hpc", "essa_hpc.errors"],  # the package itself is only its version
    ["essa_hpc.config"],
    ["essa_hpc.runtime"],
    ["essa_hpc.strategies", "essa_hpc.tasks", "essa_hpc.rewards", "essa_hpc.reward_worker", "essa_hpc.checkpoint"],
    ["essa_hpc.model", "essa_hpc.quantize", "essa_hpc.spaces", "essa_hpc.generation", "essa_hpc.evaluation",
     "essa_hpc.selection"],
    ["essa_hpc.assemble", "essa_hpc.trainer", "essa_hpc.sft", "essa_hpc.signal_check", "essa_hpc.baselines"],
    ["essa_hpc.launch"],
]


def layer_of(module: str) -> int:
    """The layer of the longest prefix of ``module`` named in LAYERS."""
    best, level = "", None
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            covers = module == prefix or (prefix != "essa_hpc" and module.startswith(prefix + "."))
            if covers and len(prefix) > len(best):
                best, level = prefix, i
    assert level is not None, f"{module} is in no layer: add it to LAYERS"
    return level


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets if layer_of(b) > layer_of(a))


def test_graph_sees_imports():
    graph = import_graph()
    assert {"essa_hpc.errors", "essa_hpc.config.strategies"} <= graph["essa_hpc.config.validation"]  # real edges
    assert find_cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]  # and the search finds a planted cycle
    planted = {"essa_hpc.config.schema": {"essa_hpc.spaces"}, "essa_hpc.spaces": set()}
    assert upward_imports(planted) == ["essa_hpc.config.schema -> essa_hpc.spaces"]  # and an import up the layers


def test_no_import_runs_up_the_layers():
    assert upward_imports(import_graph()) == []


def test_no_import_cycle_in_the_package():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


@pytest.mark.parametrize("override", ["strategy.population=1", "space.rank=0", "task.kind=nope",
                                      "strategy.cma_es.covariance=diagonal", "model.name=/no/such/dir"])
def test_a_bad_config_fails_without_importing_torch(override, tmp_path):
    code = ("import sys\n"
            "from essa_hpc.launch.cli import main\n"
            f"rc = main(['train', {str(ROOT / 'configs' / 'tiny.yaml')!r}, {override!r}, "
            f"'--run-dir', {str(tmp_path / 'run')!r}])\n"
            "print('RC', rc, 'TORCH', 'torch' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={"ESSA_NO_MPI": "1", "PATH": "/usr/bin:/bin"}, cwd=ROOT)
    assert "RC 2 TORCH False" in proc.stdout, proc.stdout + proc.stderr
    assert "error" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
