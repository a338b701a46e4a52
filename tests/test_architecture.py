"""The layout's rules, checked on the source: imports follow the stage order, no import cycles, function-local
imports only for optional dependencies, no module over 400 lines (docs/architecture.md)."""
from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "transferlab"
MAX_LINES = 400
# third-party packages that are extras (or heavy and only needed by one code path): imported where used
OPTIONAL = {"ray", "pyarrow", "onnx", "onnxruntime", "onnxscript", "skimage", "pandas", "torchvision", "timm",
            "openvino", "nncf", "h5py", "scipy", "skops"}


# the stages of the flow, in order: a module imports only from its own stage or earlier ones
STAGES = ("base", "data", "models", "features", "classify", "engines", "experiment", "finetune", "deploy", "studies",
          "bench", "analysis", "plots", "report", "cli")
BASE = {"transferlab", "options", "config", "extras", "files", "machine", "provenance"}  # what every stage may use


def stage(module: str) -> str:
    """``transferlab.features.cache`` → ``features``; the package itself and its light top modules → ``base``."""
    top = module.split(".")[1] if module.count(".") else "transferlab"
    return "base" if top in BASE else top


def _stage_violations(graph: dict[str, set[str]]) -> list[str]:
    order = {s: i for i, s in enumerate(STAGES)}
    return sorted(f"{m} ({stage(m)}) imports {d} ({stage(d)})" for m, deps in graph.items() for d in deps
                  if order[stage(d)] > order[stage(m)])


def _module(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path):
    """(imported module, is function-local) for every import statement of ``path``, relative ones resolved."""
    mod = _module(path)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    local = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
             for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, id(node) in local
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:  # `from pkg import module` is an edge to the module
                yield (f"{base}.{alias.name}" if _known(f"{base}.{alias.name}") else base), id(node) in local


def _known(name: str) -> bool:
    rel = name.split(".")[1:]
    return bool(rel) and ((SRC.joinpath(*rel).with_suffix(".py")).exists() or SRC.joinpath(*rel, "__init__.py").exists())


def _graph() -> dict[str, set[str]]:
    graph = {}
    for path in SRC.rglob("*.py"):
        graph[_module(path)] = {m for m, _ in _imports(path) if m.split(".")[0] == "transferlab" and m != _module(path)}
    return {m: {d for d in deps if d in graph} for m, deps in graph.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    graph = _graph()
    assert len(graph) > 40  # the walk found the package
    assert _cycles(graph) == []


def test_every_module_belongs_to_a_stage():
    assert {stage(m) for m in _graph()} <= set(STAGES)


def test_imports_follow_the_stage_order():
    assert _stage_violations(_graph()) == []


def test_stage_check_finds_a_planted_backward_import():
    graph = {**_graph(), "transferlab.features.planted": {"transferlab.experiment"}}
    assert _stage_violations(graph) == ["transferlab.features.planted (features) imports transferlab.experiment "
                                        "(experiment)"]


def test_cycle_detector_finds_a_planted_cycle():
    graph = {**_graph(), "transferlab.a": {"transferlab.b"}, "transferlab.b": {"transferlab.a"}}
    assert ["transferlab.a", "transferlab.b"] in _cycles(graph)


def test_function_local_imports_are_optional_dependencies_only():
    offenders = [f"{p.relative_to(SRC)}: {m}" for p in SRC.rglob("*.py") for m, local in _imports(p)
                 if local and m.split(".")[0] not in OPTIONAL]
    assert offenders == []


def test_no_module_over_400_lines():
    sizes = {str(p.relative_to(SRC)): len(p.read_text().splitlines()) for p in SRC.rglob("*.py")}
    assert {p: n for p, n in sizes.items() if n > MAX_LINES} == {}
