"""Model files and checkpoints on disk: JSON plus ``.npz`` arrays, never pickle.

==================  ============================================================
``files``           directories written all at once (temporary sibling + rename)
``json_values``     numpy values to JSON; what JSON holds as is
``arrays``          named groups of arrays in one ``.npz``
``model_files``     save / load / read_metadata of fitted models, checksummed
``model_check``     the consistency check of a loaded mixture
``checkpoint``      a running fit's state, written after every step, resumed exactly
==================  ============================================================

This layer knows no estimator: ``save``/``load`` take a table of model classes.
"""

from ..errors import CheckpointMismatchError, ModelFileError
from .model_files import MODEL_FILE, metadata_checksum, read_metadata

__all__ = [
    "MODEL_FILE",
    "CheckpointMismatchError",
    "ModelFileError",
    "metadata_checksum",
    "read_metadata",
]
