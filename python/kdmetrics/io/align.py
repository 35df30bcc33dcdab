"""Alignment by id, only when asked for.

Files that describe the same examples must list them in the same order
(:func:`kdmetrics.io.predictions.check_aligned`). When a user says so
(``align="id"``, ``--align-by-id``), a file holding the same ids in another
order is reordered to the reference's order; a missing or extra id is an error
that names it. Nothing is ever reordered silently: the number of rows that
moved is returned (and printed by the command line).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from kdmetrics.errors import AlignmentError, InvalidArgumentError
from kdmetrics.io.predictions import Predictions, check_aligned

ALIGN_MODES = (None, "id")


def _label(p: Predictions) -> str:
    return p.path or p.name


def align_predictions(reference: Predictions, other: Predictions) -> tuple[Predictions, int]:
    """``other`` with its rows in ``reference``'s id order, and the number of
    rows whose position changed (0: returned as it was, nothing copied).

    Both need ids of the same kind (integers or strings) and the same id set:
    an id of one missing from the other is an error naming it. Per-row arrays
    (scores, labels, ids) are reordered; per-class arrays and metadata are
    kept. Labels are not compared here: :func:`check_aligned` does that next.
    """
    func = "align_predictions"
    ref_name, name = _label(reference), _label(other)
    for p, n in ((reference, ref_name), (other, name)):
        if p.ids is None:
            raise AlignmentError(f"{func}: {n} has no ids; cannot align by id")
    a, b = np.asarray(reference.ids), np.asarray(other.ids)
    kind_a, kind_b = (
        ("str" if a.dtype.kind in "US" else "int"),
        ("str" if b.dtype.kind in "US" else "int"),
    )
    if kind_a != kind_b:
        raise AlignmentError(
            f"{func}: {ref_name} has {kind_a} ids but {name} has {kind_b} ids; "
            "convert one so the same example has the same id"
        )
    # Positions of each reference id in `other`, via sorting (O(N log N)).
    order_b = np.argsort(b, kind="stable")
    sorted_b = b[order_b]
    pos = np.searchsorted(sorted_b, a)
    pos_clipped = np.minimum(pos, len(sorted_b) - 1)
    found = (pos < len(sorted_b)) & (sorted_b[pos_clipped] == a)
    if not found.all():
        i = int(np.flatnonzero(~found)[0])
        raise AlignmentError(
            f"{func}: id {a[i].item()!r} (position {i} of {ref_name}) is missing from {name} "
            f"({int((~found).sum())} missing)"
        )
    if len(b) != len(a):
        extra = np.setdiff1d(b, a)
        raise AlignmentError(
            f"{func}: id {extra[0].item()!r} of {name} is not in {ref_name} "
            f"({extra.size} extra; {len(b)} rows vs {len(a)})"
        )
    perm = order_b[pos_clipped]
    moved = int(np.count_nonzero(perm != np.arange(len(perm))))
    if moved == 0:
        return other, 0
    return (
        dataclasses.replace(
            other, logits=other.logits[perm], labels=other.labels[perm], ids=b[perm]
        ),
        moved,
    )


def align_files(
    files: Sequence[Predictions], align: str | None = None
) -> tuple[list[Predictions], list[int], str]:
    """Checks (and with ``align="id"`` first reorders) files against the first.

    Returns the files (reordered where needed), the number of rows moved in
    each (0 for the first) and the SHA-256 of the ids from
    :func:`check_aligned`. ``align=None`` reorders nothing: a different order
    is an error, as in :func:`check_aligned`.
    """
    func = "align_files"
    if align not in ALIGN_MODES:
        raise InvalidArgumentError(f"{func}: align must be None or 'id', got {align!r}")
    files = list(files)
    moved = [0] * len(files)
    if align == "id" and files:
        for i in range(1, len(files)):
            files[i], moved[i] = align_predictions(files[0], files[i])
    return files, moved, check_aligned(files)
