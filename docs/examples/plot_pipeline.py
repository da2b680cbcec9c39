"""
A scheduled pipeline: the "try it" sequence
===========================================

A pipeline is a TOML spec that cron, a systemd timer or Prefect runs again and
again; each run processes what is new and publishes a version atomically.  This
is the README's "try it" sequence, with the Python API in a temporary
directory.  On the command line it reads::

    daskgmm make-data pipelines/data/sensors.zarr --n-samples 200000 --chunks 10000 \\
        --n-features 4 --n-components 3
    daskgmm pipeline run pipelines/example.toml     # version 1: fit on all rows
    daskgmm pipeline run pipelines/example.toml     # nothing new
    python -c "from daskgmm.datasets import append_table; \\
        append_table('pipelines/data/sensors.zarr', 20000)"
    daskgmm pipeline run pipelines/example.toml     # version 2: online update
    daskgmm pipeline status pipelines/example.toml

(here with 40,000 rows and 4,000 appended, to keep the example quick).
"""

import shutil
import tempfile
from pathlib import Path

from daskgmm.datasets import append_table, make_mixture
from daskgmm.pipeline import load_spec, pipeline_status, run_pipeline

work = Path(tempfile.mkdtemp())
spec_path = work / "pipelines" / "example.toml"
spec_path.parent.mkdir()
for candidate in (Path.cwd(), *Path.cwd().parents):  # the repository's example spec
    if (candidate / "pipelines" / "example.toml").exists():
        shutil.copy(candidate / "pipelines" / "example.toml", spec_path)
        break
print(spec_path.read_text())

# %%
# The data: a table of sensor readings in Zarr
# --------------------------------------------
store = work / "pipelines" / "data" / "sensors.zarr"
make_mixture(40_000, n_features=4, n_components=3, chunk_rows=10_000, dtype="float32",
             store=str(store), seed=0)

# %%
# First run: fit on all rows, predict them, publish version 1
# ------------------------------------------------------------
spec = load_spec(spec_path)
record = run_pipeline(spec, notify=print)
print(record.status, record.action, "version", record.version)

# %%
# Again: nothing new, nothing computed
# ------------------------------------
record = run_pipeline(spec, notify=print)
print(record.status, record.action)

# %%
# New rows arrive; the online model learns from them alone
# --------------------------------------------------------
append_table(str(store), 4_000)
record = run_pipeline(spec, notify=print)
print(record.status, record.action, "version", record.version, "rows", record.rows_processed)

# %%
# What is published
# -----------------
status = pipeline_status(spec, last=5)
print("published version:", status.published["version"])
print("extent:", status.published["source"]["extent"])
print("versions kept:", status.versions)
for run in status.runs:
    print(run.status, run.action, run.rows_processed, run.version)
shutil.rmtree(work)
