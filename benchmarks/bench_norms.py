"""Norms: ssmtools vs SLICOT AB13DD / AB13BD, side by side in one run.

Cases (defaults; see ``--help``):

1. Layer H∞ of random S5-style layers (P stored conjugate pairs, output 2Re, H inputs/outputs, diagonal
   D ≠ 0, state includes input) for P = H ∈ {16, 64, 128} and P = 256 / H = 128:
   ``hinf_norm(method="diagonal")`` vs AB13DD called directly (slycot, tol 1e-12) and through
   python-control ``control.norm(sys, "inf")`` (its default tol 1e-6). Two layer families: the S5
   initialisation of ``ssmtools.examples.random_s5_model`` (Re λ ∈ −[0.02, 0.5]: a few dominant
   resonances) and a HiPPO-like one with Re λ = −0.5 whose response is broadband (many bumps of
   similar height, the hard case for frequency-domain certification).
2. Layer H2 at 512 real states (P = 256, H = 128): closed-form Gramian vs AB13BD.
3. A whole model, 6 layers with P = 192, H = 512 (LRA image): all layer H∞ norms; AB13DD is timed on
   one layer and multiplied by 6 (stated in the table).
4. Per-state scores of a Mamba-2.8B-shaped state count, 64 layers × 5120 channels × 16 real poles.

Run: ``python benchmarks/bench_norms.py`` (or ``python benchmarks/run_all.py``); writes
``benchmarks/results/norms.md`` and ``norms.json``. ``--quick`` runs small sizes only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, best_time, interleaved_best_times, machine, markdown_table, write_results  # noqa: E402

import ssmtools as st  # noqa: E402
from ssmtools._backends import slycot as _slycot  # noqa: E402
from ssmtools.examples import random_s5_model, zoh_discretize  # noqa: E402
from ssmtools.systems import real_standard_form  # noqa: E402


def s5_layer(P: int, H: int, seed: int) -> st.DiagonalSSM:
    """``ssmtools.examples.random_s5_model`` layer (S5 initialisation ranges)."""
    return random_s5_model(n_layers=1, n_states=P, width=H, seed=seed)["layers_0"]


def broadband_layer(P: int, H: int, seed: int) -> st.DiagonalSSM:
    """HiPPO-N-like S5 layer: λ = −0.5 + jπk, steps log-uniform in [1e-3, 0.1], lecun-normal B̃, C̃, diagonal D."""
    rng = np.random.default_rng(seed)
    lam = -0.5 + 1j * np.pi * np.arange(P)
    step = np.exp(rng.uniform(np.log(1e-3), np.log(1e-1), P))
    B_tilde = (rng.standard_normal((P, H)) + 1j * rng.standard_normal((P, H))) / np.sqrt(2 * H)
    C_tilde = (rng.standard_normal((H, P)) + 1j * rng.standard_normal((H, P))) * np.sqrt(0.5 / P)
    lam_bar, B_bar = zoh_discretize(lam, B_tilde, step)
    return st.DiagonalSSM(
        lam_bar, B_bar, 2 * C_tilde, np.diag(rng.standard_normal(H)), dt=True, output="real", state_includes_input=True
    )


FAMILIES = {"S5 init": s5_layer, "HiPPO-like, broadband": broadband_layer}


def layer_hinf_row(family: str, P: int, H: int, *, seed: int, repeat: int, control_norm: bool) -> dict:
    import control

    layer = FAMILIES[family](P, H, seed)
    A, B, C, D = real_standard_form(layer)
    plant = control.ss(A, B, C, D, True)
    (t_ours, t_ref), (ours, ref) = interleaved_best_times(
        [
            lambda: st.hinf_result(layer, method="diagonal"),
            lambda: _slycot.linf_norm(A, B, C, D, discrete=True, tol=1e-12),
        ],
        repeat,
    )
    result = st.hinf_result(layer, method="diagonal")
    lower, upper = result.lower, result.upper
    row = {
        "family": family,
        "P": P,
        "H": H,
        "real_states": 2 * P,
        "time_ssmtools_s": t_ours,
        "time_ab13dd_s": t_ref,
        "speedup_vs_ab13dd": t_ref / t_ours,
        "hinf_ssmtools": float(ours.value),
        "hinf_ab13dd": float(ref[0]),
        "rel_diff_ab13dd": abs(float(ours.value) - ref[0]) / ref[0],
        "lower": float(lower),
        "upper": float(upper),
        "certificate_width": float(upper / lower - 1),
        "bracket_contains_ab13dd": bool(lower <= ref[0] * (1 + 1e-10) and upper >= ref[0] * (1 - 1e-10)),
        "peak_ssmtools": float(ours.peak),
        "peak_ab13dd": float(ref[1]),
    }
    if control_norm:
        t_control, value = best_time(lambda: control.norm(plant, "inf"), 1)
        row.update(
            time_control_norm_s=t_control,
            speedup_vs_control_norm=t_control / t_ours,
            rel_diff_control_norm=abs(float(ours.value) - float(value)) / float(value),
        )
    return row


def h2_row(P: int, H: int, *, seed: int, repeat: int) -> dict:
    layer = s5_layer(P, H, seed)
    A, B, C, D = real_standard_form(layer)
    (t_ours, t_ref), (ours, ref) = interleaved_best_times(
        [lambda: st.h2_norm(layer), lambda: _slycot.h2_norm(A, B, C, D, discrete=True)], repeat
    )
    t_torch, ours_torch = best_time(lambda: st.h2_norm(layer, backend="torch"), repeat)
    return {
        "P": P,
        "H": H,
        "real_states": 2 * P,
        "time_ssmtools_s": t_ours,
        "time_torch_cpu_s": t_torch,
        "time_ab13bd_s": t_ref,
        "speedup_vs_ab13bd": t_ref / t_ours,
        "h2_ssmtools": float(ours),
        "h2_ab13bd": float(ref),
        "rel_diff": abs(float(ours) - ref) / ref,
        "rel_diff_torch": abs(float(ours_torch) - ref) / ref,
    }


def whole_model_row(n_layers: int, P: int, H: int, *, seed: int) -> dict:
    layers = list(random_s5_model(n_layers=n_layers, n_states=P, width=H, seed=seed).values())
    model = st.DiagonalSSM(
        np.stack([lay.poles for lay in layers]),
        np.stack([lay.B for lay in layers]),
        np.stack([lay.C for lay in layers]),
        np.stack([lay.D for lay in layers]),
        dt=True,
        output="real",
        state_includes_input=True,
    )
    t_ours, values = best_time(lambda: st.hinf_norm(model, method="diagonal"), 1)
    A, B, C, D = real_standard_form(layers[0])
    t_one, ref = best_time(lambda: _slycot.linf_norm(A, B, C, D, discrete=True, tol=1e-12), 1)
    return {
        "layers": n_layers,
        "P": P,
        "H": H,
        "time_ssmtools_s": t_ours,
        "time_ab13dd_one_layer_s": t_one,
        "time_ab13dd_estimated_s": n_layers * t_one,
        "speedup_vs_ab13dd_estimated": n_layers * t_one / t_ours,
        "hinf_layer0_ssmtools": float(values[0]),
        "hinf_layer0_ab13dd": float(ref[0]),
        "rel_diff_layer0": abs(float(values[0]) - ref[0]) / ref[0],
        "hinf_all_layers": [float(v) for v in values],
    }


def mamba_scores_row(n_layers: int, channels: int, n_states: int, *, seed: int, repeat: int) -> dict:
    rng = np.random.default_rng(seed)
    a = -np.exp(rng.uniform(np.log(0.5), np.log(16.0), (n_layers, channels, n_states)))  # A_log init range
    step = np.exp(rng.uniform(np.log(1e-3), np.log(1e-1), (n_layers, channels, 1)))
    poles = np.exp(step * a)
    B = rng.standard_normal((n_layers, channels, n_states, 1)) * step[..., None]
    C = rng.standard_normal((n_layers, channels, 1, n_states))
    t_build, system = best_time(lambda: st.DiagonalSSM(poles, B, C, dt=True), 1)
    t_hinf, hinf = best_time(lambda: st.state_hinf_norms(system), repeat)
    t_h2, _ = best_time(lambda: st.state_h2_norms(system), repeat)
    t_torch, hinf_torch = best_time(lambda: st.state_hinf_norms(system, backend="torch"), repeat)
    direct = np.abs(B[..., 0]) * np.abs(C[..., 0, :]) / (1.0 - np.abs(poles))  # written out here, not the kernel
    return {
        "layers": n_layers,
        "channels": channels,
        "states_per_channel": n_states,
        "total_states": n_layers * channels * n_states,
        "time_build_s": t_build,
        "time_state_hinf_s": t_hinf,
        "time_state_h2_s": t_h2,
        "time_state_hinf_torch_cpu_s": t_torch,
        "max_rel_diff_direct": float(np.max(np.abs(hinf - direct) / direct)),
        "max_rel_diff_torch": float(np.max(np.abs(hinf_torch.numpy() - direct) / direct)),
    }


HINF_COLUMNS = [
    ("family", "family", ""),
    ("P", "P", "d"),
    ("H", "H", "d"),
    ("ssmtools [s]", "time_ssmtools_s", ".3f"),
    ("AB13DD [s]", "time_ab13dd_s", ".3f"),
    ("speed-up", "speedup_vs_ab13dd", ".1f"),
    ("control.norm [s]", "time_control_norm_s", ".3f"),
    ("speed-up vs control.norm", "speedup_vs_control_norm", ".1f"),
    ("‖G‖∞ ssmtools", "hinf_ssmtools", ".10g"),
    ("rel. diff AB13DD", "rel_diff_ab13dd", ".1e"),
    ("rel. diff control.norm", "rel_diff_control_norm", ".1e"),
    ("certificate upper/lower − 1", "certificate_width", ".1e"),
    ("bracket ∋ AB13DD", "bracket_contains_ab13dd", ""),
]
H2_COLUMNS = [
    ("P", "P", "d"),
    ("H", "H", "d"),
    ("real states", "real_states", "d"),
    ("ssmtools [s]", "time_ssmtools_s", ".4f"),
    ("torch CPU [s]", "time_torch_cpu_s", ".4f"),
    ("AB13BD [s]", "time_ab13bd_s", ".4f"),
    ("speed-up", "speedup_vs_ab13bd", ".1f"),
    ("rel. diff", "rel_diff", ".1e"),
    ("rel. diff torch", "rel_diff_torch", ".1e"),
]
MODEL_COLUMNS = [
    ("layers", "layers", "d"),
    ("P", "P", "d"),
    ("H", "H", "d"),
    ("ssmtools, all layers [s]", "time_ssmtools_s", ".2f"),
    ("AB13DD, one layer [s]", "time_ab13dd_one_layer_s", ".2f"),
    ("AB13DD ×layers (est.) [s]", "time_ab13dd_estimated_s", ".1f"),
    ("speed-up (est.)", "speedup_vs_ab13dd_estimated", ".1f"),
    ("rel. diff layer 0", "rel_diff_layer0", ".1e"),
]
SCORE_COLUMNS = [
    ("layers", "layers", "d"),
    ("channels", "channels", "d"),
    ("states", "states_per_channel", "d"),
    ("total states", "total_states", "d"),
    ("DiagonalSSM build [s]", "time_build_s", ".3f"),
    ("state_hinf_norms [s]", "time_state_hinf_s", ".3f"),
    ("state_h2_norms [s]", "time_state_h2_s", ".3f"),
    ("state_hinf_norms torch CPU [s]", "time_state_hinf_torch_cpu_s", ".3f"),
    ("max rel. diff vs direct formula", "max_rel_diff_direct", ".1e"),
]


def main(argv: list[str] | None = None) -> list[dict]:
    """Run all cases, print them, write ``benchmarks/results/norms.{md,json}``; returns the rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only (a smoke run, seconds)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="repeats for the cases that take < 1 s")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    quick = args.quick
    sizes = [(16, 16), (64, 64)] if quick else [(16, 16), (64, 64), (128, 128), (256, 128)]
    hinf_rows = []
    for family in FAMILIES:
        for P, H in sizes:
            if family != "S5 init" and P > 128:
                continue  # the broadband family at P = 256 alone would take minutes of AB13DD time
            repeat = args.repeat if P <= 64 else 1
            row = layer_hinf_row(family, P, H, seed=args.seed, repeat=repeat, control_norm=True)
            hinf_rows.append(row)
            print(
                f"H∞ {family:22s} P={P:3d} H={H:3d}: ssmtools {row['time_ssmtools_s']:.3f}s  AB13DD "
                f"{row['time_ab13dd_s']:.3f}s ({row['speedup_vs_ab13dd']:.1f}x)  control.norm "
                f"{row['time_control_norm_s']:.3f}s  rel diff {row['rel_diff_ab13dd']:.1e}  bracket ok "
                f"{row['bracket_contains_ab13dd']}",
                flush=True,
            )
    h2 = h2_row(*((64, 32) if quick else (256, 128)), seed=args.seed, repeat=args.repeat)
    print(
        f"H2 P={h2['P']} H={h2['H']}: ssmtools {h2['time_ssmtools_s']:.4f}s  AB13BD {h2['time_ab13bd_s']:.4f}s "
        f"({h2['speedup_vs_ab13bd']:.1f}x)  rel diff {h2['rel_diff']:.1e}",
        flush=True,
    )
    model = whole_model_row(*((2, 32, 64) if quick else (6, 192, 512)), seed=args.seed)
    print(
        f"model {model['layers']}x P={model['P']} H={model['H']}: ssmtools {model['time_ssmtools_s']:.2f}s  "
        f"AB13DD est. {model['time_ab13dd_estimated_s']:.1f}s  rel diff {model['rel_diff_layer0']:.1e}",
        flush=True,
    )
    scores = mamba_scores_row(*((4, 512, 16) if quick else (64, 5120, 16)), seed=args.seed, repeat=args.repeat)
    print(
        f"scores {scores['total_states']} states: state_hinf_norms {scores['time_state_hinf_s']:.3f}s  "
        f"state_h2_norms {scores['time_state_h2_s']:.3f}s  torch {scores['time_state_hinf_torch_cpu_s']:.3f}s",
        flush=True,
    )
    data = {
        "meta": machine(),
        "layer_hinf": hinf_rows,
        "layer_h2": [h2],
        "whole_model": [model],
        "state_scores": [scores],
        "quick": quick,
    }
    sections = [
        (
            'Layer H∞: hinf_norm(method="diagonal") vs AB13DD',
            "AB13DD called directly through slycot on the real standard form (tol 1e-12) and through "
            '`control.norm(sys, "inf")` (python-control, tol 1e-6), timed in the same run (best of '
            f"{args.repeat} interleaved runs for P ≤ 64, one run above). ssmtools certifies rtol = 1e-8.\n\n"
            + markdown_table(HINF_COLUMNS, hinf_rows),
        ),
        ("Layer H2 vs AB13BD", markdown_table(H2_COLUMNS, [h2])),
        ("Whole model: every layer H∞", markdown_table(MODEL_COLUMNS, [model])),
        (
            "Per-state scores, Mamba-shaped state count",
            "Real poles exp(Δa), SISO per channel; the reference is |b||c|/(1 − |λ|) written out in the script.\n\n"
            + markdown_table(SCORE_COLUMNS, [scores]),
        ),
    ]
    write_results("norms", "Norms: ssmtools vs SLICOT", sections, data, out=args.out)
    return hinf_rows + [h2, model, scores]


if __name__ == "__main__":
    main()
