"""Calibration statistics, views and "gramian" scores of selective (Mamba) layers at Mamba-2.8B shapes.

Synthetic scan inputs (Δ_t = softplus(δ_t) with δ_t around softplus⁻¹(0.01), u_t, B_t, C_t standard normal,
A = −(1, …, N) per channel: the S4D-real initialisation Mamba uses) for ``--layers`` layers of d_inner channels
and N states, ``--tokens`` calibration tokens per layer in sequences of ``--seq-len``, are streamed through
:class:`ssmtools.selective.SelectiveStats`; then the ``"bias"``, ``"averaged"`` and ``"frozen"`` views and the
``"gramian"`` criterion's per-state scores (channel sums, LAMP) are computed. Time per layer (the synthetic data's
generation is timed apart: in a real calibration it is the model's forward pass), total, and peak memory
(``tracemalloc`` for NumPy, ``torch.cuda.max_memory_allocated`` on GPU, max RSS of the process) are recorded.

The previous ``update()`` (before the (G, N, c) layout) is timed on the first ``--previous-layers`` layers, interleaved
with the current one, for their ratio. The reference, in the same run and on the first layer, is the per-token
two-loop recurrence the library used
before (forward loop for h², backward loop for q); the scores' relative difference and time ratio are recorded.

Run: ``python benchmarks/bench_selective.py`` (Mamba-2.8B: 64 layers, d_inner 5120, N 16, 2048 tokens;
``--quick``: 4 layers, 256 tokens); ``--backend torch [--device cuda] [--dtype float32]``. Writes
``benchmarks/results/selective.md`` and ``selective.json`` (``--name`` changes the file name).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, machine, markdown_table, write_results  # noqa: E402

from ssmtools.pruning.normalize import lamp_normalize  # noqa: E402
from ssmtools.selective import (  # noqa: E402
    ScanInputs,
    SelectiveParams,
    SelectiveStats,
    averaged_view,
    bias_view,
    frozen_view,
)


def synthetic_params(d_inner: int, N: int, rng: np.random.Generator) -> SelectiveParams:
    """A Mamba-1 mixer with the arrays the views read (A, D, Δ bias); projections are zero-size stand-ins."""
    A = -np.broadcast_to(np.arange(1.0, N + 1), (d_inner, N)).copy()
    dt = np.exp(rng.uniform(np.log(1e-3), np.log(1e-1), d_inner))
    tiny = np.zeros((1, d_inner))
    return SelectiveParams(
        "mamba",
        A,
        np.ones(d_inner),
        np.zeros((2 * d_inner, 1)),
        None,
        np.zeros((d_inner, 4)),
        None,
        tiny,
        None,
        N,
        x_proj=np.zeros((1 + 2 * N, d_inner)),
        dt_proj_w=np.zeros((d_inner, 1)),
        dt_proj_b=dt + np.log(-np.expm1(-dt)),  # softplus⁻¹(dt)
    )


def synthetic_params2(d_inner: int, N: int, rng: np.random.Generator, head_dim: int = 64) -> SelectiveParams:
    """A Mamba-2 mixer (one group, heads of ``head_dim`` channels, one A per head); zero-size projections."""
    H = d_inner // head_dim
    dt = np.exp(rng.uniform(np.log(1e-3), np.log(1e-1), H))
    return SelectiveParams(
        "mamba2",
        -rng.uniform(1.0, 16.0, H),
        np.ones(H),
        np.zeros((2 * d_inner + 2 * N + H, 1)),
        None,
        np.zeros((d_inner + 2 * N, 4)),
        None,
        np.zeros((1, d_inner)),
        None,
        N,
        dt_bias=dt + np.log(-np.expm1(-dt)),  # softplus⁻¹(dt)
        norm_w=np.ones(d_inner),
    )


def synthetic_sequence(p: SelectiveParams, T: int, rng: np.random.Generator) -> ScanInputs:
    """Scan inputs of one sequence of T tokens (float64); Δ_t per head for Mamba-2."""
    d, N, P = p.d_inner, p.d_state, p.head_dim
    dt = p.bias_step()[::P]
    bias = dt + np.log(-np.expm1(-dt))
    delta = np.repeat(np.log1p(np.exp(bias + 0.5 * rng.standard_normal((T, d // P)))), P, axis=1)
    u = rng.standard_normal((T, d))
    B, C = rng.standard_normal((T, 1, N)), rng.standard_normal((T, 1, N))
    return ScanInputs(u, delta, B, C, u)


def reference_energies(p: SelectiveParams, sequences: list[ScanInputs]) -> tuple[np.ndarray, np.ndarray]:
    """Mean h² and mean q by the previous per-token two-loop recurrence (one group)."""
    A = p.channel_A()
    h2s, qss, tokens = np.zeros(A.shape), np.zeros(A.shape), 0
    for s in sequences:
        T = s.u.shape[0]
        h = np.zeros(A.shape)
        for t in range(T):
            h = np.exp(s.delta[t][:, None] * A) * h + (s.delta[t] * s.u[t])[:, None] * s.B[t, 0]
            h2s += h * h
        q = np.zeros(A.shape)
        for t in range(T - 1, -1, -1):
            if t + 1 < T:
                q *= np.exp(2 * s.delta[t + 1][:, None] * A)
            q += s.C[t, 0] ** 2
            qss += q
        tokens += T
    return h2s / tokens, qss / tokens


def _torch():
    import torch

    return torch


def previous_energies(
    A: np.ndarray, delta: np.ndarray, u: np.ndarray, B: np.ndarray, C: np.ndarray, backend: str, device: Any, dtype: str
) -> tuple[np.ndarray, np.ndarray]:
    """``ssmtools.selective._energies`` before the (G, N, c) layout (kept verbatim to time old vs new in one run)."""
    x = delta * u
    exp: Any = np.exp
    if backend == "torch":
        torch = _torch()
        kind = torch.float64 if dtype == "float64" else torch.float32
        A, delta, x, B, C = (torch.as_tensor(a).to(device=device, dtype=kind) for a in (A, delta, x, B, C))
        exp = torch.exp
    state: list[Any] = [A * 0 for _ in range(4)]  # NumPy arrays or torch tensors
    h, h2, w, qs = state
    for t0 in range(0, delta.shape[0], 8):
        decay = exp(delta[t0 : t0 + 8, ..., None] * A)
        decay2 = decay * decay
        drive = x[t0 : t0 + 8, ..., None] * B[t0 : t0 + 8]
        c2 = C[t0 : t0 + 8] ** 2
        if backend == "torch":
            one = torch.ones((), dtype=h.dtype, device=h.device)
            for i in range(decay.shape[0]):  # fused updates, one pass over (G, c, N) each (elementwise aliasing)
                torch.addcmul(drive[i], h, decay[i], out=h)
                h2.addcmul_(h, h)
                torch.addcmul(one, w, decay2[i], out=w)
                qs.addcmul_(w, c2[i].expand_as(w))
        else:
            tmp = np.empty_like(h)
            for i in range(decay.shape[0]):
                h *= decay[i]
                h += drive[i]
                h2 += np.multiply(h, h, out=tmp)
                w *= decay2[i]
                w += 1.0
                qs += np.multiply(w, c2[i], out=tmp)
    if backend == "torch":
        return h2.double().cpu().numpy(), qs.double().cpu().numpy()
    return h2, qs


def previous_update(stats: SelectiveStats, p: SelectiveParams, s: ScanInputs, options: dict) -> None:
    """``SelectiveStats.update`` as it was before (einsum for Σ Δ·B, :func:`previous_energies`), whole sequence."""
    T, G = s.u.shape[0], stats.n_groups
    A = p.channel_A().reshape(G, -1, stats.d_state)
    delta, u = s.delta.reshape(T, G, -1), s.u.reshape(T, G, -1)
    stats.sum_delta += s.delta.sum(0)
    stats.sum_delta_b += np.einsum("tgc,tgn->gcn", delta, s.B).reshape(stats.sum_delta_b.shape)
    stats.sum_c += np.broadcast_to(s.C.sum(0)[:, None, :], A.shape).reshape(stats.sum_c.shape)
    backend, device, dtype = options.get("backend", "numpy"), options.get("device"), options.get("dtype", "float64")
    h2, qs = previous_energies(A, delta, u, s.B[:, :, None, :], s.C[:, :, None, :], backend, device, dtype)
    stats.sum_h2 += h2.reshape(stats.sum_h2.shape)
    stats.sum_q += qs.reshape(stats.sum_q.shape)
    stats.sample(s, T)  # reservoir sampling, unchanged


def time_previous(p: SelectiveParams, sequences: list[ScanInputs], options: dict) -> tuple[float, float]:
    """Wall and CPU seconds of the previous ``update()`` over one layer's sequences."""
    start, cpu = time.perf_counter(), time.process_time()
    stats = SelectiveStats(p.d_inner, p.d_state)
    for s in sequences:
        previous_update(stats, p, s, options)
    return time.perf_counter() - start, time.process_time() - cpu


