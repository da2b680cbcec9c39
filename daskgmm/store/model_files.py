"""Save and load fitted models: JSON metadata plus a ``.npz`` of arrays, never pickle.

A saved model is a directory::

    model.json     schema version, class name, constructor parameters (the JSON-able
                   ones), scalar fitted attributes (among them ``training_data_``,
                   the fingerprint of the training data), estimator-specific state
                   (e.g. the online step counters), daskgmm version, creation time,
                   a manifest (shape, dtype, SHA-256) of the arrays, and the
                   SHA-256 of all of that (``metadata_sha256``)
    arrays.npz     fitted arrays (and array-valued parameters, and e.g. the online
                   sufficient statistics), written with ``numpy.savez`` and read
                   with ``allow_pickle=False``

It is written by :func:`daskgmm.store.files.write_directory` (a temporary sibling
renamed into place), so a killed writer never leaves a half-written model.  Loading
checks the schema version, the class, both checksums (an edited parameter or
fitted value in ``model.json`` is refused like a changed array), every array's
shape and dtype and the consistency of the mixture parameters, and refuses
anything else with :class:`ModelFileError`.  Models of schema version 1 (before
``metadata_sha256``) are still read, without that check.

This module knows no estimator class: :func:`save` and :func:`load` take a table
of model classes by name (``daskgmm.estimators.MODEL_CLASSES``).  A class may
define ``_extra_state() -> (dict, dict of arrays)`` and
``_restore_extra_state(dict, dict of arrays)`` for state that is not a public
fitted attribute, or a fitted attribute that is neither an array nor JSON (named
in ``_state_attributes``).
"""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path

import numpy as np

from .._typing import PathLike
from .._version import __version__
from ..errors import ModelFileError
from ..kernels.checks import check_is_fitted
from ..kernels.params import validate_parameters
from .arrays import pack
from .files import readable_directory, write_directory
from .json_values import is_json
from .model_check import check_manifest_sizes, check_mixture, check_npz_headers

SCHEMA_VERSION = 2
#: Schema versions :func:`load` reads (1 has no ``metadata_sha256``).
READABLE_SCHEMA_VERSIONS = (1, 2)
MODEL_FILE = "model.json"
ARRAYS_FILE = "arrays.npz"
#: Array dtypes a model file may hold.
_DTYPES = ("float64", "int64", "bool")


def _split(items: dict, prefix: str, arrays: dict) -> tuple[dict, list]:
    """JSON-able values into a dict; numpy arrays into ``arrays``; names of the rest."""
    plain, other, array_values = {}, [], {}
    for name, value in items.items():
        if isinstance(value, np.ndarray):
            array_values[name] = value
        elif isinstance(value, np.generic):
            plain[name] = value.item()
        elif is_json(value):
            plain[name] = value
        else:
            other.append(name)
    pack(arrays, f"{prefix}__", array_values)
    return plain, other


