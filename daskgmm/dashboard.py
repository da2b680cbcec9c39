"""The scheduler preload of daskgmm's dashboard page::

    dask scheduler --preload daskgmm.dashboard

Importing this module adds ``/individual-daskgmm``
(:mod:`daskgmm.cluster.dashboard`) to the dashboard of the schedulers this
process starts afterwards; clusters started by
:func:`daskgmm.cluster.start_local_cluster` have it without a preload.
"""

from .cluster.dashboard import ROUTE, dask_setup, register

register()

__all__ = ["ROUTE", "dask_setup", "register"]
