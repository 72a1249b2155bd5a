"""Independent references for the pruning tests, written from math.md §6–7 and model_formats.md §1.

Nothing here imports ssmtools: the released LAST / AIRE-Prune score and threshold formulas are
re-implemented on raw S5 flax parameter trees (read and discretised, and simulated by their recurrence,
in ``tests/adapters/reference.py``).
"""

from __future__ import annotations

import numpy as np

from ..adapters.reference import s5_flax_discretize


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


def released_raw_scores(seq, *, kind="last", formula="released"):
    """The released LAST (math.md §6.1) / AIRE (§7) raw score of every stored state, written out literally."""
    lam_bar, B_bar, C = s5_flax_discretize(seq)
    P = lam_bar.shape[0]
    b2 = np.sum(np.abs(B_bar) ** 2, axis=1)
    r = np.abs(lam_bar)
    denom = (1 - r) ** 2 + 1e-8 if kind == "last" else (1 - r**2) + 1e-8
    if C.shape[1] == P:
        return np.sum(np.abs(C) ** 2, axis=0) * b2 / denom
    a = np.sqrt(np.sum(np.abs(C[:, :P]) ** 2, axis=0))
    b = np.sqrt(np.sum(np.abs(C[:, P:]) ** 2, axis=0))
    if formula == "released":
        numerator = (a + b) / 2**2  # noqa: E225 - the released expression, precedence and all
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