def metadata_checksum(meta: dict) -> str:
    """SHA-256 of a model's metadata, its ``metadata_sha256`` entry left out.

    Taken over the canonical JSON text (sorted keys, no spaces), which a JSON
    round trip reproduces exactly.

    Examples
    --------
    >>> from daskgmm.store import metadata_checksum
    >>> digest = metadata_checksum({"class": "GaussianMixture", "n_components": 2})
    >>> len(digest)                                 # hex SHA-256
    64
    >>> metadata_checksum({"n_components": 2, "class": "GaussianMixture"}) == digest
    True
    >>> metadata_checksum({"class": "GaussianMixture", "n_components": 2,
    ...                    "metadata_sha256": "anything"}) == digest
    True
    """
    body = {k: v for k, v in meta.items() if k != "metadata_sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


def save(model, path, classes: dict[str, type], *, overwrite: bool = False) -> Path:
    """Save a fitted model to the directory ``path``, atomically.

    Parameters
    ----------
    model : fitted estimator of a class in ``classes``
    path : str or os.PathLike
        The directory to create.  An existing model directory there is replaced
        only when ``overwrite`` (anything else is always refused).
    classes : dict
        Class name -> class: the models :func:`load` can rebuild.
    overwrite : bool, default=False

    Returns
    -------
    pathlib.Path
    """
    cls_name = type(model).__name__
    if classes.get(cls_name) is not type(model):
        raise TypeError(f"{cls_name} is not a registered model class; cannot save it.")
    check_is_fitted(model)
    path = Path(path)
    if path.exists() and not (overwrite and (path / MODEL_FILE).is_file()):
        if path.is_dir() and (path / MODEL_FILE).is_file():
            what = "pass overwrite=True to replace the model saved there, or choose another path"
        else:
            what = "it is not a model directory to overwrite; choose another path"
        raise FileExistsError(f"{path} exists; {what}.")
    arrays: dict[str, np.ndarray] = {}
    params, dropped = _split(model.get_params(deep=False), "param", arrays)
    in_state = getattr(model, "_state_attributes", ())
    fitted_items = {
        k: v
        for k, v in vars(model).items()
        if k.endswith("_") and not k.startswith("_") and k not in in_state
    }
    if "feature_names_in_" in fitted_items:  # strings: kept in the JSON, as a list
        fitted_items["feature_names_in_"] = [str(n) for n in fitted_items["feature_names_in_"]]
    fitted, unsaved = _split(fitted_items, "fitted", arrays)
    if unsaved:
        raise TypeError(f"fitted attributes {unsaved} of {cls_name} cannot be saved")
    state, state_arrays = model._extra_state() if hasattr(model, "_extra_state") else ({}, {})
    pack(arrays, "state__", state_arrays)
    for key, arr in arrays.items():
        if arr.dtype.name not in _DTYPES:
            raise TypeError(f"array {key!r} has dtype {arr.dtype}; a model file holds {_DTYPES}")

    def fill(tmp: Path) -> None:
        np.savez(tmp / ARRAYS_FILE, **arrays)
        meta = {
            "schema_version": SCHEMA_VERSION,
            "class": cls_name,
            "daskgmm_version": __version__,
            "created": datetime.datetime.now(datetime.UTC).isoformat(),
            "params": params,
            "params_not_saved": dropped,
            "fitted": fitted,
            "state": state,
            "arrays": {
                k: {"shape": list(v.shape), "dtype": v.dtype.name} for k, v in arrays.items()
            },
            "arrays_sha256": hashlib.sha256((tmp / ARRAYS_FILE).read_bytes()).hexdigest(),
        }
        meta["metadata_sha256"] = metadata_checksum(meta)
        (tmp / MODEL_FILE).write_text(json.dumps(meta, indent=1, allow_nan=True))

    write_directory(path, fill)
    return path


def _read_meta(path: Path) -> dict:
    if path.exists() and not path.is_dir():
        raise ModelFileError(
            f"{path} is a file, not a model directory; a saved daskgmm model is a "
            f"directory holding {MODEL_FILE} and {ARRAYS_FILE}."
        )
    try:
        meta = json.loads((path / MODEL_FILE).read_text())
    except FileNotFoundError:
        raise ModelFileError(
            f"{path} holds no {MODEL_FILE}; is it a saved daskgmm model?"
        ) from None
    except OSError as exc:
        raise ModelFileError(f"{path / MODEL_FILE} cannot be read: {exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path / MODEL_FILE} is not valid JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise ModelFileError(f"{path / MODEL_FILE} does not hold a JSON object")
    version = meta.get("schema_version")
    if isinstance(version, bool) or version not in READABLE_SCHEMA_VERSIONS:
        raise ModelFileError(
            f"{path} has model schema version {version!r}; this daskgmm "
            f"({__version__}) reads versions {READABLE_SCHEMA_VERSIONS}. Refit or "
            "save it again with a matching daskgmm."
        )
    if version >= 2 and meta.get("metadata_sha256") != metadata_checksum(meta):
        raise ModelFileError(
            f"{path / MODEL_FILE} does not match its own checksum (metadata_sha256): it "
            "was edited or damaged; save the model again."
        )
    for key, kind in (("params", dict), ("fitted", dict), ("state", dict), ("arrays", dict)):
        if not isinstance(meta.get(key), kind):
            raise ModelFileError(f"{path / MODEL_FILE}: {key!r} is missing or malformed")
    return meta


def read_metadata(path: PathLike) -> dict:
    """The metadata (``model.json``) of a saved model, its schema version checked.

    Reads no arrays: use :func:`load` to check a model whole.

    Parameters
    ----------
    path : str or os.PathLike
        A model directory.

    Returns
    -------
    dict
        ``schema_version``, ``class``, ``daskgmm_version``, ``created``,
        ``params``, ``params_not_saved``, ``fitted`` (scalar fitted attributes,
        among them ``training_data_``, the training data's fingerprint),
        ``state``, ``arrays`` (name -> shape and dtype), ``arrays_sha256`` and
        (schema version 2) ``metadata_sha256``.

    Raises
    ------
    ModelFileError
        If ``path`` holds no model metadata of a readable schema version, or the
        metadata do not match their checksum.

    Examples
    --------
    >>> import numpy as np
    >>> from daskgmm import GaussianMixture
    >>> from daskgmm.store import read_metadata
    >>> X = np.random.default_rng(0).normal(size=(200, 2))
    >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
    >>> meta = read_metadata(gm.save("model"))
    >>> meta["class"], meta["params"]["n_components"]
    ('GaussianMixture', 2)
    """
    return _read_meta(readable_directory(path) or Path(path))


def _read_arrays(path: Path, meta: dict) -> dict:
    data = (path / ARRAYS_FILE).read_bytes() if (path / ARRAYS_FILE).is_file() else None
    if data is None:
        raise ModelFileError(f"{path} holds no {ARRAYS_FILE}")
    if hashlib.sha256(data).hexdigest() != meta.get("arrays_sha256"):
        raise ModelFileError(
            f"{path / ARRAYS_FILE} does not match the checksum in {MODEL_FILE}: the model "
            "files were modified or mixed up; save the model again."
        )
    check_manifest_sizes(meta["arrays"], meta, path)
    check_npz_headers(data, meta["arrays"], path / ARRAYS_FILE)
    try:
        with np.load(path / ARRAYS_FILE, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except ValueError as exc:  # object arrays need pickle: refused
        raise ModelFileError(f"{path / ARRAYS_FILE} cannot be read safely: {exc}") from None
    manifest = meta["arrays"]
    if set(arrays) != set(manifest):
        raise ModelFileError(
            f"{path}: arrays {sorted(arrays)} do not match the manifest {sorted(manifest)}"
        )
    for key, arr in arrays.items():
        want = manifest[key]
        if (
            not isinstance(want, dict)
            or list(arr.shape) != want.get("shape")
            or arr.dtype.name != want.get("dtype")
            or arr.dtype.name not in _DTYPES
        ):
            raise ModelFileError(
                f"{path}: array {key!r} is {arr.dtype}{list(arr.shape)}, manifest says {want}"
            )
    return arrays


def load(path, classes: dict[str, type]):
    """Load a model saved by :func:`save`.

    Parameters
    ----------
    path : str or os.PathLike
        A model directory.
    classes : dict
        Class name -> class of the models it may hold.

    Returns
    -------
    estimator
        Of the class that was saved, fitted; array-valued constructor parameters
        restored, parameters that could not be saved (e.g. a RandomState) left at
        their defaults.

    Raises
    ------
    ModelFileError
        If the directory is not a model of a known class and schema version, or its
        files were modified.
    """
    path = readable_directory(path) or Path(path)
    meta = _read_meta(path)
    cls = classes.get(meta.get("class"))
    if cls is None:
        raise ModelFileError(
            f"{path} holds a model of class {meta.get('class')!r}; this daskgmm knows "
            f"{sorted(classes)}."
        )
    try:
        validate_parameters(meta["params"])
    except (TypeError, ValueError) as exc:
        raise ModelFileError(
            f"{path / MODEL_FILE} holds a parameter out of range: {exc} The estimator "
            "would refuse it; save the model again from a valid one."
        ) from None
    arrays = _read_arrays(path, meta)
    groups: dict[str, dict] = {"param": {}, "fitted": {}, "state": {}}
    for key, arr in arrays.items():
        prefix, _, name = key.partition("__")
        if prefix not in groups or not name:
            raise ModelFileError(f"{path}: unexpected array {key!r}")
        groups[prefix][name] = arr
    params = {**meta["params"], **groups["param"]}
    try:
        model = cls(**params)
    except TypeError as exc:
        raise ModelFileError(f"{path}: parameters do not fit {cls.__name__}: {exc}") from None
    fitted = {**meta["fitted"], **groups["fitted"]}
    bad = [name for name in fitted if not name.endswith("_") or name.startswith("_")]
    if bad:
        raise ModelFileError(f"{path}: {bad} are not fitted attribute names")
    names = fitted.get("feature_names_in_")
    if names is not None:
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ModelFileError(f"{path}: feature_names_in_ should be a list of strings")
        fitted["feature_names_in_"] = np.asarray(names, dtype=object)
    for name, value in fitted.items():
        setattr(model, name, value)
    check_mixture(model, path)
    if hasattr(model, "_restore_extra_state"):
        model._restore_extra_state(meta["state"], groups["state"])
    elif meta["state"] or groups["state"]:
        raise ModelFileError(f"{path}: {cls.__name__} has no extra state to restore")
    return model
