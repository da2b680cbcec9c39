"""Lazy imports of zarr and xarray: the io layer loads them only when it reads or writes."""

from __future__ import annotations


def _zarr():
    import zarr

    return zarr


def _xarray():
    import xarray

    return xarray
