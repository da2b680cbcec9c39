"""The package's layers: imports point down, no circles, small modules and functions.

The layers, lowest first (a module may import its own layer and those below)::

    errors, _version, _typing  every exception class; the one version; type aliases
    kernels                  numpy/scipy only
    cluster, store           the only door to distributed; files on disk
    engine                   dask graphs over row chunks
    io                       zarr / xarray in and out, data fingerprints
    estimators               the one EM loop and the estimators
    cli, pipeline, plotting, datasets, the package root, __main__

Imports are read from the source (every ``import`` statement, also those inside
functions), so a lazy import counts like any other.  Exceptions to the size
limits are listed below, each with its reason.
"""

from __future__ import annotations

import ast
import shutil
import sys
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "daskgmm"

LAYERS = (
    ("daskgmm.errors", "daskgmm._version", "daskgmm._typing"),
    ("daskgmm.kernels",),
    ("daskgmm.cluster", "daskgmm.store"),
    ("daskgmm.engine",),
    ("daskgmm.io",),
    ("daskgmm.estimators",),
    (
        "daskgmm.cli",
        "daskgmm.pipeline",
        "daskgmm.plotting",
        "daskgmm.datasets",
        "daskgmm.dashboard",
    ),
)
#: The package root and ``python -m daskgmm`` sit on top of everything.
TOP = ("daskgmm", "daskgmm.__main__")

#: Third-party packages a layer must not import, and who alone may.
FORBIDDEN = {
    "daskgmm.kernels": ("dask", "distributed", "zarr", "xarray", "numcodecs", "fsspec"),
    "daskgmm.engine": ("distributed", "zarr", "xarray"),
    "daskgmm.store": ("dask", "distributed", "zarr", "xarray"),
    "daskgmm.estimators": ("distributed", "zarr", "xarray"),
    "daskgmm.io": ("distributed",),
    "daskgmm.cli": ("distributed",),
    "daskgmm.pipeline": ("distributed",),
}

#: (layer, third-party package) -> the only modules of that layer that may import it, and why.
ONLY_IN = {
    ("daskgmm.kernels", "sklearn"): (
        ("daskgmm.kernels.checks",),
        "the data and fitted-state checks use scikit-learn's own validators "
        "(check_array, check_is_fitted); the computing kernels stay numpy/scipy",
    ),
    ("daskgmm.kernels", "array_api_compat"): (
        ("daskgmm.kernels.devices",),
        "the namespace of a chunk that is not numpy (CuPy on a GPU), for the array-"
        "namespace E-step; imported lazily, on the first such chunk",
    ),
    ("daskgmm.kernels", "cupy"): (
        ("daskgmm.kernels.devices",),
        "device='cuda' moves chunks to the GPU with cupy.asarray; imported lazily, "
        "only then (CuPy is the optional extra daskgmm[gpu])",
    ),
}

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
#: module -> why it may be longer than MAX_MODULE_LINES.
LONG_MODULES: dict[str, str] = {}
#: "module:function" -> why it may be longer than MAX_FUNCTION_LINES (docstring excluded).
LONG_FUNCTIONS: dict[str, str] = {}


