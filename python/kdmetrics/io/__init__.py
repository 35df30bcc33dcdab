"""Reading, writing and aligning prediction files."""

from kdmetrics.io.align import align_files, align_predictions
from kdmetrics.io.args import (
    add_mapping_arguments,
    load_files_from_args,
    load_from_args,
    mapping_kwargs,
)
from kdmetrics.io.predictions import (
    Predictions,
    check_aligned,
    checked_labels,
    ids_sha256,
    load_predictions,
    save_predictions,
)

__all__ = [
    "Predictions",
    "add_mapping_arguments",
    "align_files",
    "align_predictions",
    "check_aligned",
    "checked_labels",
    "ids_sha256",
    "load_files_from_args",
    "load_from_args",
    "load_predictions",
    "mapping_kwargs",
    "save_predictions",
]
