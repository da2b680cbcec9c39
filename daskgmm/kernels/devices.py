"""Where a chunk's rows live: numpy on the host, or another array namespace (a GPU's).

numpy chunks take the numpy and compiled kernels; any other array that the
array API recognises (CuPy on a GPU, ``array-api-strict`` in the tests) takes
the array-namespace kernels (:mod:`daskgmm.kernels.xp_estep`,
:mod:`daskgmm.kernels.xp_answers`), which keep the rows where they are and bring
only small results to the host.  This module imports numpy alone: the
``array-api-compat`` package is imported on the first non-numpy chunk, and CuPy
only by :func:`to_device` (the estimators' ``device='cuda'``), so that
``import daskgmm`` never imports either.
"""

from __future__ import annotations

import numpy as np


def _compat():
    """The ``array_api_compat`` package (imported on first use)."""
    import array_api_compat

    return array_api_compat


def namespace(x):
    """The array namespace of a non-numpy array, or None for numpy (and non-arrays).

    Parameters
    ----------
    x : object

    Returns
    -------
    module or None
        ``array_api_compat``'s namespace of ``x`` (e.g. its CuPy wrapper), None
        when the numpy kernels serve ``x``.
    """
    if isinstance(x, np.ndarray | np.generic):
        return None
    compat = _compat()
    if not compat.is_array_api_obj(x) or compat.is_numpy_array(x):
        return None
    if compat.is_dask_array(x):
        return None
    return compat.array_namespace(x)


def device_of(x):
    """The device an array lives on (``array_api_compat.device``)."""
    return _compat().device(x)


def host_dtype(dtype) -> np.dtype:
    """The numpy dtype of a namespace's dtype (CuPy's are numpy's; others by name)."""
    try:
        return np.dtype(dtype)
    except TypeError:
        return np.dtype(str(dtype).rsplit(".", 1)[-1])


def xp_dtype(xp, dtype):
    """The namespace's dtype of a numpy dtype, e.g. ``xp.float64``."""
    return getattr(xp, np.dtype(dtype).name)


def to_host(x) -> np.ndarray:
    """A numpy copy of an array of any namespace (numpy arrays as they are).

    Parameters
    ----------
    x : array
        numpy, CuPy, PyTorch or any array-API array with a CPU device.

    Returns
    -------
    ndarray
    """
    if isinstance(x, np.ndarray):
        return x
    compat = _compat()
    if compat.is_cupy_array(x):
        return x.get()
    if compat.is_torch_array(x):
        return x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except (TypeError, RuntimeError, ValueError):
        info = compat.array_namespace(x).__array_namespace_info__()
        cpu = [d for d in info.devices() if "cpu" in str(d).lower()]
        if not cpu:
            raise
        return np.asarray(x.to_device(cpu[0]))


def _to_cuda(x, index: int):
    import cupy

    with cupy.cuda.Device(index):
        return cupy.asarray(x)


#: Device kind -> mover(array, index) -> the array on that device; ``device='cuda:1'``
#: is kind 'cuda', index 1.  (Tests put a stand-in here to run the plumbing without a GPU.)
MOVERS = {"cuda": _to_cuda}


def check_device(device) -> None:
    """Raise unless ``device`` is None, 'cuda' or 'cuda:N'.

    Raises
    ------
    TypeError, ValueError
    """
    if device is None:
        return
    if not isinstance(device, str):
        raise TypeError(f"device must be None or a string such as 'cuda', got {device!r}.")
    kind, _, index = device.partition(":")
    if kind not in MOVERS or (index and not index.isdigit()):
        raise ValueError(
            f"device must be None (leave the chunks where they are) or one of "
            f"{[*MOVERS]} (optionally ':N', the device's number), got {device!r}."
        )


def to_device(x, device: str):
    """``x`` (a numpy array or any array) moved to ``device`` ('cuda' or 'cuda:N').

    Parameters
    ----------
    x : array
    device : str

    Returns
    -------
    array
        A CuPy array for 'cuda'.
    """
    kind, _, index = device.partition(":")
    return MOVERS[kind](x, int(index or 0))


def empty_like_chunks(meta, shape: tuple, dtype):
    """An empty array of ``shape`` in the namespace and on the device of ``meta``
    (numpy for numpy or no ``meta``): the ``meta`` of a dask array of results."""
    xp = None if meta is None else namespace(meta)
    if xp is None:
        return np.empty(shape, dtype)
    return xp.empty(shape, dtype=xp_dtype(xp, dtype), device=device_of(meta))