# --------------------------------------------------------------------------- #
# reading the package
# --------------------------------------------------------------------------- #
def modules_of(package_dir: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of the package."""
    out = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_package(name: str, modules: dict[str, Path]) -> bool:
    return modules[name].name == "__init__.py"


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> tuple[set, set]:
    """(daskgmm modules, top-level third-party names) that module ``name`` imports."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if _is_package(name, modules) else name.rpartition(".")[0]
    internal, external = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(base + ([node.module] if node.module else []))
            else:
                base = node.module
            # ``from pkg import sub`` imports the submodule when there is one
            subs = [f"{base}.{alias.name}" for alias in node.names]
            targets = [s for s in subs if s in modules] or [base]
        else:
            continue
        for target in targets:
            if target == "daskgmm" or target.startswith("daskgmm."):
                internal.add(target)  # a name that is no module is reported as missing
            else:
                external.add(target.split(".")[0])
    internal.discard(name)
    return internal, external


def layer_of(name: str) -> int:
    if name in TOP:
        return len(LAYERS)
    for level, prefixes in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return level
    raise AssertionError(f"{name} belongs to no layer: add it to LAYERS in {__file__}")


def _function_lengths(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            doc = ast.get_docstring(node, clean=False)
            if doc is not None:
                first = node.body[0]
                length -= first.end_lineno - first.lineno + 1
            yield node.name, node.lineno, length


def layering_problems(package_dir: Path) -> list[str]:
    """Every broken rule of the layering, as readable lines (empty when all hold)."""
    modules = modules_of(package_dir)
    graph, problems = {}, []
    for name, path in modules.items():
        internal, external = imports_of(name, path, modules)
        graph[name] = internal
        for target in sorted(internal - set(modules)):
            problems.append(f"missing module: {name} imports {target}")
        for target in sorted(internal & set(modules)):
            if layer_of(target) > layer_of(name):
                problems.append(f"upward import: {name} imports {target}")
        for prefix, banned in FORBIDDEN.items():
            if name == prefix or name.startswith(prefix + "."):
                for lib in sorted(external & set(banned)):
                    problems.append(f"{name} imports {lib}, which {prefix} must not")
        for (prefix, lib), (allowed, _why) in ONLY_IN.items():
            inside = name == prefix or name.startswith(prefix + ".")
            if inside and lib in external and name not in allowed:
                problems.append(f"{name} imports {lib}, which in {prefix} only {allowed} may")
    problems += [f"import circle: {' -> '.join(c)}" for c in _cycles(graph)]
    return problems


def _cycles(graph: dict[str, set]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
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
                out.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


# --------------------------------------------------------------------------- #
# the rules
# --------------------------------------------------------------------------- #
def test_imports_point_down_without_circles():
    assert layering_problems(PACKAGE_DIR) == []


def test_every_module_belongs_to_a_layer():
    for name in modules_of(PACKAGE_DIR):
        layer_of(name)


@pytest.mark.parametrize(
    "module, injected, expected",
    [
        ("kernels/stats.py", "from ..estimators import GaussianMixture", "upward import"),
        ("engine/rows.py", "from ..io import open_rows", "upward import"),
        ("kernels/mstep.py", "import dask.array", "daskgmm.kernels.mstep imports dask"),
        ("kernels/density.py", "import sklearn.utils", "daskgmm.kernels.density imports sklearn"),
        ("io/row_view.py", "from . import sources", "import circle"),
        ("datasets.py", "from ._engine import compute", "missing module"),
    ],
)
def test_the_layering_check_fails_on_a_broken_rule(tmp_path, module, injected, expected):
    """Control: a copy of the package with one bad import added is reported."""
    copy = tmp_path / "daskgmm"
    shutil.copytree(PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / module
    target.write_text(target.read_text() + f"\n\ndef _injected():\n    {injected}\n")
    problems = layering_problems(copy)
    assert any(expected in line for line in problems), problems


def test_modules_and_functions_are_small():
    long_modules, long_functions = [], []
    for name, path in modules_of(PACKAGE_DIR).items():
        text = path.read_text()
        n_lines = len(text.splitlines())
        if n_lines > MAX_MODULE_LINES and name not in LONG_MODULES:
            long_modules.append(f"{name}: {n_lines} lines")
        for function, line, length in _function_lengths(ast.parse(text)):
            key = f"{name}:{function}"
            if length > MAX_FUNCTION_LINES and key not in LONG_FUNCTIONS:
                long_functions.append(f"{key} (line {line}): {length} lines")
    assert long_modules == [], f"modules over {MAX_MODULE_LINES} lines"
    assert long_functions == [], f"functions over {MAX_FUNCTION_LINES} lines"


def test_listed_exceptions_still_exist():
    modules = modules_of(PACKAGE_DIR)
    for name in LONG_MODULES:
        assert name in modules, f"{name} is listed in LONG_MODULES but gone"
    for key in LONG_FUNCTIONS:
        assert key.partition(":")[0] in modules, f"{key} is listed in LONG_FUNCTIONS but gone"


def test_kernels_import_without_dask_in_a_fresh_interpreter():
    """The import rule holds at run time too: loading every kernel leaves dask out."""
    import subprocess

    names = [n for n in modules_of(PACKAGE_DIR) if n.startswith("daskgmm.kernels")]
    code = (
        f"import sys, importlib\nfor n in {names!r}: importlib.import_module(n)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('dask', 'distributed', 'zarr', 'xarray')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_chunk_tasks_import_no_scikit_learn():
    """What a dask worker imports to run a pass's chunk tasks (the kernels, the pass,
    the Zarr readers, the errors) leaves scikit-learn out: it would cost every worker
    about 90 MB of its memory limit.  Using ``NotFittedError`` loads it."""
    import subprocess

    names = [n for n in modules_of(PACKAGE_DIR) if n.startswith("daskgmm.kernels")]
    names += ["daskgmm.errors", "daskgmm.engine.passes", "daskgmm.io.readers"]
    code = (
        f"import sys, importlib\nfor n in {names!r}: importlib.import_module(n)\n"
        "print('sklearn' in sys.modules)\n"
        "from daskgmm.errors import NotFittedError\n"
        "import sklearn.exceptions\n"
        "print(issubclass(NotFittedError, sklearn.exceptions.NotFittedError))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]
