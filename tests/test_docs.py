"""The documentation's Python runs as written, and the project files agree.

- Every ``python`` block of the Markdown pages under ``docs/`` runs: a page's blocks,
  in order, as one script in a fresh interpreter, in a directory holding the stores
  the README's ``daskgmm make-data`` lines make (the pages read the same ones) and a
  copy of ``pipelines/``. A block preceded by ``<!-- readme-test: skip (reason) -->``
  is left out; only blocks that connect to a scheduler running elsewhere may be.
- The examples in the public docstrings run as doctests (those that need a
  running cluster are marked ``+SKIP`` and say so).
- The version is written in one place: ``CITATION.cff`` and ``pyproject.toml`` agree
  with ``daskgmm/_version.py``.

The gallery (``docs/examples``) runs when ``make docs`` builds the site.
"""

from __future__ import annotations

import doctest
import importlib
import re
import sys
from pathlib import Path

import pytest
from test_readme import BLOCK, _run, make_workdir

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(
    p for p in DOCS.rglob("*.md") if "_build" not in p.parts and "auto_examples" not in p.parts
)


def _python_blocks(page: Path) -> list[tuple[str, str | None]]:
    text = page.read_text()
    return [(m["code"], m["why"]) for m in BLOCK.finditer(text) if m["lang"] == "python"]


PAGES_WITH_CODE = [p for p in PAGES if _python_blocks(p)]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """The README's stores, made by its own commands, and a copy of the specs."""
    return make_workdir(tmp_path_factory.mktemp("docs"))


def test_the_guide_has_python_to_run():
    names = {p.relative_to(DOCS).as_posix() for p in PAGES_WITH_CODE}
    assert {"guide/estimators.md", "guide/zarr-xarray.md", "guide/pipelines.md"} <= names


def test_only_blocks_that_need_a_running_scheduler_are_skipped():
    for page in PAGES:
        for code, why in _python_blocks(page):
            if why is not None:
                assert "connect(" in code and "start_local_cluster" not in code, page


@pytest.mark.parametrize(
    "page", PAGES_WITH_CODE, ids=[p.relative_to(DOCS).as_posix() for p in PAGES_WITH_CODE]
)
def test_a_page_runs_as_written(workdir, page):
    code = "\n".join(code for code, why in _python_blocks(page) if why is None)
    script = workdir / f"page_{page.stem}.py"
    script.write_text(code)
    done = _run([sys.executable, script.name], workdir)
    assert done.returncode == 0, f"{page}:\n{done.stderr[-3000:]}"


#: Modules whose public docstrings hold examples (run with the documented names).
DOCTESTED = [
    "daskgmm.estimators.gaussian_mixture",
    "daskgmm.estimators.batch",
    "daskgmm.estimators.bayesian_mixture",
    "daskgmm.estimators.online",
    "daskgmm.estimators.online_bayesian",
    "daskgmm.estimators.base",
    "daskgmm.estimators.registry",
    "daskgmm.estimators.selection",
    "daskgmm.io.sources",
    "daskgmm.io.row_view",
    "daskgmm.io.layout",
    "daskgmm.io.predictions",
    "daskgmm.io.fingerprint",
    "daskgmm.cluster.local",
    "daskgmm.cluster.connect",
    "daskgmm.cluster.client",
    "daskgmm.cluster.report",
    "daskgmm.cluster.blas",
    "daskgmm.cluster.progress",
    "daskgmm.cluster.events",
    "daskgmm.cluster.dashboard",
    "daskgmm.errors",
    "daskgmm.datasets",
    "daskgmm.plotting",
    "daskgmm.kernels.geometry",
    "daskgmm.store.model_files",
    "daskgmm.pipeline.spec",
    "daskgmm.pipeline.records",
    "daskgmm.pipeline.state",
    "daskgmm.pipeline.runner",
    "daskgmm.pipeline.status",
]


@pytest.mark.parametrize("name", DOCTESTED)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(module) if t.examples]
    for test in tests:
        runner.run(test)
    assert runner.failures == 0, f"{runner.failures} docstring example(s) of {name} failed"


def test_the_version_is_written_in_one_place():
    from daskgmm import __version__

    citation = (ROOT / "CITATION.cff").read_text()
    assert re.search(rf"^version: {re.escape(__version__)}$", citation, re.M)
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject
    assert 'version = { attr = "daskgmm._version.__version__" }' in pyproject
    assigned = [
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "daskgmm").rglob("*.py")
        if re.search(r"^__version__ *=", p.read_text(), re.M)
    ]
    assert assigned == ["daskgmm/_version.py"]


def test_the_package_says_it_is_typed():
    assert (ROOT / "daskgmm" / "py.typed").exists()
    assert '"py.typed"' in (ROOT / "pyproject.toml").read_text()
