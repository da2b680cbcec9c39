"""The README's Python examples run as written.

The stores they read are made by the README's own ``daskgmm make-data`` lines
(its ``console`` blocks), in a temporary directory that also holds a copy of
``pipelines/example.toml``; then every ``python`` block runs there, as a script
in a fresh interpreter (so that a cluster example needs its ``__main__`` guard).
A block preceded by ``<!-- readme-test: skip (reason) -->`` is not run; only
blocks that connect to a scheduler running elsewhere may be skipped.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCK = re.compile(
    r"(?:<!-- readme-test: skip \((?P<why>[^)]*)\) -->\n)?```(?P<lang>\w+)\n(?P<code>.*?)^```",
    re.S | re.M,
)


def _blocks(lang: str) -> list[tuple[str, str | None]]:
    """``(code, reason to skip or None)`` of every ``lang`` block, in order."""
    return [(m["code"], m["why"]) for m in BLOCK.finditer(README) if m["lang"] == lang]


PYTHON_BLOCKS = _blocks("python")
#: The stores the examples read (the Python blocks, and pipelines/example.toml's input).
#: Only the README lines that make these run: never, say, its benchmarks' big stores.
NEEDED_STORES = ("measurements.zarr", "cube.zarr", "pipelines/data/sensors.zarr")
MAKE_DATA = [
    line.strip()
    for code, _ in _blocks("console")
    for line in code.splitlines()
    if line.startswith("daskgmm make-data ") and shlex.split(line)[2] in NEEDED_STORES
]


def _run(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def make_workdir(path: Path) -> Path:
    """Fill ``path`` with the README's stores (made by its own commands) and a copy of
    the specs (the docs' pages read the same ones)."""
    shutil.copytree(
        ROOT / "pipelines", path / "pipelines", ignore=shutil.ignore_patterns("data", "out")
    )
    for line in MAKE_DATA:
        done = _run([sys.executable, "-m", "daskgmm", *shlex.split(line)[1:]], path)
        assert done.returncode == 0, f"{line}\n{done.stderr}"
    return path


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return make_workdir(tmp_path_factory.mktemp("readme"))


def test_the_readme_makes_its_data_and_has_python_examples():
    stores = [shlex.split(line)[2] for line in MAKE_DATA]
    assert sorted(stores) == sorted(NEEDED_STORES)  # each made once, by the README
    assert len(PYTHON_BLOCKS) >= 5


def test_only_examples_that_need_a_running_scheduler_are_skipped():
    skipped = [code for code, why in PYTHON_BLOCKS if why is not None]
    assert all("connect(" in code and "start_local_cluster" not in code for code in skipped)


def test_the_cluster_example_has_its_main_guard():
    cluster = [code for code, _ in PYTHON_BLOCKS if "start_local_cluster(" in code]
    assert cluster, "the README shows no start_local_cluster example"
    for code in cluster:
        guard = code.index('if __name__ == "__main__":')
        assert guard < code.index("start_local_cluster(n_workers")


@pytest.mark.parametrize(
    "index", range(len(PYTHON_BLOCKS)), ids=[f"block{i}" for i in range(len(PYTHON_BLOCKS))]
)
def test_a_python_example_runs_as_written(workdir, index):
    code, why = PYTHON_BLOCKS[index]
    if why is not None:
        pytest.skip(f"README says: {why}")
    script = workdir / f"readme_block_{index}.py"
    script.write_text(code)
    done = _run([sys.executable, script.name], workdir)
    assert done.returncode == 0, f"README python block {index}:\n{code}\n{done.stderr}"
