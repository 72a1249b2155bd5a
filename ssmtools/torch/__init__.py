"""Differentiable system norms, live-module views and regularisers in PyTorch (``import ssmtools.torch``).

- :class:`TorchSSM` — a diagonal system whose ``poles, B, C, D`` are tensors in the autograd graph;
- :func:`state_hinf_norms`, :func:`state_h2_norms`, :func:`h2_norm`, :func:`h2_squared`, :func:`hinf_norm`,
  :func:`hankel_singular_values`, :func:`last_scores`, :func:`aire_scores`, :func:`lamp_normalize` —
  differentiable, batched, DT and CT (docs/concepts/derivations.md#differentiable-norms);
- :func:`systems` — the layers of a live ``s5-pytorch``, ``LRU-pytorch`` or S4D module as ``TorchSSM`` whose
  gradients reach the module's own parameters (discretisation included);
- :func:`hinf_penalty`, :func:`h2_penalty`, :func:`hankel_nuclear_penalty`, :func:`last_sparsity_penalty` —
  regularisers to add to a training loss; :class:`HinfTracker` — warm-started H∞ peaks across training steps.

Needs PyTorch (``pip install "ssmtools[torch]"``); ``import ssmtools`` alone never imports torch.
"""

from ._modules import systems as systems
from ._norms import (
    aire_scores as aire_scores,
    h2_norm as h2_norm,
    h2_squared as h2_squared,
    hankel_singular_values as hankel_singular_values,
    hinf_norm as hinf_norm,
    lamp_normalize as lamp_normalize,
    last_scores as last_scores,
    response_at as response_at,
    state_h2_norms as state_h2_norms,
    state_hinf_norms as state_hinf_norms,
)
from ._penalties import (
    h2_penalty as h2_penalty,
    hankel_nuclear_penalty as hankel_nuclear_penalty,
    hinf_penalty as hinf_penalty,
    last_sparsity_penalty as last_sparsity_penalty,
)
from ._system import TorchSSM as TorchSSM
from ._warm import HinfTracker as HinfTracker

__all__ = [
    "TorchSSM",
    "systems",
    "state_hinf_norms",
    "state_h2_norms",
    "h2_norm",
    "h2_squared",
    "hinf_norm",
    "response_at",
    "hankel_singular_values",
    "lamp_normalize",
    "last_scores",
    "aire_scores",
    "hinf_penalty",
    "HinfTracker",
    "h2_penalty",
    "hankel_nuclear_penalty",
    "last_sparsity_penalty",
]
