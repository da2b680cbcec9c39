"""Sphinx configuration of the daskgmm documentation (``make docs``).

Sphinx with the pydata theme, numpydoc and sphinx-gallery: the docstrings are
numpydoc already, and scikit-learn, xarray and dask-ml, whose users daskgmm
serves, document themselves this way.  The gallery (``docs/examples``) runs at
every build; the benchmark figures are drawn from ``benchmarks/results/*.json``
by ``_ext/bench_figures.py``.  The build runs with ``-W``: warnings are errors.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE / "_ext"))

# The gallery draws with matplotlib off-screen; its LocalCluster example starts
# worker processes that must not open a browser or a display either.
os.environ.setdefault("MPLBACKEND", "Agg")

from daskgmm import __version__  # noqa: E402

project = "daskgmm"
author = "the daskgmm developers"
copyright = "the daskgmm developers"  # noqa: A001
version = release = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.doctest",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "bench_figures",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "examples/README.rst", "**/GALLERY_HEADER.rst", "sg_execution_times.rst"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# numpydoc renders the docstrings; the API pages list the members themselves.
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
autodoc_typehints = "none"  # the numpydoc sections state types and shapes
autodoc_member_order = "bysource"
autosummary_generate = False

# No network at build time: intersphinx would fetch inventories, so it is left
# without mappings (references to numpy or scikit-learn are plain text).
intersphinx_mapping: dict = {}

sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "plot_gallery": "True",
    "reset_modules": ("matplotlib",),
    "show_memory": False,
    "write_computation_times": False,
}

html_theme = "pydata_sphinx_theme"
html_title = f"daskgmm {release}"
html_static_path: list = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
    "secondary_sidebar_items": ["page-toc"],
}
html_sidebars = {"index": [], "changelog": []}
html_show_sourcelink = False
