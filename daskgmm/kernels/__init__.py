"""The numerical core: numpy and scipy (numba for the compiled E-step), never dask,
zarr, xarray or distributed.

============================  =====================================================
``params``                    every estimator parameter's constraint
``checks``                    data, weights, initial parameters, fitted state (with
                              scikit-learn's validators, the one import beyond scipy)
``nan_policy``                what rows with NaN/inf do, in fitting and predicting
``scale``                     data too large for float64's squares, named with the cure
``covariance``                the shape table and precision algebra per covariance type
``density``                   log-densities of row blocks (numpy), softmax
``quadratic``                 the 'full'/'tied' E-step as two matrix products
``responsibilities``          what assigns rows to components in a pass
``moments``                   centred second moments of a block
``stats``                     sufficient statistics and their associative merge
``blocks``                    one block of rows -> statistics, row-major numpy kernels
``compiled``                  the GIL-free numba kernel: a chunk in cache-sized tiles
``tiles``                     feature maps per covariance type for it, its statistics
``estep``                     one chunk's fused E-step: rows -> statistics
``answers``                   per-row answers: predict, predict_proba, score_samples
``mstep``                     maximum-likelihood M-step from statistics
``priors``                    variational priors: checked, data defaults from moments
``variational``               variational M-step, E-step terms and lower bound
``sampling``                  samples drawn from a fitted mixture
``devices``                   which array namespace a chunk lives in (CuPy, ...)
``xp_density``, ``xp_estep``  the E-step on non-numpy chunks (array API)
``xp_answers``                per-row answers on non-numpy chunks
============================  =====================================================

Imports point down this table's reverse order: ``answers`` uses ``estep``'s switch
and ``tiles``; ``estep`` uses ``tiles`` (which
loads ``compiled``, and numba with it, on the first compiled E-step), ``blocks``,
``stats``, ``responsibilities``, ``quadratic`` and ``density``; nothing here imports
another layer of daskgmm but ``daskgmm.errors``.
"""
