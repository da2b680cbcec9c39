"""The consistency checks of a saved mixture: the sizes ``model.json`` implies and the
array headers (before any array is read), then the loaded parameters' shapes, dtypes,
finiteness and weights."""

from __future__ import annotations

import io
import math
import zipfile
from pathlib import Path

import numpy as np

from ..errors import ModelFileError
from ..kernels.covariance import SHAPES
from ..kernels.params import COVARIANCE_TYPES


def check_mixture(model, path: Path) -> None:
    """The fitted parameters are finite float64 arrays of consistent shapes."""
    cov_type = model.covariance_type
    if cov_type not in COVARIANCE_TYPES:
        raise ModelFileError(f"{path}: unknown covariance_type {cov_type!r}")
    means = getattr(model, "means_", None)
    if not isinstance(means, np.ndarray) or means.ndim != 2:
        raise ModelFileError(f"{path}: no fitted means_ of shape (n_components, n_features)")
    k, d = means.shape
    if k != model.n_components:
        raise ModelFileError(f"{path}: means_ has {k} rows but n_components={model.n_components}")
    cov_shape = SHAPES[cov_type].parameters(k, d)
    covariance_names = ("covariances_", "precisions_", "precisions_cholesky_")
    expected = {"weights_": (k,), "means_": (k, d), **dict.fromkeys(covariance_names, cov_shape)}
    for name, shape in expected.items():
        arr = getattr(model, name, None)
        if not isinstance(arr, np.ndarray) or arr.shape != shape or arr.dtype != np.float64:
            got = repr(arr) if not isinstance(arr, np.ndarray) else f"{arr.dtype}{arr.shape}"
            raise ModelFileError(f"{path}: {name} should be float64{shape}, got {got}")
        if not np.isfinite(arr).all():
            raise ModelFileError(f"{path}: {name} holds NaN or infinite values")
    if model.n_features_in_ != d:
        raise ModelFileError(f"{path}: n_features_in_ does not match means_")
    names = getattr(model, "feature_names_in_", None)
    if names is not None and len(names) != d:
        raise ModelFileError(f"{path}: feature_names_in_ has {len(names)} names for {d} features")
    if not math.isclose(float(model.weights_.sum()), 1.0, abs_tol=1e-8):
        raise ModelFileError(f"{path}: weights_ do not sum to 1")
    training_data = getattr(model, "training_data_", {})
    if not isinstance(training_data, dict):
        raise ModelFileError(f"{path}: training_data_ should be a JSON object (a fingerprint)")


def expected_shapes(meta: dict, path: Path) -> tuple[dict, int]:
    """What ``model.json`` implies for the arrays, read before any array is.

    Returns
    -------
    shapes : dict
        Array name -> shape, for the mixture's parameters (fitted and initial),
        from ``n_components``, ``n_features_in_`` and ``covariance_type``.
    limit : int
        The most elements any array of such a model holds (K * D * (D + 2)).

    Raises
    ------
    ModelFileError
        If those three are missing or invalid.
    """
    k = meta["params"].get("n_components")
    d = meta["fitted"].get("n_features_in_")
    for name, value in (("n_components", k), ("n_features_in_", d)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ModelFileError(f"{path}: {name} should be a positive integer, got {value!r}")
    cov_type = meta["params"].get("covariance_type")
    if cov_type not in COVARIANCE_TYPES:
        raise ModelFileError(f"{path}: unknown covariance_type {cov_type!r}")
    cov_shape = SHAPES[cov_type].parameters(k, d)
    shapes = {
        "fitted__weights_": (k,),
        "fitted__means_": (k, d),
        "param__weights_init": (k,),
        "param__means_init": (k, d),
        "param__precisions_init": cov_shape,
    }
    for name in ("covariances_", "precisions_", "precisions_cholesky_"):
        shapes[f"fitted__{name}"] = cov_shape
    return shapes, k * d * (d + 2)


def check_manifest_sizes(manifest: dict, meta: dict, path: Path) -> None:
    """Refuse a manifest whose arrays are not the sizes ``model.json`` implies."""
    shapes, limit = expected_shapes(meta, path)
    for key, want in manifest.items():
        shape = want.get("shape") if isinstance(want, dict) else None
        if not isinstance(shape, list) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape
        ):
            raise ModelFileError(f"{path}: the manifest's entry for {key!r} is malformed: {want}")
        if key in shapes and tuple(shape) != shapes[key]:
            raise ModelFileError(
                f"{path}: the manifest gives array {key!r} the shape {shape}; the model's "
                f"n_components, n_features_in_ and covariance_type make it {list(shapes[key])}"
            )
        if math.prod(shape) > limit:
            raise ModelFileError(
                f"{path}: the manifest gives array {key!r} the shape {shape}, more than the "
                f"{limit} values any array of this model holds"
            )


def check_npz_headers(data: bytes, manifest: dict, where: Path) -> None:
    """Compare every ``.npy`` header in the archive ``data`` with the manifest, and
    with the bytes that follow it, before numpy allocates anything."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = sorted(name.removesuffix(".npy") for name in archive.namelist())
            if members != sorted(manifest):
                raise ModelFileError(
                    f"{where}: arrays {members} do not match the manifest {sorted(manifest)}"
                )
            for info in archive.infolist():
                _check_member(archive, info, manifest, len(data), where)
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise ModelFileError(f"{where} is not a readable array archive: {exc}") from None


def _check_member(archive, info, manifest: dict, archive_size: int, where: Path) -> None:
    key = info.filename.removesuffix(".npy")
    want = manifest.get(key)
    if want is None or not info.filename.endswith(".npy"):
        raise ModelFileError(f"{where}: member {info.filename!r} is not in the manifest")
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version not in ((1, 0), (2, 0)):
            raise ModelFileError(f"{where}: array {key!r} has .npy format version {version}")
        read_header = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, _, dtype = read_header(member)
        header_size = member.tell()
    if dtype.hasobject:
        raise ModelFileError(
            f"{where} cannot be read safely: array {key!r} holds Python objects, which only "
            "pickle reads (never done here)"
        )
    if list(shape) != want["shape"] or dtype.name != want.get("dtype"):
        raise ModelFileError(
            f"{where}: array {key!r} is {dtype}{list(shape)} by its header, the manifest "
            f"says {want}"
        )
    size = header_size + math.prod(shape) * dtype.itemsize
    if info.file_size != size or info.file_size > archive_size:
        raise ModelFileError(
            f"{where}: array {key!r} should take {size} bytes by its header; the archive "
            f"holds {info.file_size}"
        )
