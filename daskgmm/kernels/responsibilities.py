"""What assigns rows to components in one pass (numpy only).

Each kind is handed to :func:`daskgmm.kernels.estep.chunk_stats`, which asks it
``for_chunk(chunk_index)`` for a callable
``(xc, shift, start, stop, good, workspace) -> (resp (K, n), log-likelihoods or None)``:

- :class:`EStep`: posterior responsibilities under fixed parameters (an EM iteration);
- :class:`RandomResponsibilities`: uniform random draws, seeded per chunk
  (``init_params='random'``);
- :class:`GivenResponsibilities`: fixed in advance, e.g. k-means labels of a sample;
- :class:`OneComponent`: all rows in one component (the moments of the data).
"""

from __future__ import annotations

import numpy as np

from .density import LogDensity, Workspace, softmax_components


class EStep:
    """Posterior responsibilities under fixed parameters (the E-step).

    Parameters
    ----------
    log_density : LogDensity
        Prepared parameters including log-weights.
    compute_dtype : {'float64', 'float32'}
        The precision of the compiled kernel's products (statistics accumulate
        in float64 either way; the numpy kernels compute in float64).
    """

    def __init__(self, log_density: LogDensity, compute_dtype: str = "float64"):
        self.log_density = log_density
        self.compute_dtype = np.dtype(compute_dtype)
        self.covariance_type = log_density.covariance_type
        self.n_components = log_density.n_components

    def for_chunk(self, chunk_index: int) -> EStep:
        """The same E-step for every chunk."""
        return self

    def __call__(self, xc, shift, start, stop, good, workspace=None):
        """Responsibilities (K, n) and per-row log-likelihoods (n,) of centred rows."""
        workspace = workspace if workspace is not None else Workspace()
        wlp = self.log_density(xc, shift, workspace)
        resp = workspace.array("resp", (self.n_components, xc.shape[0]))
        return softmax_components(wlp, out=resp)


class RandomResponsibilities:
    """Uniform random responsibilities, reproducible per chunk (``init_params='random'``).

    Parameters
    ----------
    seed : int
    n_components : int
    covariance_type : str
    """

    def __init__(self, seed: int, n_components: int, covariance_type: str):
        self.seed = seed
        self.n_components = n_components
        self.covariance_type = covariance_type

    def for_chunk(self, chunk_index: int):
        """A generator of responsibilities for one chunk, seeded by its index."""
        rng = np.random.default_rng([self.seed, chunk_index])

        def draw(xc, shift, start, stop, good, workspace=None):
            resp = rng.uniform(size=(stop - start, self.n_components))
            resp /= resp.sum(axis=1, keepdims=True)
            return (resp if good is None else resp[good]).T, None

        return draw


class GivenResponsibilities:
    """Responsibilities fixed in advance, e.g. one-hot k-means labels of a sample.

    Parameters
    ----------
    resp : ndarray of shape (n, K)
    covariance_type : str
    """

    def __init__(self, resp: np.ndarray, covariance_type: str):
        self.resp = np.asarray(resp, dtype=np.float64)
        self.n_components = self.resp.shape[1]
        self.covariance_type = covariance_type

    def for_chunk(self, chunk_index: int) -> GivenResponsibilities:
        return self

    def __call__(self, xc, shift, start, stop, good, workspace=None):
        resp = self.resp[start:stop]
        return (resp if good is None else resp[good]).T, None


class OneComponent:
    """Every row wholly in one component: a pass then gives the moments of the rows.

    Parameters
    ----------
    covariance_type : {'full', 'diag'}
        'full' for the rows' covariance matrix, 'diag' for their variances.
    """

    n_components = 1

    def __init__(self, covariance_type: str):
        self.covariance_type = covariance_type

    def for_chunk(self, chunk_index: int) -> OneComponent:
        return self

    def __call__(self, xc, shift, start, stop, good, workspace=None):
        return np.ones((1, xc.shape[0])), None
