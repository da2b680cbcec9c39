"""A pytest plugin for tests/test_sklearn_suite.py: runs scikit-learn's own tests of
``GaussianMixture`` and ``BayesianGaussianMixture`` with daskgmm's classes in their
place, and records every outcome.

Loaded with ``-p _sklearn_suite_plugin`` in a separate pytest process.  Environment:

``DASKGMM_SUITE_SWAP``
    ``1``: after collection, the names ``GaussianMixture`` and
    ``BayesianGaussianMixture`` in each collected test module (bound by its
    ``from sklearn.mixture import ...``) become daskgmm's classes.  Otherwise
    scikit-learn's own classes run.
``DASKGMM_SUITE_REPORT``
    A JSON file written at the end: ``{"outcomes": {test id: outcome},
    "swapped": [module names]}``, the outcome ``passed``, ``failed`` or ``skipped``
    (an error in setup or teardown counts as ``failed``).
"""

from __future__ import annotations

import json
import os

#: The scikit-learn classes whose module-level names are replaced by daskgmm's.
SWAPPED_CLASSES = ("GaussianMixture", "BayesianGaussianMixture")
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
        for name in SWAPPED_CLASSES:
            if getattr(module, name, None) is getattr(sklearn.mixture, name):
                setattr(module, name, getattr(daskgmm, name))
                if module.__name__ not in _swapped:
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
