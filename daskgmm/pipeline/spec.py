"""Pipeline specs: a TOML file read, checked and resolved before anything is written.

A spec has four tables (see ``pipelines/example.toml``)::

    [pipeline]  name, mode ('refit' | 'warm_start' | 'online'), keep, on_change,
                require_converged
    [input]     store, variable, feature_dim, append_dim, fill_value
    [model]     the estimator's parameters (n_components, covariance_type, ...);
                ``bayesian = true`` and the priors for BayesianGaussianMixture
    [output]    directory, proba, log_density

Relative paths resolve against the spec file's directory.  Every mistake raises
:class:`SpecError` (a ``ValueError``: exit code 2 on the command line) whose
message starts with the key's dotted path (``input.store``, ``model.n_components``)
and says what to change.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import SpecError
from .model_spec import check_model, suggest
from .model_spec import type_name as _type_name

if TYPE_CHECKING:
    from ..estimators.base import BaseGaussianMixture

#: The pipeline modes.
MODES = ("refit", "warm_start", "online")
#: What an online pipeline does when the source changed other than by appending.
ON_CHANGE = ("refit", "error")


def _string(key, value):
    if not isinstance(value, str) or not value:
        raise SpecError(key, f"must be a non-empty string, got {_type_name(value)} {value!r}.")


def _boolean(key, value):
    if not isinstance(value, bool):
        raise SpecError(key, f"must be true or false, got {_type_name(value)} {value!r}.")


def _count(key, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SpecError(key, f"must be an integer >= 0, got {_type_name(value)} {value!r}.")


def _choice(options: tuple) -> Callable:
    def check(key, value):
        if value not in options:
            raise SpecError(key, f"must be one of {list(options)}, got {value!r}.")

    return check


def _variables(key, value):
    if isinstance(value, list):
        if not value or not all(isinstance(v, str) and v for v in value):
            raise SpecError(key, f"must be a name or a non-empty array of names, got {value!r}.")
        return
    _string(key, value)


def _number(key, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(key, f"must be a number, got {_type_name(value)} {value!r}.")


#: Every key outside ``[model]``: table -> key -> (check, required).
SCHEMA: dict[str, dict[str, tuple[Callable, bool]]] = {
    "pipeline": {
        "name": (_string, False),
        "mode": (_choice(MODES), True),
        "keep": (_count, False),
        "on_change": (_choice(ON_CHANGE), False),
        "require_converged": (_boolean, False),
    },
    "input": {
        "store": (_string, True),
        "variable": (_variables, False),
        "feature_dim": (_string, False),
        "append_dim": (_string, False),
        "fill_value": (_number, False),
    },
    "model": {},  # checked by mode, see _check_model
    "output": {
        "directory": (_string, True),
        "proba": (_boolean, False),
        "log_density": (_boolean, False),
    },
}


@dataclass(frozen=True)
class PipelineSpec:
    """A checked pipeline spec, paths resolved.

    Attributes
    ----------
    path : pathlib.Path
        The spec file.
    name : str
        ``pipeline.name``, default the spec file's stem.
    mode : {'refit', 'warm_start', 'online'}
    keep : int
        Old versions kept besides the published one (default 2).
    on_change : {'refit', 'error'}
        What an online pipeline does when the source changed other than by
        appending rows (default 'error'; the batch modes always refit).
    require_converged : bool
        Refuse to publish a batch fit that did not converge.
    store : str
        Absolute path (or URL) of the input Zarr store.
    variable : str, list of str or None
    feature_dim, append_dim : str or None
        ``append_dim`` None means the first sample dimension.
    fill_value : number or 'auto'
        Passed to :func:`daskgmm.io.open_rows`.
    model : dict
        Estimator parameters from ``[model]`` (without ``bayesian``).
    bayesian : bool
        ``model.bayesian``: the estimator is a ``BayesianGaussianMixture``.
    directory : pathlib.Path
        The pipeline's state directory: versions, ``current``, run records, lock.
    proba, log_density : bool
        Extra prediction outputs.

    Examples
    --------
    >>> from daskgmm.pipeline.spec import parse_spec
    >>> spec = parse_spec({"pipeline": {"mode": "refit"}, "input": {"store": "x.zarr"},
    ...     "model": {"n_components": 3, "bayesian": True}, "output": {"directory": "out"}},
    ...     "daily.toml", check_store=False)
    >>> spec.name, spec.mode, spec.bayesian, spec.model
    ('daily', 'refit', True, {'n_components': 3})
    """

    path: Path
    name: str
    mode: str
    store: str
    directory: Path
    model: dict = field(default_factory=dict)
    keep: int = 2
    on_change: str = "error"
    require_converged: bool = False
    variable: str | list | None = None
    feature_dim: str | None = None
    append_dim: str | None = None
    fill_value: Any = "auto"
    proba: bool = False
    log_density: bool = False
    bayesian: bool = False

    def settings(self) -> dict:
        """What decides the published results: a change of any of these refits.

        ``keep``, ``name``, ``on_change`` and ``require_converged`` are left out:
        they change what is kept or allowed, not what is computed.

        Examples
        --------
        >>> from daskgmm.pipeline.spec import parse_spec
        >>> spec = parse_spec({"pipeline": {"mode": "refit"}, "input": {"store": "x.zarr"},
        ...     "model": {"n_components": 3, "bayesian": True}, "output": {"directory": "out"}},
        ...     "daily.toml", check_store=False)
        >>> spec.settings()["model.n_components"], spec.settings()["model.bayesian"]
        (3, True)
        """
        return {
            "mode": self.mode,
            "input.variable": self.variable,
            "input.feature_dim": self.feature_dim,
            "input.append_dim": self.append_dim,
            "input.fill_value": self.fill_value,
            # only when set, so that the other specs' settings stay what they were
            **({"model.bayesian": True} if self.bayesian else {}),
            **{f"model.{k}": v for k, v in sorted(self.model.items())},
            "output.proba": self.proba,
            "output.log_density": self.log_density,
        }

    def estimator(self, **extra: Any) -> BaseGaussianMixture:
        """A new, unfitted estimator of the mode's class with ``[model]`` and ``extra``.

        Examples
        --------
        >>> from daskgmm.pipeline.spec import parse_spec
        >>> spec = parse_spec({"pipeline": {"mode": "refit"}, "input": {"store": "x.zarr"},
        ...     "model": {"n_components": 3, "bayesian": True}, "output": {"directory": "out"}},
        ...     "daily.toml", check_store=False)
        >>> spec.estimator(random_state=0)
        BayesianGaussianMixture(n_components=3, random_state=0)
        """
        from ..estimators import (
            BayesianGaussianMixture,
            GaussianMixture,
            OnlineBayesianGaussianMixture,
            OnlineGaussianMixture,
        )

        classes = {
            (False, False): GaussianMixture,
            (True, False): OnlineGaussianMixture,
            (False, True): BayesianGaussianMixture,
            (True, True): OnlineBayesianGaussianMixture,
        }
        return classes[self.mode == "online", self.bayesian](**self.model, **extra)


def _is_url(location: str) -> bool:
    return "://" in location and not location.startswith("file://")


def _resolve(location: str, base: Path) -> str:
    if _is_url(location):
        return location
    path = Path(location.removeprefix("file://")).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def _input_store(location: str, base: Path, check: bool) -> str:
    """``input.store`` resolved; with ``check``, a local store must exist."""
    store = _resolve(location, base)
    if check and not _is_url(store) and not Path(store).exists():
        raise SpecError(
            "input.store",
            f"no Zarr store at {store} (relative paths resolve against {base}); check the path.",
        )
    return store


def _output_directory(location: str, base: Path, store: str) -> Path:
    """``output.directory`` resolved; refused if it is the input store or lies inside
    it (symbolic links followed): the runs would write their versions, lock and
    records into the data."""
    directory = Path(_resolve(location, base))
    if _is_url(store):
        return directory
    store_path = Path(store.removeprefix("file://")).resolve()
    resolved = directory.resolve()
    if resolved == store_path or store_path in resolved.parents:
        where = "is" if resolved == store_path else "lies inside"
        raise SpecError(
            "output.directory",
            f"{directory} {where} the input store {store}"
            + (f" (it resolves to {resolved})" if resolved != directory else "")
            + "; the pipeline would write its versions, lock and run records into the "
            "data. Choose a directory outside the store.",
        )
    return directory


def parse_spec(data: dict, path: str | os.PathLike, *, check_store: bool = True) -> PipelineSpec:
    """Check a spec already read from TOML; ``path`` locates relative paths.

    Parameters
    ----------
    data : dict
        The parsed TOML document.
    path : str or os.PathLike
        The spec file (its directory resolves relative paths; its stem is the
        default name).
    check_store : bool
        Check that a local ``input.store`` exists.

    Returns
    -------
    PipelineSpec

    Raises
    ------
    SpecError
        Naming the first key that is unknown, missing or of the wrong type or value.
    """
    path = Path(path).resolve()
    for table, value in data.items():
        if table not in SCHEMA:
            raise SpecError(
                table, f"unknown table.{suggest(table, SCHEMA)} A spec has {list(SCHEMA)}."
            )
        if not isinstance(value, dict):
            raise SpecError(table, f"must be a table ([{table}]), got {_type_name(value)}.")
    values: dict[str, dict] = {}
    for table, keys in SCHEMA.items():
        given = data.get(table, {})
        values[table] = given
        if table == "model":
            continue
        for key, value in given.items():
            if key not in keys:
                raise SpecError(
                    f"{table}.{key}",
                    f"unknown key.{suggest(key, keys)} Allowed: {list(keys)}.",
                )
            keys[key][0](f"{table}.{key}", value)
        for key, (_, required) in keys.items():
            if required and key not in given:
                raise SpecError(f"{table}.{key}", "is required.")
    pipeline, inp, out = values["pipeline"], values["input"], values["output"]
    mode = pipeline["mode"]
    if "model" not in data:
        raise SpecError("model", "is required: a [model] table with at least n_components.")
    model, bayesian = check_model(values["model"], mode)
    on_change = pipeline.get("on_change", "error" if mode == "online" else "refit")
    if mode != "online" and on_change != "refit":
        raise SpecError(
            "pipeline.on_change",
            f"mode {mode!r} refits whenever the source changed; only mode 'online' takes 'error'.",
        )
    store = _input_store(inp["store"], path.parent, check_store)
    directory = _output_directory(out["directory"], path.parent, store)
    return PipelineSpec(
        path=path,
        name=pipeline.get("name", path.stem),
        mode=mode,
        keep=pipeline.get("keep", 2),
        on_change=on_change,
        require_converged=pipeline.get("require_converged", False),
        store=store,
        variable=inp.get("variable"),
        feature_dim=inp.get("feature_dim"),
        append_dim=inp.get("append_dim"),
        fill_value=inp.get("fill_value", "auto"),
        model=model,
        bayesian=bayesian,
        directory=directory,
        proba=out.get("proba", False),
        log_density=out.get("log_density", False),
    )


def load_spec(path: str | os.PathLike, *, check_store: bool = True) -> PipelineSpec:
    """Read and check a pipeline spec (TOML).

    Parameters
    ----------
    path : str or os.PathLike
    check_store : bool
        Check that a local ``input.store`` exists (``pipeline status`` does not).

    Returns
    -------
    PipelineSpec

    Raises
    ------
    SpecError
        If the file is not valid TOML, or a key is unknown, missing, of the wrong
        type or value, or the (local) input store does not exist.
    FileNotFoundError
        If there is no file at ``path``.

    Examples
    --------
    >>> from pathlib import Path
    >>> from daskgmm.datasets import write_table
    >>> X, truth = write_table("data/sensors.zarr", 4_000, 3, 2, 1_000)
    >>> _ = Path("example.toml").write_text('''
    ... [pipeline]
    ... name = "sensors"
    ... mode = "online"
    ... [input]
    ... store = "data/sensors.zarr"
    ... [model]
    ... n_components = 2
    ... random_state = 0
    ... [output]
    ... directory = "out/sensors"
    ... ''')
    >>> from daskgmm.pipeline import load_spec
    >>> spec = load_spec("example.toml")
    >>> spec.mode, spec.name
    ('online', 'sensors')
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"No pipeline spec at {path}; check the path.") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError("", f"{path} is not valid TOML: {exc}") from None
    return parse_spec(data, path, check_store=check_store)
