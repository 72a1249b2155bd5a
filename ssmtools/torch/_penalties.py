"""Regularisers to add to a training loss: H∞, H2, Hankel tail and LAST sparsity of every SSM layer.

Each penalty takes a model (any ``torch.nn.Module`` that :func:`ssmtools.torch.systems` reads), a
:class:`TorchSSM`, or a mapping/sequence of them, computes one **term per system** — every system of every
layer's batch (an S4D layer of H channels gives H terms) — and reduces the terms with ``reduction``:
``"sum"`` (default), ``"mean"``, ``"max"`` or ``"none"`` (the 1-D tensor of terms, layer by layer in module
order). Typical use::

    loss = task_loss + 1e-3 * ssmtools.torch.hankel_nuclear_penalty(model, order=k)

Formulas and scales (docs/concepts/derivations.md#differentiable-norms): ``hinf_penalty`` ‖G‖∞ (a gain, same
units as the layer's output per input); ``h2_penalty`` ‖G‖²_H2 (an energy, squared so that it is smooth at
0); ``hankel_nuclear_penalty`` Σ_{j>k} σ_j, the Hankel tail: half of balanced truncation's error bound at order k
(2Σ_{j>k} σ_j) and at least σ_{k+1}, the error floor of every order-k approximation; ``last_sparsity_penalty`` Σ_i ŝ_i − 1
with ŝ the LAMP-normalised LAST scores, scale-free, in [0, H_n − 1] (0 when one state carries the layer).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import torch

from ..errors import ArgumentError, ArgumentTypeError, check_choice
from ._modules import systems
from ._norms import _hankel_tail, h2_squared, hinf_norm, last_scores
from ._system import TorchSSM
from ._warm import HinfTracker

Reduction = Literal["sum", "mean", "max", "none"]
Model = torch.nn.Module | TorchSSM | Mapping[str, TorchSSM] | Sequence[TorchSSM]


def _named_systems(model: Model) -> list[tuple[str, TorchSSM]]:
    """``(key, system)`` of every layer: module paths for a module or a mapping, positions for a sequence."""
    if isinstance(model, TorchSSM):
        return [("0", model)]
    if isinstance(model, torch.nn.Module):
        return list(systems(model).items())
    items = (
        [(str(k), v) for k, v in model.items()]
        if isinstance(model, Mapping)
        else [(str(i), v) for i, v in enumerate(model)]
        if isinstance(model, Sequence)
        else None
    )
    if not items or not all(isinstance(item, TorchSSM) for _, item in items):
        raise ArgumentTypeError(
            f"a penalty takes a torch.nn.Module, a TorchSSM or a non-empty mapping/sequence of TorchSSM, got "
            f"{type(model).__name__}"
        )
    return items


def _layout(sys: TorchSSM) -> tuple:
    """What two systems must share to be stacked into one batch: shapes, dtypes, device and conventions."""
    tensors = (sys.poles, sys.B, sys.C, sys.D)
    return (
        *(tuple(t.shape) for t in tensors),
        *(t.dtype for t in tensors),
        sys.poles.device,
        sys.dt,
        sys.output,
        sys.state_includes_input,
    )


def _stacked(named: list[tuple[str, TorchSSM]]) -> list[tuple[list[int], str, TorchSSM]]:
    """The layers grouped by :func:`_layout`, each group of several stacked along a new leading axis.

    A deep model's layers usually share one layout, so a penalty runs each of its torch operations once per
    group instead of once per layer (the per-operation overhead dominates at training-step sizes). Returns
    ``(positions, key, system)`` per group: the layers' positions in ``named``, the key of the group (the layer's
    own key for a group of one, the keys joined by ``"+"`` otherwise: a :class:`HinfTracker` remembers the
    group) and the system, whose first batch axis runs over the group's layers.
    """
    groups: dict[tuple, list[int]] = {}
    for position, (_, sys) in enumerate(named):
        groups.setdefault(_layout(sys), []).append(position)
    stacked = []
    for positions in groups.values():
        if len(positions) == 1:
            key, sys = named[positions[0]]
            stacked.append((positions, key, sys))
            continue
        members = [named[k][1] for k in positions]
        first = members[0]
        sys = TorchSSM(
            *(torch.stack([getattr(m, field) for m in members]) for field in ("poles", "B", "C", "D")),
            dt=first.dt,
            output=first.output,
            state_includes_input=first.state_includes_input,
        )
        stacked.append((positions, "+".join(named[k][0] for k in positions), sys))
    return stacked


def _per_layer(model: Model, term: Callable[[str, TorchSSM], torch.Tensor]) -> list[torch.Tensor]:
    """``term(key, system)`` of every layer, in layer order, evaluated once per stacked group (:func:`_stacked`)."""
    named = _named_systems(model)
    terms: list[torch.Tensor] = [torch.empty(0)] * len(named)
    for positions, key, sys in _stacked(named):
        value = term(key, sys)
        parts = [value] if len(positions) == 1 else list(value.unbind(0))
        for position, part in zip(positions, parts, strict=True):
            terms[position] = part
    return terms


def _strictly_proper(sys: TorchSSM, feedthrough: bool) -> TorchSSM:
    if feedthrough:
        return sys
    return TorchSSM(
        sys.poles,
        sys.B,
        sys.C,
        None,
        dt=sys.dt,
        output=sys.output,
        state_includes_input=sys.state_includes_input,
    )


def _reduce(terms: list[torch.Tensor], reduction: Reduction) -> torch.Tensor:
    check_choice("reduction", reduction, ("sum", "mean", "max", "none"))
    flat = torch.cat([t.reshape(-1) for t in terms])
    if reduction == "none":
        return flat
    if reduction == "sum":
        return flat.sum()
    return flat.mean() if reduction == "mean" else flat.max()


def hinf_penalty(
    model: Model,
    *,
    reduction: Reduction = "sum",
    feedthrough: bool = False,
    rtol: float = 1e-6,
    tracker: HinfTracker | None = None,
) -> torch.Tensor:
    """Layer H∞ norms ``‖G‖∞`` (envelope-theorem gradient at the certified peak), reduced.

    Parameters
    ----------
    model : torch.nn.Module, TorchSSM, or mapping/sequence of TorchSSM
        The layers to penalise.
    reduction : {"sum", "mean", "max", "none"}
        How the per-system terms combine.
    feedthrough : bool
        Include D (default ``False``: the state path ``G − D``, the part state pruning acts on).
    rtol : float
        Relative accuracy of the peak search (looser than :func:`ssmtools.hinf_norm`'s default: the
        gradient needs the peak frequency, not 8 digits of the value).
    tracker : HinfTracker, optional
        Warm start across the calls of a training loop (one tracker per model): each layer's previous peak is
        refined locally and re-certified every ``tracker.certify_every`` calls, instead of a full search per
        call; :class:`HinfTracker` says what each call certifies. ``None``: a certified search every call.

    Returns
    -------
    torch.Tensor
        0-d, or 1-D for ``reduction="none"``; ``inf`` if a layer is unstable.
    """
    terms = _per_layer(
        model, lambda name, s: hinf_norm(_strictly_proper(s, feedthrough), rtol=rtol, tracker=tracker, name=name)
    )
    return _reduce(terms, reduction)


def h2_penalty(model: Model, *, reduction: Reduction = "sum", feedthrough: bool = False) -> torch.Tensor:
    """Squared layer H2 norms ``‖G‖²_H2`` (closed-form Gramian, exact gradient), reduced.

    Parameters
    ----------
    model : torch.nn.Module, TorchSSM, or mapping/sequence of TorchSSM
        The layers to penalise.
    reduction : {"sum", "mean", "max", "none"}
        How the per-system terms combine.
    feedthrough : bool
        Include D (default ``False``: the energy of the impulse response through the states).

    Returns
    -------
    torch.Tensor
        0-d, or 1-D for ``reduction="none"``; ``inf`` if a layer is unstable.
    """
    terms = _per_layer(model, lambda _, s: h2_squared(_strictly_proper(s, feedthrough)))
    return _reduce(terms, reduction)


def hankel_nuclear_penalty(
    model: Model, order: int = 0, *, horizon: int | float | None = None, reduction: Reduction = "sum"
) -> torch.Tensor:
    """Sum of the Hankel singular values beyond ``order``: ``Σ_{j>k} σ_j`` per system, reduced.

    Parameters
    ----------
    model : torch.nn.Module, TorchSSM, or mapping/sequence of TorchSSM
        The layers to penalise (asymptotically stable unless ``horizon`` is given).
    order : int
        k, the number of leading HSVs left free (of N = n, or 2n real dimensions for real-output layers,
        as in :func:`ssmtools.hankel_singular_values`). ``0`` penalises the whole Hankel nuclear norm.
    horizon : int or float, optional
        The finite-horizon HSVs over the model's sequence length L (what finite-horizon balanced truncation,
        ``last_prune(..., criterion_options={"horizon": L})``, truncates): defined for every pole, so a layer
        whose training moved a pole outside the unit circle (s5-pytorch does not constrain them) keeps a finite
        penalty and a gradient.
    reduction : {"sum", "mean", "max", "none"}
        How the per-system terms combine.

    Returns
    -------
    torch.Tensor
        0-d, or 1-D for ``reduction="none"``.

    Raises
    ------
    ArgumentError
        ``order`` is negative, or a layer is unstable and no ``horizon`` is given (its HSVs do not exist).
    """
    if isinstance(order, bool) or not isinstance(order, int) or order < 0:
        raise ArgumentError(f"order={order!r} must be an integer ≥ 0 (the number of leading HSVs kept free)")
    terms = _per_layer(model, lambda _, s: _hankel_tail(s, order, horizon))
    return _reduce(terms, reduction)


def last_sparsity_penalty(model: Model, *, reduction: Reduction = "sum", exact: bool = False) -> torch.Tensor:
    """``Σ_i ŝ_i − 1`` per system, ŝ the LAMP-normalised LAST scores: small when few states carry the layer.

    Parameters
    ----------
    model : torch.nn.Module, TorchSSM, or mapping/sequence of TorchSSM
        The layers to penalise.
    reduction : {"sum", "mean", "max", "none"}
        How the per-system terms combine.
    exact : bool
        Exact per-state H∞ (``"last-exact"``) instead of the single-pole bound (``"last"``).

    Returns
    -------
    torch.Tensor
        0-d, or 1-D for ``reduction="none"``.

    Notes
    -----
    ŝ_(k) = s_(k)/Σ_{j≥k} s_(j) over the ascending raw scores s = ‖G_i‖∞² (:func:`ssmtools.torch.last_scores`);
    the largest state has ŝ = 1, so the term is 0 when a single state carries all the importance and
    H_n − 1 ≈ ln n when all n states are equal. It does not depend on the scale of B or C, so it does not
    compete with the task loss by shrinking weights; it rewards a fast decay of the state importances, the
    property that lets LAST prune more states at equal error.
    """
    terms = _per_layer(model, lambda _, s: last_scores(s, exact=exact).sum(dim=-1) - 1.0)
    return _reduce(terms, reduction)
