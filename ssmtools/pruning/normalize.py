"""Layer-wise score normalisations shared by the pruning criteria (LAMP / LAST energy normalisation).

One place for the LAMP form used by ``"last"``, ``"last-official"``, ``"last-exact"``, ``"aire"`` and
``"lamp-magnitude"`` (docs/concepts/derivations.md#lamp; Lee et al., ICLR 2021, arXiv 2010.07611; Gwak et al., NeurIPS 2024,
arXiv 2411.02824).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from ..errors import ArgumentError, check_choice

__all__ = ["lamp_normalize", "check_scores"]


def check_scores(scores: ArrayLike, *, what: str = "scores") -> np.ndarray:
    """``scores`` as a float64 array, refusing NaN (a score must order the units) and negative values.

    Parameters
    ----------
    scores : array_like
        Raw scores of one layer's units; ``+inf`` is allowed (units that must stay).
    what : str
        Name used in error messages.

    Returns
    -------
    ndarray of float64, same shape
    """
    array = np.asarray(scores, dtype=float)
    if np.any(np.isnan(array)):
        raise ArgumentError(
            f"{what} contain {int(np.count_nonzero(np.isnan(array)))} NaN value(s); a score must order the states. "
            "Check the layer's parameters (ssmtools rejects NaN weights on load) or the custom criterion."
        )
    if np.any(array < 0):
        raise ArgumentError(
            f"{what} contain negative values (min {float(np.min(array)):.3g}); LAMP normalisation needs "
            "non-negative scores such as squared norms"
        )
    return array


def lamp_normalize(scores: ArrayLike, *, ties: Literal["equal", "stable-sort"] = "equal") -> np.ndarray:
    """LAMP / LAST normalisation of one layer: ``s_(k) / Σ_{j ≥ k} s_(j)`` over the ascending order.

    Parameters
    ----------
    scores : array_like, shape ``(n,)`` (or any shape, flattened)
        Non-negative raw scores of one layer (squared per-state norms for LAST); ``+inf`` allowed.
    ties : {"equal", "stable-sort"}
        ``"equal"``: equal raw scores get equal normalised scores (see Notes). ``"stable-sort"``: the
        released code's behaviour with a stable argsort — tied units get the values of their sorted
        positions, the lower index the smaller value (``[2, 2, 2] → [1/3, 1/2, 1]``).

    Returns
    -------
    ndarray of float64, same shape
        Normalised scores in [0, 1]. The largest finite score of the layer gets exactly 1.0.

    Notes
    -----
    Sort ascending, s_(1) ≤ … ≤ s_(n); the unit of rank k scores ``s_(k) / Σ_{j≥k} s_(j)`` (docs/concepts/derivations.md#lamp).
    Monotone non-decreasing in the raw score within a layer. Rules where the released LAST code is
    undefined or order-dependent (documented deviations):

    - **ties** (``ties="equal"``): equal raw scores get equal normalised scores, the value of the tied unit
      ranked *last* (the largest of the values the code's argsort could give; ``[2, 2, 2] → [1, 1, 1]``,
      while the code gives ``[1/3, 1/2, 1]`` with a stable sort). The plan then breaks the tie
      deterministically.
    - **zeros**: ``0 / 0`` (all remaining scores zero) gives 0, not NaN.
    - **inf** (unstable states scored ``inf`` by the exact criteria): kept as ``inf`` and left out of the
      sums, so the finite scores are normalised among themselves.

    Examples
    --------
    >>> lamp_normalize([4.0, 1.0, 3.0, 2.0]).round(6)  # docs/concepts/derivations.md#worked-example-e6, layer 1
    array([1.      , 0.1     , 0.428571, 0.222222])
    """
    check_choice("ties", ties, ("equal", "stable-sort"))
    raw = check_scores(scores)
    flat = raw.reshape(-1)
    out = np.full(flat.shape, np.inf)
    finite = np.isfinite(flat)
    values = flat[finite]
    if values.size:
        order = np.argsort(values, kind="stable")
        ascending = values[order]
        tail = np.cumsum(ascending[::-1])[::-1]  # Σ_{j ≥ k} s_(j)
        # ties: every member of a run of equal values takes the value of the run's last member
        if ties == "equal":
            run_last = np.searchsorted(ascending, ascending, side="right") - 1
        else:
            run_last = np.arange(ascending.size)
        normalized_sorted = np.divide(
            ascending[run_last], tail[run_last], out=np.zeros_like(ascending), where=tail[run_last] > 0
        )
        result = np.empty_like(values)
        result[order] = normalized_sorted
        out[finite] = result
    return out.reshape(raw.shape)
