"""One BLAS thread for the certified H∞ engines and the host code of :mod:`ssmtools.torch` (threadpoolctl).

The certified diagonal H∞ (level-set eigenproblems, Gram eigenvalues at single frequencies) and AB13DD run many
LAPACK calls on matrices of a few hundred rows, one after another. OpenBLAS's worker threads gain nothing on such
calls and spin between them; on a 2-core machine with another process running, a 256×256 nonsymmetric
eigenproblem was measured 33× slower in wall time with OpenBLAS's two default threads than with one, and the
Hermitian top eigenpair 4.6× (docs/benchmarks.md, "analyze and prune"). :func:`one_blas_thread` limits the
BLAS libraries loaded by NumPy, SciPy and slycot to one thread while an engine runs and restores the previous
limits afterwards, so the caller's own NumPy code keeps its threads. Inside a torch training loop the same
spinning competes with torch's intra-op threads (the full certified search inside a step was 9× slower with
OpenBLAS's default threads), so :mod:`ssmtools.torch` uses it around its host code too. threadpoolctl is a core
dependency; in an environment without it the context changes nothing.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

_controller: list[Any] = []  # the threadpoolctl controller, built once the BLAS libraries are loaded


def one_blas_thread() -> AbstractContextManager[Any]:
    """A context in which the BLAS libraries loaded so far (NumPy's, SciPy's, slycot's) use one thread.

    Returns
    -------
    context manager
        ``threadpoolctl``'s limit (restored on exit), or a context that does nothing when threadpoolctl is not
        installed.
    """
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return nullcontext()
    if not _controller:  # the libraries are loaded first, so that the controller lists them (about 10 ms, once)
        import scipy.linalg  # noqa: F401

        try:
            import slycot  # noqa: F401  (bundles its own BLAS)
        except ImportError:  # pragma: no cover - slycot is a core dependency
            pass
        _controller.append(ThreadpoolController())
    return _controller[0].limit(limits=1, user_api="blas")
