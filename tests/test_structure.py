"""The shape of the code: imports point one way (no module imports one that imports it back, late
imports inside functions included), only the UI imports streamlit, and the job side of the app
loads without torch."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def genapp_modules() -> dict[str, Path]:
    """{dotted name: file} of every module of genapp (a package by its ``__init__``)."""
    modules = {}
    for path in (ROOT / "genapp").rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def imports(path: Path, module: str, modules: set[str]) -> set[str]:
    """The modules among ``modules`` that ``path`` (the module ``module``) imports, anywhere in it
    (inside functions too), relative imports resolved. ``from a import b`` imports the module
    ``a.b`` when there is one, else a name from ``a``; ``import a.b`` the module ``a.b``."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                         for alias in node.names)
    return (found & modules) - {module}


def import_graph(modules: dict[str, Path] | None = None) -> dict[str, set[str]]:
    """Module -> the modules among ``modules`` (default: genapp's) that it imports."""
    modules = genapp_modules() if modules is None else modules
    return {module: imports(path, module, set(modules)) for module, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def streamlit_imported(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    names += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    return any(name == "streamlit" or name.startswith("streamlit.") for name in names)


def test_the_finder_sees_a_cycle_through_a_late_import(tmp_path):
    (tmp_path / "a.py").write_text("import math\n\n\ndef f():\n    from genapp.b import g  # late\n")
    (tmp_path / "b.py").write_text("from genapp import a\n")
    (tmp_path / "c.py").write_text("from . import a\nimport genapp.b\n")
    modules = {f"genapp.{name}": tmp_path / f"{name}.py" for name in "abc"}
    graph = import_graph(modules)
    assert graph == {"genapp.a": {"genapp.b"}, "genapp.b": {"genapp.a"}, "genapp.c": {"genapp.a", "genapp.b"}}
    assert cycles(graph) == [["genapp.a", "genapp.b"]]


def test_no_module_of_genapp_imports_one_that_imports_it_back():
    graph = import_graph()
    assert len(graph) > 40 and "genapp.config" in graph["genapp.models.vae"]
    assert "genapp.checkpoint" in graph["genapp"]  # genapp.load_model's import, inside the function
    assert cycles(graph) == []


def test_config_is_a_leaf():
    assert import_graph()["genapp.config"] == set()


def test_only_the_ui_imports_streamlit():
    # (the explorer's benchmarks drive the app with Streamlit's AppTest, as its tests do)
    paths = [path for module, path in genapp_modules().items() if not module.startswith("genapp.ui")]
    offenders = [str(path.relative_to(ROOT)) for path in [*paths, *ROOT.glob("train/*.py")] if streamlit_imported(path)]
    assert offenders == []
    assert streamlit_imported(ROOT / "genapp" / "ui" / "resources.py")  # the check sees one where there is one


def test_the_job_side_loads_without_torch():
    code = ("import sys, genapp.jobs, genapp.jobs.queue, genapp.runs.history; "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.') or m == 'streamlit'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
