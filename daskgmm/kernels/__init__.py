"""The numerical core: numpy and scipy only, never dask, zarr, xarray or distributed.

============================  =====================================================
``params``                    every estimator parameter's constraint
``checks``                    data, weights, initial parameters, fitted state
``nan_policy``                what rows with NaN/inf do, in fitting and predicting
``covariance``                the shape table and precision algebra per covariance type
``density``                   log-densities of row blocks, softmax, per-row answers
``quadratic``                 the 'full'/'tied' E-step as two matrix products
``responsibilities``          what assigns rows to components in a pass
``moments``                   centred second moments of a block
``stats``                     sufficient statistics and their associative merge
``estep``                     one chunk's fused E-step: rows -> statistics
``mstep``                     maximum-likelihood M-step from statistics
============================  =====================================================

Imports point down this table's reverse order: ``estep`` uses ``stats``,
``moments``, ``responsibilities``, ``quadratic`` and ``density``; nothing here
imports another layer of daskgmm but ``daskgmm.errors``.
"""