def views_and_scores(p: SelectiveParams, stats: SelectiveStats) -> np.ndarray:
    """The three views and the "gramian" criterion's normalised per-state scores (channel sums, LAMP)."""
    bias_view(p)
    averaged_view(p, stats)
    frozen_view(p, *stats.samples[0])
    return lamp_normalize(stats.gramian_scores.sum(0))


def main(argv: list[str] | None = None) -> list[dict]:
    """Run the benchmark and write its results.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    list of dict
        One row per layer.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=64)
    parser.add_argument("--kind", choices=("mamba", "mamba2"), default="mamba", help="mamba2: one A per head of 64")
    parser.add_argument("--d-inner", type=int, default=5120)
    parser.add_argument("--d-state", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=2048)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--backend", default="numpy")
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default="float64")
    parser.add_argument("--reference", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--previous-layers", type=int, default=4, help="layers also timed with the previous update()")
    parser.add_argument("--torch-threads", type=int, default=1, help="torch.set_num_threads (CPU backend)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--name", default="selective")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.layers, args.tokens = 4, 256
    if args.backend == "torch":
        import torch

        torch.set_num_threads(args.torch_threads)
    options = {} if args.backend == "numpy" else {"backend": args.backend, "device": args.device, "dtype": args.dtype}
    rng = np.random.default_rng(0)
    rows, summary = [], {}
    for layer in range(args.layers):
        start = time.perf_counter()
        p = (synthetic_params if args.kind == "mamba" else synthetic_params2)(args.d_inner, args.d_state, rng)
        lengths = [args.seq_len] * (args.tokens // args.seq_len) + [args.tokens % args.seq_len]
        sequences = [synthetic_sequence(p, T, rng) for T in lengths if T]
        row: dict = {"layer": layer, "generate_s": time.perf_counter() - start}
        traced = layer == 0 and args.backend == "numpy"
        if traced:
            tracemalloc.start()
        if layer < args.previous_layers and layer % 2:  # previous update() first on odd layers (order effects)
            row["previous_stats_s"], row["previous_stats_cpu_s"] = time_previous(p, sequences, options)
        start, cpu = time.perf_counter(), time.process_time()
        stats = SelectiveStats(p.d_inner, p.d_state)
        for s in sequences:
            stats.update(p, s, **options)
        row["stats_s"], row["stats_cpu_s"] = time.perf_counter() - start, time.process_time() - cpu
        if layer < args.previous_layers and not layer % 2:
            row["previous_stats_s"], row["previous_stats_cpu_s"] = time_previous(p, sequences, options)
        start = time.perf_counter()
        scores = views_and_scores(p, stats)
        row["views_scores_s"] = time.perf_counter() - start
        row["layer_s"] = row["stats_s"] + row["views_scores_s"]
        row["layer_cpu_s"] = time.process_time() - cpu
        if traced:
            row["peak_traced_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
        if layer == 0 and args.reference:
            start = time.perf_counter()
            h2, q = reference_energies(p, sequences)
            summary["reference_stats_s"] = time.perf_counter() - start
            summary["speedup_vs_reference"] = summary["reference_stats_s"] / row["stats_s"]
            ref_scores = lamp_normalize(np.sqrt(h2 * q).sum(0))
            summary["max_rel_diff_energy"] = float(
                max(
                    np.max(np.abs(stats.input_energy - h2) / np.abs(h2)),
                    np.max(np.abs(stats.output_energy - q) / np.abs(q)),
                )
            )
            summary["max_abs_diff_scores"] = float(np.max(np.abs(scores - ref_scores)))
            summary["same_ranking"] = bool(np.array_equal(np.argsort(scores), np.argsort(ref_scores)))
        rows.append(row)
        print(row, flush=True)
    input_mib = sum(s.u.nbytes + s.delta.nbytes + s.B.nbytes + s.C.nbytes for s in sequences) / 2**20
    summary.update(
        kind=args.kind,
        layers=args.layers,
        d_inner=args.d_inner,
        d_state=args.d_state,
        tokens=args.tokens,
        seq_len=args.seq_len,
        backend=args.backend,
        device=args.device,
        dtype=args.dtype,
        total_s=float(sum(r["layer_s"] for r in rows)),
        mean_layer_s=float(np.mean([r["layer_s"] for r in rows])),
        total_cpu_s=float(sum(r["layer_cpu_s"] for r in rows)),
        torch_threads=args.torch_threads if args.backend == "torch" else None,
        generate_total_s=float(sum(r["generate_s"] for r in rows)),
        stats_state_mib=5 * args.d_inner * args.d_state * 8 / 2**20,
        inputs_per_layer_mib=input_mib,
        peak_traced_mib=rows[0].get("peak_traced_mib"),
        max_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )
    compared = [r for r in rows if "previous_stats_s" in r]
    if compared:
        summary["previous_layers"] = len(compared)
        summary["previous_stats_s"] = float(sum(r["previous_stats_s"] for r in compared))
        summary["new_stats_s_same_layers"] = float(sum(r["stats_s"] for r in compared))
        summary["speedup_vs_previous_update"] = summary["previous_stats_s"] / summary["new_stats_s_same_layers"]
        summary["cpu_speedup_vs_previous_update"] = sum(r["previous_stats_cpu_s"] for r in compared) / sum(
            r["stats_cpu_s"] for r in compared
        )
    summary["extrapolated_64_layers_s"] = summary["mean_layer_s"] * 64
    try:
        import torch

        if args.device and torch.cuda.is_available() and str(args.device).startswith("cuda"):
            summary["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    except ImportError:  # pragma: no cover
        pass
    print(summary, flush=True)
    columns = [
        ("layer", "layer", "d"),
        ("stats s", "stats_s", ".3f"),
        ("previous update s", "previous_stats_s", ".3f"),
        ("views + scores s", "views_scores_s", ".3f"),
        ("layer s", "layer_s", ".3f"),
        ("layer CPU s", "layer_cpu_s", ".3f"),
        ("synthetic data s", "generate_s", ".3f"),
        ("peak traced MiB", "peak_traced_mib", ".1f"),
    ]
    keys = [
        ("kind, layers × d_inner × N", f"{args.kind}, {args.layers} × {args.d_inner} × {args.d_state}"),
        ("tokens per layer (sequence length)", f"{args.tokens} ({args.seq_len})"),
        (
            "backend / device / dtype (torch threads)",
            f"{args.backend} / {args.device or 'cpu'} / {args.dtype} ({summary['torch_threads']})",
        ),
        ("total (stats + views + scores)", f"{summary['total_s']:.1f} s"),
        ("total CPU time of the process over those steps", f"{summary['total_cpu_s']:.1f} s"),
        ("mean per layer", f"{summary['mean_layer_s']:.3f} s"),
        ("64 layers, extrapolated from the mean", f"{summary['mean_layer_s'] * 64:.1f} s"),
        ("synthetic data generation (not counted)", f"{summary['generate_total_s']:.1f} s"),
        ("statistics state per layer (5 arrays d_inner×N float64)", f"{summary['stats_state_mib']:.1f} MiB"),
        ("one layer's synthetic inputs (u, Δ, B, C)", f"{input_mib:.1f} MiB"),
        ("peak traced memory, layer 0 (NumPy)", f"{summary['peak_traced_mib'] or float('nan'):.1f} MiB"),
        ("max RSS of the process", f"{summary['max_rss_mib']:.0f} MiB"),
    ]
    if compared:
        keys.append(
            (
                f"previous update() vs this one, stats of layers 0–{len(compared) - 1} (interleaved)",
                f"{summary['previous_stats_s']:.2f} s vs {summary['new_stats_s_same_layers']:.2f} s "
                f"({summary['speedup_vs_previous_update']:.2f}×; CPU time "
                f"{summary['cpu_speedup_vs_previous_update']:.2f}×)",
            )
        )
    if "cuda_peak_mib" in summary:
        keys.append(("CUDA peak allocated", f"{summary['cuda_peak_mib']:.1f} MiB"))
    if "reference_stats_s" in summary:
        keys += [
            ("previous two-loop recurrence, layer 0 stats", f"{summary['reference_stats_s']:.3f} s"),
            ("speed-up of stats vs previous", f"{summary['speedup_vs_reference']:.1f}×"),
            ("max relative difference of the energies", f"{summary['max_rel_diff_energy']:.1e}"),
            ("max abs difference of the LAMP scores", f"{summary['max_abs_diff_scores']:.1e}"),
            ("same state ranking", str(summary["same_ranking"])),
        ]
    table = "| quantity | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in keys)
    write_results(
        args.name,
        "Selective (Mamba) calibration statistics, views and gramian scores at scale",
        [("Summary", table), ("Per layer", markdown_table(columns, rows))],
        {"summary": summary, "rows": rows, "meta": machine()},
        out=args.out,
    )
    return rows


if __name__ == "__main__":
    main()
