"""Independent references for the pruning tests, written from math.md §6–7 and model_formats.md §1.

Nothing here imports ssmtools: the released LAST / AIRE-Prune score and threshold formulas are
re-implemented on raw S5 flax parameter trees, and layers are simulated by their recurrence.
"""

from __future__ import annotations

import numpy as np


def s5_tree(rng, n_layers=2, P=6, H=4, *, bidirectional=False, stacked_c=False, scale_step=(-4.0, -1.0)):
    """A synthetic official-S5 (flax) parameter tree ``params/encoder/layers_{l}/seq/...``."""
    layers = {}
    for index in range(n_layers):
        seq = {
            "Lambda_re": -rng.uniform(0.05, 1.0, P),
            "Lambda_im": rng.uniform(-3.0, 3.0, P),
            "B": rng.normal(size=(P, H, 2)) / np.sqrt(H),
            "D": rng.normal(size=H),
            "log_step": rng.uniform(*scale_step, size=(P, 1)),
        }
        if bidirectional and stacked_c:
            seq["C"] = rng.normal(size=(H, 2 * P, 2))
        elif bidirectional:
            seq["C1"] = rng.normal(size=(H, P, 2))
            seq["C2"] = rng.normal(size=(H, P, 2))
        else:
            seq["C"] = rng.normal(size=(H, P, 2))
        layers[f"layers_{index}"] = {"seq": seq, "norm": {"scale": np.ones(H), "bias": np.zeros(H)}}
    return {"params": {"encoder": {"encoder": {"kernel": rng.normal(size=(3, H)), "bias": np.zeros(H)}, **layers}}}


def seq_layers(tree):
    """``[(name, seq dict)]`` of an S5 tree, in layer order."""
    encoder = tree["params"]["encoder"]
    names = sorted((k for k in encoder if k.startswith("layers_")), key=lambda k: int(k.split("_")[1]))
    return [(f"params/encoder/{name}/seq", encoder[name]["seq"]) for name in names]


def zoh(seq, step_rescale=1.0):
    """(λ̄, B̄, C̃ (H, P or 2P)) of one S5 layer, ZOH (model_formats.md §1)."""
    lam = seq["Lambda_re"] + 1j * seq["Lambda_im"]
    B = seq["B"][..., 0] + 1j * seq["B"][..., 1]
    step = step_rescale * np.exp(seq["log_step"][:, 0])
    lam_bar = np.exp(lam * step)
    B_bar = ((lam_bar - 1) / lam)[:, None] * B
    if "C1" in seq:
        C = np.concatenate([seq["C1"][..., 0] + 1j * seq["C1"][..., 1], seq["C2"][..., 0] + 1j * seq["C2"][..., 1]], 1)
    else:
        C = seq["C"][..., 0] + 1j * seq["C"][..., 1]
    return lam_bar, B_bar, C


def released_raw_scores(seq, *, kind="last", formula="released"):
    """The released LAST (math.md §6.1) / AIRE (§7) raw score of every stored state, written out literally."""
    lam_bar, B_bar, C = zoh(seq)
    P = lam_bar.shape[0]
    b2 = np.sum(np.abs(B_bar) ** 2, axis=1)
    r = np.abs(lam_bar)
    denom = (1 - r) ** 2 + 1e-8 if kind == "last" else (1 - r**2) + 1e-8
    if C.shape[1] == P:
        return np.sum(np.abs(C) ** 2, axis=0) * b2 / denom
    a = np.sqrt(np.sum(np.abs(C[:, :P]) ** 2, axis=0))
    b = np.sqrt(np.sum(np.abs(C[:, P:]) ** 2, axis=0))
    if formula == "released":
        numerator = (a + b) / 2 **2  # noqa: E225 - the released expression, precedence and all
    else:
        numerator = ((a + b) / 2) ** 2
    return numerator * b2 / denom


def released_lamp(raw):
    """sort / reversed cumsum reversed / scatter back by argsort (math.md §6.2), stable sort."""
    order = np.argsort(raw, kind="stable")
    ascending = raw[order]
    tail = np.cumsum(ascending[::-1])[::-1]
    out = np.empty_like(raw)
    out[order] = ascending / tail
    return out


def released_keep(scores_by_layer, ratio_percent):
    """Global threshold of math.md §6.3: K = max(int(N(100 − ratio)/100), 1), keep ⇔ score ≥ τ."""
    allscores = np.concatenate(scores_by_layer)
    K = max(int(allscores.size * (100 - ratio_percent) / 100), 1)
    tau = np.sort(allscores)[-K]
    return [s >= tau for s in scores_by_layer], tau


def simulate_s5(seq, u, *, conj_sym=True):
    """One S5 layer by its recurrence: x_k = λ̄x_{k−1} + B̄u_k, y_k = κ Re(C̃x_k) + D⊙u_k (+ backward scan)."""
    lam_bar, B_bar, C = zoh(seq)
    P = lam_bar.shape[0]
    kappa = 2.0 if conj_sym else 1.0
    L = u.shape[0]
    y = u * seq["D"]
    x = np.zeros(P, dtype=complex)
    for k in range(L):
        x = lam_bar * x + B_bar @ u[k]
        y[k] += kappa * (C[:, :P] @ x).real
    if C.shape[1] == 2 * P:
        x = np.zeros(P, dtype=complex)
        for k in range(L - 1, -1, -1):
            x = lam_bar * x + B_bar @ u[k]
            y[k] += kappa * (C[:, P:] @ x).real
    return y
