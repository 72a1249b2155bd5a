"""Calibration of selective (Mamba / Mamba-2) layers: run the real model on a user batch and collect statistics.

:func:`calibrate` registers a forward *pre*-hook on every mixer module (``transformers`` ``MambaMixer`` /
``Mamba2Mixer``, ``mambapy`` ``MambaBlock``) — the mixer's input is all it takes, so no reliance on a code path
inside the mixer (fused kernels, the removed ``slow_forward``) — recomputes Δ_t, B_t, C_t and u_t from the
mixer's parameters as read by the adapter (:func:`ssmtools.selective.scan_inputs`), and streams them into one
:class:`~ssmtools.selective.SelectiveStats` per layer (memory O(d_inner·N), ``max_tokens`` per layer). The first
sequence of every layer is checked against the module's own output, so a model whose mixer does something else
is refused instead of analysed wrongly. :func:`calibrated` gives the model with a chosen view;
:func:`evaluate_keep` the effect of keep masks on the batch (per-layer output error, next-token loss).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .adapters import flatten, read
from .errors import ArgumentError, ArgumentTypeError, FormatError
from .model import SSMLayer, SSMModel
from .norms import state_h2_norms, state_hinf_norms
from .selective import (
    SelectiveLayer,
    SelectiveParams,
    SelectiveStats,
    frozen_view,
    mixer_forward,
    scan_inputs,
    with_view,
)

__all__ = [
    "Calibration",
    "calibrate",
    "calibrated",
    "read_module",
    "module_for",
    "evaluate_keep",
    "LayerEffect",
    "state_statistics",
]

_CHECK_RTOL = 1e-3  # the module's float32 internals (Mamba-2's chunked scan) agree to ~1e-6


def read_module(module: Any) -> SSMModel:
    """The ``mamba`` / ``mamba2`` model of a torch module (its state dict; n_groups, ε, time_step_limit from its config).

    A Mamba-2 module's Δ clamp (``config.time_step_limit``) is not in its state dict: it is taken from the module
    here (a checkpoint file alone reads as unclamped unless ``time_step_limit=`` is set).

    Parameters
    ----------
    module : torch.nn.Module
        ``MambaForCausalLM``, ``MambaModel``, ``Mamba2ForCausalLM``, ``Mamba2Model`` or mambapy ``Mamba``.

    Returns
    -------
    SSMModel
    """
    if not hasattr(module, "state_dict") or not hasattr(module, "named_modules"):
        raise ArgumentTypeError(f"expected a torch module, got {type(module).__name__}")
    state = module.state_dict()
    config = getattr(module, "config", None)
    settings: dict[str, Any] = {}
    if config is not None and hasattr(config, "n_groups") and any(k.endswith("dt_bias") for k in state):
        settings = {"n_groups": int(config.n_groups), "norm_eps": float(config.layer_norm_epsilon)}
        settings["time_step_limit"] = tuple(float(v) for v in getattr(config, "time_step_limit", (0.0, float("inf"))))
    model = read(state, **settings)
    if model.family not in ("mamba", "mamba2"):
        raise FormatError(f"module {type(module).__name__} holds {model.family} layers, not Mamba / Mamba-2 mixers")
    return model


def _first_params(model: SSMModel) -> SelectiveParams:
    layer = next(iter(model.values()))
    if not isinstance(layer, SelectiveLayer) or layer.params is None:
        raise ArgumentError(f"layer {layer.name!r} is not a selective (Mamba) layer")
    return layer.params


def _hf_config(model: SSMModel, leaves: Mapping[str, Any], config_json: str | os.PathLike | None) -> Any:
    """A transformers config: ``config.json`` when given, else one inferred from the shapes."""
    import transformers

    cls: Any = transformers.MambaConfig if model.family == "mamba" else transformers.Mamba2Config
    if config_json is not None:
        with open(config_json, encoding="utf-8") as file:
            return cls(**{k: v for k, v in json.load(file).items() if k != "model_type"})
    first = _first_params(model)
    vocab = next(np.shape(v)[0] for k, v in leaves.items() if k.startswith("backbone.embedding"))
    common = dict(
        vocab_size=vocab, hidden_size=first.in_proj.shape[1], state_size=first.d_state,
        num_hidden_layers=len(model), conv_kernel=first.conv_w.shape[1], use_bias=first.in_bias is not None,
        use_conv_bias=first.conv_b is not None, tie_word_embeddings="lm_head.weight" not in leaves,
    )  # fmt: skip
    if model.family == "mamba":
        return cls(**common, intermediate_size=first.d_inner, time_step_rank=first.dt_rank)
    return cls(
        **common, expand=first.d_inner // first.in_proj.shape[1], num_heads=first.n_heads, head_dim=first.head_dim,
        n_groups=first.n_groups, layer_norm_epsilon=first.norm_eps, time_step_limit=first.dt_limit,
    )  # fmt: skip


def _tensors(state: Mapping[str, Any]) -> dict[str, Any]:
    """A flat state dict with torch tensors (files read as numpy arrays)."""
    import torch

    return {k: v if hasattr(v, "detach") else torch.as_tensor(np.asarray(v)) for k, v in flatten(state)[0].items()}


def module_for(model: SSMModel, *, config_json: str | os.PathLike | None = None) -> Any:
    """The original torch class of a loaded Mamba checkpoint, built and loaded with ``strict=True``.

    Hugging Face / mamba_ssm layouts (``backbone.…``) give ``MambaForCausalLM`` / ``Mamba2ForCausalLM``
    (``MambaModel`` / ``Mamba2Model`` without ``lm_head``), configured by ``config_json`` or, without it, by the
    shapes (settings not in the weights take the transformers defaults); the mambapy layout gives mambapy's ``Mamba``.

    Parameters
    ----------
    model : SSMModel
        A ``mamba`` / ``mamba2`` model (its ``params`` are loaded).
    config_json : path, optional
        The checkpoint's ``config.json``.

    Returns
    -------
    torch.nn.Module
        In float64, evaluation mode.
    """

    if model.family not in ("mamba", "mamba2"):
        raise ArgumentError(f"module_for builds Mamba models; this model is {model.family!r}")
    leaves = flatten(model.params)[0]
    if any(k.startswith("backbone.") for k in leaves):
        import transformers

        config = _hf_config(model, leaves, config_json)
        head = "lm_head.weight" in leaves or config.tie_word_embeddings
        name = ("Mamba" if model.family == "mamba" else "Mamba2") + ("ForCausalLM" if head else "Model")
        module = getattr(transformers, name)(config)
        state = dict(leaves) if head else {k[len("backbone.") :]: v for k, v in leaves.items()}
        if head and "lm_head.weight" not in state:  # tied: save_pretrained drops the duplicate
            state["lm_head.weight"] = next(v for k, v in leaves.items() if k.startswith("backbone.embedding"))
    elif model.family == "mamba":
        from mambapy.mamba import Mamba, MambaConfig  # type: ignore[import-untyped]

        first = _first_params(model)
        module = Mamba(
            MambaConfig(
                d_model=first.in_proj.shape[1], n_layers=len(model), d_state=first.d_state,
                expand_factor=first.d_inner // first.in_proj.shape[1], d_conv=first.conv_w.shape[1],
                dt_rank=first.dt_rank, bias=first.in_bias is not None, conv_bias=first.conv_b is not None,
            )
        )  # fmt: skip
        state = dict(leaves)
    else:
        raise FormatError("a Mamba-2 checkpoint without the backbone. prefix: only the Hugging Face layout is built")
    tensors = _tensors(state)
    module = module.double()  # before loading: a float64 checkpoint keeps its precision
    module.load_state_dict(tensors, strict=True)
    return module.eval()


@dataclass
class Calibration:
    """Statistics of every layer after :func:`calibrate`.

    Parameters
    ----------
    stats : dict[str, SelectiveStats]
        Layer name -> statistics.
    tokens : int
        Tokens seen per layer (≤ ``max_tokens``).
    """

    stats: dict[str, SelectiveStats]
    tokens: int


def _is_hf(module: Any) -> bool:
    """A ``transformers`` model (its config is a ``PretrainedConfig``), which takes ``input_ids=``/``inputs_embeds=``."""
    return callable(getattr(getattr(module, "config", None), "to_dict", None))


def _forward(module: Any, batch: Any) -> Any:
    import torch

    with torch.no_grad():
        if not _is_hf(module):
            return module(batch)
        if batch.dtype in (torch.int32, torch.int64):
            return module(input_ids=batch)
        return module(inputs_embeds=batch)


def _as_batch(inputs: ArrayLike, module: Any) -> Any:
    import torch

    array = np.asarray(inputs)
    if np.issubdtype(array.dtype, np.integer):
        if array.ndim == 1:
            array = array[None]
        if array.ndim != 2:
            raise ArgumentError(f"token ids must be (batch, T), got shape {array.shape}")
        return torch.as_tensor(array, dtype=torch.int64)
    if not np.issubdtype(array.dtype, np.floating) or array.ndim != 3:
        raise ArgumentError(
            f"calibration inputs must be token ids (batch, T) or embeddings (batch, T, d_model), got {array.dtype} "
            f"{array.shape}"
        )
    dtype = next(module.parameters()).dtype
    return torch.as_tensor(array).to(dtype)


def calibrate(
    module: Any,
    inputs: ArrayLike,
    *,
    model: SSMModel | None = None,
    max_tokens: int | None = 4096,
    batch_size: int = 8,
    n_samples: int = 16,
    progress: bool = False,
    seed: int = 0,
    backend: str = "numpy",
    device: Any = None,
    dtype: str = "float64",
) -> Calibration:
    """Run ``module`` on ``inputs`` and stream every mixer's Δ_t, B_t, C_t, u_t into statistics.

    Parameters
    ----------
    module : torch.nn.Module
        The real model (see :func:`read_module`).
    inputs : array_like
        Token ids ``(batch, T)`` (int) or embeddings ``(batch, T, d_model)`` (float).
    model : SSMModel, optional
        The model read from ``module``'s parameters (default :func:`read_module`).
    max_tokens : int or None
        Token budget per layer (sequences are consumed in order, the last one cut); None: all.
    batch_size : int
        Sequences per forward pass.
    n_samples : int
        Frozen tokens kept per layer (reservoir sampling).
    progress : bool
        Show a progress bar (rich).
    seed : int
        Seed of the reservoir sampling.
    backend : {"numpy", "torch"}
        Where the statistics are accumulated (:meth:`ssmtools.selective.SelectiveStats.update`); ``"torch"`` with
        ``dtype="float32"`` is the fast path for large models. The sums are kept in float64 either way.
    device : str or torch.device, optional
        Torch device of ``backend="torch"``.
    dtype : {"float64", "float32"}
        Precision of the per-token arithmetic.

    Returns
    -------
    Calibration
    """
    model = read_module(module) if model is None else model
    batch = _as_batch(inputs, module)
    if max_tokens is not None and (isinstance(max_tokens, bool) or int(max_tokens) < 1):
        raise ArgumentError(f"max_tokens={max_tokens!r} must be a positive integer or None")
    modules = dict(module.named_modules())
    missing = [name for name in model if name not in modules]
    if missing:
        raise ArgumentError(f"layers {missing[:3]} of the model are not submodules of {type(module).__name__}")
    stats = {
        name: SelectiveStats(layer.params.d_inner, layer.params.d_state, layer.params.n_groups, n_samples, seed)
        for name, layer in model.items()
        if isinstance(layer, SelectiveLayer) and layer.params is not None
    }
    checked: set[str] = set()
    handles = []

    def hook(name: str):
        params = model[name].params  # type: ignore[attr-defined]

        def pre(mod: Any, args: tuple, kwargs: dict) -> None:
            x = (args[0] if args else kwargs["hidden_states"]).detach().double().cpu().numpy()
            for sequence in x:
                left = None if max_tokens is None else int(max_tokens) - stats[name].tokens
                if left is not None and left <= 0:
                    return
                stats[name].update(
                    params, scan_inputs(params, sequence), left, backend=backend, device=device, dtype=dtype
                )

        def post(mod: Any, args: tuple, kwargs: dict, output: Any) -> None:
            if name in checked:
                return
            checked.add(name)
            x = (args[0] if args else kwargs["hidden_states"]).detach().double().cpu().numpy()[0]
            mine, theirs = mixer_forward(params, x), output.detach().double().cpu().numpy()[0]
            scale = max(float(np.abs(theirs).max()), 1e-30)
            if float(np.abs(mine - theirs).max()) > _CHECK_RTOL * scale:
                raise FormatError(
                    f"layer {name!r}: the module's output differs from the {model.family} recurrence ssmtools reads "
                    f"(max |Δ| = {np.abs(mine - theirs).max():.3g} vs output scale {scale:.3g}); the checkpoint or "
                    "the mixer is not the layout ssmtools supports (settings n_groups / norm_eps / time_step_limit?)"
                )

        return pre, post

    for name in stats:
        pre, post = hook(name)
        handles.append(modules[name].register_forward_pre_hook(pre, with_kwargs=True))
        handles.append(modules[name].register_forward_hook(post, with_kwargs=True))
    starts = range(0, int(batch.shape[0]), int(batch_size))
    try:
        if progress:
            from rich.progress import track

            starts = track(starts, description="calibrating")  # type: ignore[assignment]
        for start in starts:
            if max_tokens is not None and all(s.tokens >= max_tokens for s in stats.values()):
                break
            _forward(module, batch[start : start + int(batch_size)])
    finally:
        for handle in handles:
            handle.remove()
    return Calibration(stats, min((s.tokens for s in stats.values()), default=0))


def calibrated(model: SSMModel, calibration: Calibration, view: str = "averaged", *, sample: int = 0) -> SSMModel:
    """``model`` with every selective layer's ``system`` replaced by ``view`` and its statistics attached.

    Parameters
    ----------
    model : SSMModel
        A ``mamba`` / ``mamba2`` model.
    calibration : Calibration
        From :func:`calibrate`.
    view : {"bias", "frozen", "averaged"}
        The LTI view (docs/concepts/selective.md#views).
    sample : int
        The frozen token of view ``"frozen"``.

    Returns
    -------
    SSMModel
        Same adapter and parameters: ``apply(keep)`` writes pruned checkpoints as usual.
    """
    layers: dict[str, SSMLayer] = {}
    for name, layer in model.items():
        if not isinstance(layer, SelectiveLayer) or name not in calibration.stats:
            raise ArgumentError(f"layer {name!r} is not a calibrated selective layer")
        layers[name] = with_view(layer, view, calibration.stats[name], sample=sample)
    return replace(model, layers=layers)


@dataclass(frozen=True)
class LayerEffect:
    """What keep masks do on the calibration batch.

    Parameters
    ----------
    output_error : dict[str, float]
        Per layer, ‖y_pruned − y‖ / ‖y‖ of the mixer output on the original model's mixer inputs.
    loss : float or None
        Next-token cross-entropy of the pruned model (None for models without a language-model head).
    loss_before : float or None
        The same for the original model.
    """

    output_error: dict[str, float]
    loss: float | None
    loss_before: float | None


def _loss(module: Any, batch: Any) -> float | None:
    import torch

    if batch.dtype != torch.int64 or not _is_hf(module):
        return None
    with torch.no_grad():
        out = module(input_ids=batch, labels=batch)
    return None if getattr(out, "loss", None) is None else float(out.loss)


def evaluate_keep(module: Any, model: SSMModel, keep: Mapping[str, Any], inputs: ArrayLike) -> LayerEffect:
    """Per-layer output error and next-token loss of ``module`` with the states ``keep`` drops masked out.

    The masked model equals the physically pruned one (tests/adapters/test_mamba.py checks it), so this is the
    effect of the pruned checkpoint.

    Parameters
    ----------
    module : torch.nn.Module
        The original model (left unchanged).
    model : SSMModel
        Its ``mamba`` / ``mamba2`` model.
    keep : Mapping[str, array_like of bool]
        Keep masks (``plan.keep``).
    inputs : array_like
        Token ids or embeddings, as for :func:`calibrate`.

    Returns
    -------
    LayerEffect
    """
    import torch

    batch = _as_batch(inputs, module)
    pruned = copy.deepcopy(module)
    state = _tensors(model.apply(keep, mask=True).params)
    if "lm_head.weight" in pruned.state_dict() and "lm_head.weight" not in state:  # tied, dropped by the file
        state["lm_head.weight"] = next(v for k, v in state.items() if k.startswith("backbone.embedding"))
    pruned.load_state_dict(state, strict=True)
    mods, pmods = dict(module.named_modules()), dict(pruned.named_modules())
    captured: dict[str, tuple[Any, Any]] = {}
    handles = []
    for name in model:

        def post(mod: Any, args: tuple, kwargs: dict, output: Any, name: str = name) -> None:
            captured[name] = (args[0] if args else kwargs["hidden_states"], output)

        handles.append(mods[name].register_forward_hook(post, with_kwargs=True))
    try:
        _forward(module, batch)
    finally:
        for handle in handles:
            handle.remove()
    errors = {}
    with torch.no_grad():
        for name, (x, y) in captured.items():
            y_pruned = pmods[name](x)
            errors[name] = float(torch.linalg.norm(y_pruned - y) / torch.linalg.norm(y).clamp_min(1e-30))
    return LayerEffect(errors, _loss(pruned, batch), _loss(module, batch))


def state_statistics(layer: SelectiveLayer) -> dict[str, np.ndarray]:
    """Per (channel, state) statistics of a calibrated layer: energies and the frozen-token norms over the samples.

    Parameters
    ----------
    layer : SelectiveLayer
        From :func:`calibrated`.

    Returns
    -------
    dict of str to ndarray, each ``(d_inner, N)``
        ``input_energy``, ``output_energy``, ``gramian`` (docs/concepts/selective.md#empirical-gramians) and, over
        the frozen tokens, ``hinf_mean``, ``hinf_max``, ``hinf_q10``, ``hinf_q50``, ``hinf_q90`` and ``h2_mean``
        of every state's exact one-state H∞ / H2 norm.
    """
    if layer.stats is None or layer.params is None:
        raise ArgumentError(f"layer {layer.name!r} has no calibration statistics (use calibrated(...) first)")
    stats = layer.stats
    hinf = np.stack([state_hinf_norms(frozen_view(layer.params, *sample)) for sample in stats.samples])
    h2 = np.stack([state_h2_norms(frozen_view(layer.params, *sample)) for sample in stats.samples])
    q10, q50, q90 = np.quantile(hinf, [0.1, 0.5, 0.9], axis=0)
    return {
        "input_energy": stats.input_energy,
        "output_energy": stats.output_energy,
        "gramian": stats.gramian_scores,
        "hinf_mean": hinf.mean(0),
        "hinf_max": hinf.max(0),
        "hinf_q10": q10,
        "hinf_q50": q50,
        "hinf_q90": q90,
        "h2_mean": h2.mean(0),
    }
