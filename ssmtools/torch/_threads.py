"""One BLAS thread for the host (NumPy/SciPy) code that :mod:`ssmtools.torch` runs inside a torch loop.

The certified H∞ routes run small LAPACK calls (level-set eigenproblems, SVDs) on the host between torch
operations. OpenBLAS's worker threads spin after each call while torch's intra-op threads run, and the two pools
compete for the same cores: on a 2-core machine the full certified search inside a training step was measured
9× slower with OpenBLAS's default threads than with one (docs/howto/regularise.md). These calls are small
(matrices of a few hundred rows), so one thread loses nothing; the limit applies only while ssmtools.torch's own
host code runs and is restored afterwards (threadpoolctl), so the user's NumPy code keeps its threads.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import scipy.linalg  # noqa: F401  (its BLAS is loaded before the controller lists the libraries)
from threadpoolctl import ThreadpoolController

_controller: ThreadpoolController | None = None


def one_blas_thread() -> AbstractContextManager[Any]:
    """A context in which the BLAS libraries loaded by NumPy and SciPy use one thread."""
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")
