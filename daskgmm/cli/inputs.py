"""What the commands read and where they write: the input store, saved models, and
the checks on output paths made before anything is computed or written.

Bad input ends with a :class:`~daskgmm.errors.UsageError` (exit code 2) saying
what to change.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UsageError
from .options import cli_words
from .output import PLOT_INSTALL_HINT


def open_input(args: argparse.Namespace):
    """The rows of ``INPUT`` as a ``daskgmm.io.RowView`` (lazy; nothing read yet).

    Raises
    ------
    UsageError
        When the store is missing, or the variables / dimensions do not fit it.
    """
    from ..io import RowView, open_rows

    variables = args.variable
    if variables is not None and len(variables) == 1:
        variables = variables[0]
    try:
        view = open_rows(
            args.input, variables, feature_dim=args.feature_dim, fill_value=args.fill_value
        )
    except FileNotFoundError:
        raise UsageError(
            f"INPUT {args.input!r}: no Zarr store there; check the path or URL "
            "(daskgmm make-data writes one)."
        ) from None
    except (ValueError, TypeError, KeyError) as exc:
        raise UsageError(f"INPUT {args.input!r}: {cli_words(str(exc))}") from None
    if view.n_samples == 0 or view.n_features == 0:
        raise UsageError(
            f"INPUT {args.input!r} gives {view.n_samples} rows of {view.n_features} features; "
            "choose a non-empty --variable (and --feature-dim)."
        )
    if args.chunk_rows is not None:
        if len(view.sample_dims) != 1:
            raise UsageError(
                f"--chunk-rows applies to tables; INPUT {args.input!r} has sample dimensions "
                f"{list(view.sample_dims)}: drop --chunk-rows (rows follow the storage chunks)."
            )
        data = view.data.rechunk({0: args.chunk_rows})
        view = RowView(
            data=data,
            sample_dims=view.sample_dims,
            sample_chunks=(data.chunks[0],),
            coords=view.coords,
            is_xarray=view.is_xarray,
            feature_names=view.feature_names,
            attrs=view.attrs,
            source=view.source,
        )
    return view


def describe_input(view) -> str:
    """'30,000 x 4 float32 rows in 6 chunks'."""
    return (
        f"{view.n_samples:,} x {view.n_features} {view.data.dtype} rows in "
        f"{len(view.data.chunks[0])} chunks"
    )


def load_model(path: str):
    """A saved model, checked whole.

    Raises
    ------
    UsageError
        If there is no model at ``path`` or it does not load.
    """
    from ..errors import ModelFileError
    from ..estimators import load
    from ..store import MODEL_FILE

    if not Path(path).exists() and not Path(path).with_name(f".{Path(path).name}.old").exists():
        raise UsageError(
            f"MODEL {path!r} does not exist; give a directory written by 'daskgmm fit --model DIR'."
        )
    if Path(path).is_dir() and not (Path(path) / MODEL_FILE).is_file():
        raise UsageError(
            f"MODEL {path!r} holds no {MODEL_FILE}; give a directory written by "
            "'daskgmm fit --model DIR'."
        )
    try:
        return load(path)
    except ModelFileError as exc:
        raise UsageError(f"MODEL {path!r} cannot be used: {exc}") from None


def check_feature_count(model, view, args: argparse.Namespace) -> None:
    """The input gives as many features as the model was fitted on."""
    if view.n_features != model.n_features_in_:
        chosen = f" (--variable {' --variable '.join(args.variable)})" if args.variable else ""
        raise UsageError(
            f"INPUT {args.input!r} gives {view.n_features} features per row{chosen}, but the "
            f"model was fitted on {model.n_features_in_}; choose the variables and "
            "--feature-dim it was fitted with (daskgmm info MODEL shows its training data)."
        )


#: Files that mark a directory as what an output option may replace.
_MARKERS = {"model": ("model.json",), "store": ("zarr.json", ".zgroup", ".zarray")}


def check_new_output(path: str, overwrite: bool, what: str, kind: str = "store") -> None:
    """Refuse to replace an existing output unless ``--overwrite``, and even then
    anything but an output of the same kind (a model directory, a Zarr store).

    Parameters
    ----------
    path : str
        The output path or URL (remote stores are left to their writer).
    overwrite : bool
    what : str
        The option naming the path, for messages.
    kind : {'store', 'model'}
    """
    if "://" in path and not path.startswith("file://"):
        return  # remote stores: the writer refuses an existing one itself
    target = Path(path.removeprefix("file://"))
    if not target.exists():
        return
    if not overwrite:
        raise UsageError(
            f"{what} {path!r} exists; pass --overwrite to replace it, or choose another path."
        )
    if not target.is_dir():
        raise UsageError(f"{what} {path!r} is a file; choose another path.")
    if any(target.iterdir()) and not any((target / m).is_file() for m in _MARKERS[kind]):
        name = "a saved model" if kind == "model" else "a Zarr store"
        raise UsageError(
            f"{what} {path!r} is a directory but not {name}; daskgmm does not replace it: "
            "choose another path."
        )


def check_plot_path(path: str | None, flag: str = "--plot") -> None:
    """A PNG/SVG/PDF path, and matplotlib importable."""
    if path is None:
        return
    from .. import plotting

    if Path(path).suffix.lower() not in plotting.FORMATS:
        raise UsageError(
            f"{flag} {path!r}: give a file name ending in one of {', '.join(plotting.FORMATS)}."
        )
    if not plotting.available():
        raise UsageError(f"{flag} needs matplotlib: {PLOT_INSTALL_HINT}")
