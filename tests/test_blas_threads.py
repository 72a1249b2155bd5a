"""``_backends.threads.one_blas_thread``: one BLAS thread inside, the caller's limits restored outside."""

from __future__ import annotations

import numpy as np
import pytest

from ssmtools import DiagonalSSM, _hinf_diagonal, hinf_result
from ssmtools._backends import threads

threadpoolctl = pytest.importorskip("threadpoolctl")


def _blas_threads() -> set[int]:
    return {info["num_threads"] for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"}


def test_one_blas_thread_limits_every_blas_library_and_restores_the_limits():
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        with threads.one_blas_thread():
            assert _blas_threads() == {1}
        assert _blas_threads() == before


def test_hinf_result_runs_its_engine_with_one_blas_thread(monkeypatch):
    """Every engine call of ``hinf_result`` (here the diagonal one) sees one BLAS thread."""
    seen = []
    real = _hinf_diagonal.hinf_bracket

    def spy(*args, **kwargs):
        seen.append(_blas_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr("ssmtools._hinf_diagonal.hinf_bracket", spy)
    sys = DiagonalSSM(np.array([0.5, 0.9j]), np.ones((2, 1)), np.ones((1, 2)), dt=True, output="complex")
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        hinf_result(sys, method="diagonal")
    assert seen == [{1}]
