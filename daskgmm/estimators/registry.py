"""The model classes a saved model may be, and saving and loading through ``daskgmm.store``.

``daskgmm.store`` knows no estimator; it is handed :data:`MODEL_CLASSES`, which
each estimator class joins with :func:`register_model`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .._typing import PathLike
from ..store import model_files

if TYPE_CHECKING:
    from .base import BaseGaussianMixture

#: Class name -> class of every estimator whose models can be saved and loaded.
MODEL_CLASSES: dict[str, type] = {}


def register_model(cls: type) -> type:
    """Class decorator: let :func:`load` rebuild instances of ``cls`` by its name."""
    MODEL_CLASSES[cls.__name__] = cls
    return cls


class StoredModel:
    """Mixin giving an estimator ``save(path)``."""

    def save(self, path: PathLike, *, overwrite: bool = False) -> Path:
        """Save the fitted model to the directory ``path``: JSON metadata and a
        ``.npz`` of arrays, checksummed, written atomically; never pickle.

        An existing model directory at ``path`` is replaced only with
        ``overwrite=True`` (anything else there is always refused), as the
        command line's ``--overwrite``.

        Examples
        --------
        >>> import numpy as np
        >>> from daskgmm import GaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> X = np.concatenate([rng.normal(-5, 1, (500, 2)), rng.normal(5, 1, (500, 2))])
        >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
        >>> path = gm.save("model")                  # a directory: model.json + arrays.npz
        >>> import daskgmm
        >>> same = daskgmm.load(path)
        >>> bool((same.predict(X) == gm.predict(X)).all())
        True
        """
        return model_files.save(self, path, MODEL_CLASSES, overwrite=overwrite)


def load(path: PathLike) -> BaseGaussianMixture:
    """Load a model saved by ``save``.

    Parameters
    ----------
    path : str or os.PathLike
        A model directory.

    Returns
    -------
    estimator
        Of the class that was saved, fitted; array-valued constructor parameters
        restored, parameters that could not be saved (e.g. a RandomState) left at
        their defaults.

    Raises
    ------
    daskgmm.errors.ModelFileError
        If the directory is not a model of a known class and schema version, or its
        files were modified.

    Examples
    --------
    >>> import numpy as np
    >>> from daskgmm import GaussianMixture
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(-5, 1, (500, 2)), rng.normal(5, 1, (500, 2))])
    >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
    >>> import daskgmm
    >>> loaded = daskgmm.load(gm.save("gm-model"))
    >>> type(loaded).__name__, loaded.means_.shape
    ('GaussianMixture', (2, 2))
    """
    return model_files.load(path, MODEL_CLASSES)
