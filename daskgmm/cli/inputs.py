"""What the commands read and where they write: the input store, saved models, and
the checks on output paths made before anything is computed or written.

Bad input ends with a :class:`~daskgmm.errors.UsageError` (exit code 2) saying
what to change.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

from ..errors import UsageError
from .options import cli_words
from .output import PLOT_INSTALL_HINT


def open_input(args: argparse.Namespace, model=None):
    """The rows of ``INPUT`` as a ``daskgmm.io.RowView`` (lazy; nothing read yet).

    With a fitted ``model`` (predict, score) they are read as
    :func:`daskgmm.io.rows_for_model` reads them: on the model's feature
    dimension unless ``--feature-dim`` says otherwise, the labelled features in
    the model's order.

    Raises
    ------
    UsageError
        When the store is missing, or the variables / dimensions do not fit it.
    """
    from ..io import open_rows, rows_for_model

    variables = args.variable
    if variables is not None and len(variables) == 1:
        variables = variables[0]
    options = {"feature_dim": args.feature_dim, "fill_value": args.fill_value}
    try:
        if model is None:
            view = open_rows(args.input, variables, **options)
        else:
            view = rows_for_model(model, args.input, variables, **options)
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
        view = dataclasses.replace(view, data=data, sample_chunks=(data.chunks[0],))
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
        check_output_dir(path, what)
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


def check_output_dir(path: str | None, what: str) -> None:
    """A directory (a model, a Zarr store, a checkpoint) can be made at ``path``:
    the nearest existing folder above it is a writable directory (the writers make
    the folders in between).  Remote paths are left to their writer."""
    if path is None or ("://" in path and not path.startswith("file://")):
        return
    target = Path(path.removeprefix("file://")).expanduser()
    if target.exists():
        if not target.is_dir():
            raise UsageError(f"{what} {path!r} is a file; choose another path.")
        return
    above = next(p for p in target.absolute().parents if p.exists())
    if not above.is_dir():
        raise UsageError(f"{what} {path!r}: {str(above)!r} is a file, not a directory.")
    if not os.access(above, os.W_OK | os.X_OK):
        raise UsageError(f"{what} {path!r}: no permission to write in {str(above)!r}.")


def check_output_file(path: str | None, what: str) -> None:
    """A file (a plot, a curve, a report) can be written at ``path``: its directory
    exists and is writable, and the path is not a directory."""
    if path is None:
        return
    target = Path(path).expanduser()
    folder = target.absolute().parent
    if not folder.is_dir():
        raise UsageError(
            f"{what} {path!r}: the directory {str(folder)!r} does not exist; create it first."
        )
    if target.is_dir():
        raise UsageError(f"{what} {path!r} is a directory; give a file name.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{what} {path!r}: no permission to write in {str(folder)!r}.")


def check_plot_path(path: str | None, flag: str = "--plot") -> None:
    """A PNG/SVG/PDF path in an existing directory, and matplotlib importable."""
    if path is None:
        return
    from .. import plotting

    if Path(path).suffix.lower() not in plotting.FORMATS:
        raise UsageError(
            f"{flag} {path!r}: give a file name ending in one of {', '.join(plotting.FORMATS)}."
        )
    check_output_file(path, flag)
    if not plotting.available():
        raise UsageError(f"{flag} needs matplotlib: {PLOT_INSTALL_HINT}")
