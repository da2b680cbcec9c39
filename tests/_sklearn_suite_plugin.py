"""A pytest plugin for tests/test_sklearn_suite.py: runs scikit-learn's own tests of
``GaussianMixture`` with daskgmm's class in its place, and records every outcome.

Loaded with ``-p _sklearn_suite_plugin`` in a separate pytest process.  Environment:

``DASKGMM_SUITE_SWAP``
    ``1``: after collection, the name ``GaussianMixture`` in each collected test
    module (bound by its ``from sklearn.mixture import GaussianMixture``) becomes
    ``daskgmm.GaussianMixture``.  Otherwise scikit-learn's own class runs.
``DASKGMM_SUITE_REPORT``
    A JSON file written at the end: ``{"outcomes": {test id: outcome},
    "swapped": [module names]}``, the outcome ``passed``, ``failed`` or ``skipped``
    (an error in setup or teardown counts as ``failed``).
"""

from __future__ import annotations

import json
import os

_outcomes: dict[str, str] = {}
_swapped: list[str] = []


def pytest_collection_modifyitems(session, config, items):
    if os.environ.get("DASKGMM_SUITE_SWAP") != "1":
        return
    import sklearn.mixture

    import daskgmm

    for item in items:
        module = getattr(item, "module", None)
        if module is None or module.__name__ in _swapped:
            continue
        if getattr(module, "GaussianMixture", None) is sklearn.mixture.GaussianMixture:
            module.GaussianMixture = daskgmm.GaussianMixture
            _swapped.append(module.__name__)


def pytest_runtest_logreport(report):
    name = report.nodeid.rpartition("::")[2]
    if report.when == "call" or report.outcome != "passed":
        if _outcomes.get(name) != "failed":
            _outcomes[name] = report.outcome
    elif name not in _outcomes:
        _outcomes[name] = "passed"  # setup passed; the call's report follows


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("DASKGMM_SUITE_REPORT")
    if path:
        with open(path, "w") as f:
            json.dump({"outcomes": _outcomes, "swapped": _swapped}, f, indent=1)
