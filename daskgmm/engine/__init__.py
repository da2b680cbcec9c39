"""The dask layer: graphs over row chunks, computed with the scheduler of the user's choice.

==============  ==============================================================
``rows``        data as row chunks for repeated passes (in-memory views, weights)
``samples``     N-D sample arrays as rows of features and back
``passes``      the ONE statistics pass (all chunks or a mini-batch) and row maps
``init``        initial parameters over chunks (sample-based, or one random pass)
``compute``     the one ``dask.compute``: BLAS threads, scheduler, lost scheduler
``progress``    progress of a fit on one terminal line
==============  ==============================================================

Chunk kernels come from :mod:`daskgmm.kernels`; distributed is reached only
through :mod:`daskgmm.cluster`.
"""
