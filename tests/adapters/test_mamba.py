"""Mamba / Mamba-2 adapters against the real packages (transformers, mambapy): detection, the recurrence written
here from the papers' formulas over the adapter's parameters vs each module's forward pass, look-alike refusals,
d_state pruning that reloads strictly into the original classes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ssmtools
from ssmtools.adapters import CapabilityError, detect_family
from ssmtools.calibration import calibrate, read_module
from ssmtools.errors import ArgumentError, FormatError
from ssmtools.selective import mixer_forward

transformers = pytest.importorskip("transformers")
mambapy_mamba = pytest.importorskip("mambapy.mamba")

D_MODEL, N, T = 16, 6, 9


def randomize(module, seed):
    """Random A_log, D and Δ biases (the inits are too regular to catch an index mix-up)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("A_log"):
                p.copy_(torch.rand(p.shape, generator=g, dtype=p.dtype) * 2 - 1)
            elif name.endswith(".D") or name.endswith("dt_bias") or name.endswith("dt_proj.bias"):
                p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


def hf_mamba(state_size=N, layers=2, seed=0):
    torch.manual_seed(seed)
    cfg = transformers.MambaConfig(
        vocab_size=40, hidden_size=D_MODEL, state_size=state_size, num_hidden_layers=layers, expand=2,
        conv_kernel=3, time_step_rank=3,
    )  # fmt: skip
    return randomize(transformers.MambaForCausalLM(cfg).double().eval(), seed)


def hf_mamba2(state_size=N, layers=2, seed=0, n_groups=2, **settings):
    torch.manual_seed(seed)
    cfg = transformers.Mamba2Config(
        vocab_size=40, hidden_size=D_MODEL, state_size=state_size, num_hidden_layers=layers, expand=2,
        conv_kernel=3, n_groups=n_groups, num_heads=4, head_dim=8, chunk_size=4, **settings,
    )  # fmt: skip
    return randomize(transformers.Mamba2ForCausalLM(cfg).double().eval(), seed)


def mambapy_model(d_state=N, seed=0):
    torch.manual_seed(seed)
    cfg = mambapy_mamba.MambaConfig(d_model=D_MODEL, n_layers=2, d_state=d_state, d_conv=3, pscan=True)
    return randomize(mambapy_mamba.Mamba(cfg).double().eval(), seed)


def mixer_io(model, mixer, x):
    """The module's own output for mixer input ``x``."""
    with torch.no_grad():
        return mixer(torch.as_tensor(x)).numpy()


# ----------------------------------------------------------------------------------- the recurrence, from the papers
def silu(x):
    return x / (1 + np.exp(-x))


def softplus(x):
    return np.log1p(np.exp(x))


def conv_causal(w, b, x):
    """Depthwise causal convolution: out[t, c] = b[c] + Σ_k w[c, k]·x[t − (K−1) + k, c] (zero before t = 0)."""
    T_, K = x.shape[0], w.shape[1]
    out = np.zeros_like(x) + (0 if b is None else b)
    for t in range(T_):
        for k in range(K):
            s = t - (K - 1) + k
            if s >= 0:
                out[t] += w[:, k] * x[s]
    return out


def scan_mamba1(p, x, f32=()):
    """Mamba-1 mixer per Gu & Dao (2023), Alg. 2, loops over time, channels and states. ``f32``: the quantities the
    module rounds to float32 even in a float64 model (HF: A, D, and B_t, u_t in Δ·B·u; mambapy: A and D)."""

    def r(name, v):
        return np.float64(np.float32(v)) if name in f32 else v

    # exp of the float32 A_log, correctly rounded to float32 (numpy's own float32 exp is off by an ulp at times)
    A = -np.float32(np.exp(np.float32(np.log(-p.A)).astype(np.float64))).astype(np.float64) if "A" in f32 else p.A
    D = r("D", p.D)
    di, n = A.shape
    xz = x @ p.in_proj.T
    u = silu(conv_causal(p.conv_w, p.conv_b, xz[:, :di]))
    z = xz[:, di:]
    R = p.x_proj.shape[0] - 2 * n
    y = np.zeros_like(u)
    h = np.zeros((di, n))
    for t in range(x.shape[0]):
        dbc = p.x_proj @ u[t]
        delta = softplus(p.dt_proj_w @ dbc[:R] + p.dt_proj_b)
        B, C = dbc[R : R + n], dbc[R + n :]
        for c in range(di):
            for s in range(n):
                h[c, s] = np.exp(delta[c] * A[c, s]) * h[c, s] + delta[c] * r("B", B[s]) * r("u", u[t, c])
            y[t, c] = C @ h[c] + D[c] * u[t, c]
    return (y * silu(z)) @ p.out_proj.T


def scan_mamba2(p, x, limit=(0.0, np.inf)):
    """Mamba-2 mixer per Dao & Gu (2024): per-head scalar A, head h reads group h // (H/G), gated RMSNorm; Δ
    clamped to ``limit`` after the softplus (transformers' ``time_step_limit``)."""
    H, G, n = p.A.shape[0], p.n_groups, p.d_state
    di = p.out_proj.shape[1]
    P = di // H
    proj = x @ p.in_proj.T
    z, xbc, dt = proj[:, :di], proj[:, di : 2 * di + 2 * G * n], proj[:, 2 * di + 2 * G * n :]
    xbc = silu(conv_causal(p.conv_w, p.conv_b, xbc))
    y = np.zeros((x.shape[0], di))
    h = np.zeros((H, P, n))
    for t in range(x.shape[0]):
        xs = xbc[t, :di].reshape(H, P)
        B, C = xbc[t, di : di + G * n].reshape(G, n), xbc[t, di + G * n :].reshape(G, n)
        delta = np.minimum(np.maximum(softplus(dt[t] + p.dt_bias), limit[0]), limit[1])
        for head in range(H):
            g = head // (H // G)
            h[head] = np.exp(delta[head] * p.A[head]) * h[head] + delta[head] * np.outer(xs[head], B[g])
            y[t, head * P : (head + 1) * P] = h[head] @ C[g] + p.D[head] * xs[head]
    y = y * silu(z)
    yg = y.reshape(x.shape[0], G, -1)
    yg = yg / np.sqrt((yg**2).mean(-1, keepdims=True) + p.norm_eps)
    return (yg.reshape(y.shape) * p.norm_w) @ p.out_proj.T


# ----------------------------------------------------------------------------------- tests
def test_hf_mamba_detection_and_recurrence():
    m = hf_mamba()
    sd = m.state_dict()
    assert detect_family(sd) == "mamba"
    model = ssmtools.load(sd)
    assert list(model) == ["backbone.layers.0.mixer", "backbone.layers.1.mixer"]
    layer = model["backbone.layers.1.mixer"]
    p = layer.params
    assert (p.d_inner, p.d_state, p.dt_rank) == (32, N, 3) and layer.view == "bias"
    np.testing.assert_array_equal(p.A, -np.exp(sd["backbone.layers.1.mixer.A_log"].numpy()))
    x = np.random.default_rng(1).standard_normal((T, D_MODEL))
    ref = mixer_io(m, m.backbone.layers[1].mixer, x[None])[0]
    np.testing.assert_allclose(scan_mamba1(p, x, f32=("A", "D", "B", "u")), ref, rtol=0, atol=1e-10)
    # ssmtools' own forward is float64 throughout: equal up to the module's float32 evaluation of A, B and u
    np.testing.assert_allclose(mixer_forward(p, x), scan_mamba1(p, x), rtol=0, atol=1e-12)
    np.testing.assert_allclose(mixer_forward(p, x), ref, rtol=0, atol=1e-5 * np.abs(ref).max())
    # the "bias" view: Δ = softplus(dt_proj.bias), B = C = 1
    delta = softplus(sd["backbone.layers.1.mixer.dt_proj.bias"].numpy())
    np.testing.assert_allclose(layer.system.poles.real, np.exp(delta[:, None] * p.A), rtol=1e-13)


def test_mambapy_and_mamba_ssm_layouts():
    m = mambapy_model()
    sd = m.state_dict()
    model = ssmtools.load(sd)
    assert model.family == "mamba" and list(model) == ["layers.0.mixer", "layers.1.mixer"]
    x = np.random.default_rng(2).standard_normal((T, D_MODEL))
    ref = mixer_io(m, m.layers[0].mixer, x[None])[0]
    np.testing.assert_allclose(scan_mamba1(model["layers.0.mixer"].params, x, ("A", "D")), ref, rtol=0, atol=1e-10)
    # mamba_ssm's MambaLMHeadModel: backbone.embedding (singular); HF's load hook renames it, and loads strictly
    hf = hf_mamba()
    ssm_sd = {k.replace("backbone.embeddings.", "backbone.embedding."): v for k, v in hf.state_dict().items()}
    assert "backbone.embedding.weight" in ssm_sd and ssmtools.load(ssm_sd).family == "mamba"
    fresh = hf_mamba(seed=5)
    fresh.load_state_dict(ssm_sd, strict=True)


def test_hf_mamba2_detection_and_recurrence():
    m = hf_mamba2()
    sd = m.state_dict()
    assert detect_family(sd) == "mamba2"
    model = ssmtools.load(sd, n_groups=2)
    p = model["backbone.layers.0.mixer"].params
    assert (p.n_heads, p.head_dim, p.n_groups, p.d_state) == (4, 8, 2, N)
    x = np.random.default_rng(3).standard_normal((T, D_MODEL))
    ref = mixer_io(m, m.backbone.layers[0].mixer, x[None])[0]
    # the torch reference chunked scan runs in float32 (it casts x, B, C, Δ): its tolerance
    np.testing.assert_allclose(scan_mamba2(p, x), ref, rtol=0, atol=2e-6 * np.abs(ref).max())
    np.testing.assert_allclose(mixer_forward(p, x), scan_mamba2(p, x), rtol=0, atol=1e-12)
    with pytest.raises(FormatError, match="n_groups"):
        ssmtools.load(sd, n_groups=3)


def test_hf_mamba2_time_step_limit_is_applied_as_the_module_does():
    # Δ clamped to [lo, hi] after the softplus, in transformers' chunked scan; the random Δ biases (softplus from
    # ~0.05 to ~3) make both ends of the clamp bite
    limit = (0.3, 1.2)
    m = hf_mamba2(time_step_limit=limit)
    mixer = m.backbone.layers[0].mixer
    x = np.random.default_rng(4).standard_normal((T, D_MODEL))
    ref = mixer_io(m, mixer, x[None])[0]
    model = read_module(m)  # the limit is not in the state dict: taken from the live module
    p = model["backbone.layers.0.mixer"].params
    assert p.dt_limit == limit
    np.testing.assert_allclose(scan_mamba2(p, x, limit), ref, rtol=0, atol=2e-6 * np.abs(ref).max())
    np.testing.assert_allclose(mixer_forward(p, x), scan_mamba2(p, x, limit), rtol=0, atol=1e-12)
    unclamped = ssmtools.load(m.state_dict(), n_groups=2)["backbone.layers.0.mixer"].params
    assert np.abs(mixer_forward(unclamped, x) - ref).max() > 1e-2 * np.abs(ref).max()  # the setting matters
    same = ssmtools.load(m.state_dict(), n_groups=2, time_step_limit=limit)["backbone.layers.0.mixer"].params
    np.testing.assert_allclose(mixer_forward(same, x), mixer_forward(p, x), rtol=0, atol=0)
    np.testing.assert_array_equal(p.bias_step(), np.clip(np.repeat(softplus(p.dt_bias), p.head_dim), *limit))
    # calibration checks the first sequence against the module: a model read without the limit is refused
    tokens = np.random.default_rng(5).integers(0, 40, (1, T))
    assert calibrate(m, tokens, model=model).tokens == T
    with pytest.raises(FormatError, match="time_step_limit"):
        calibrate(m, tokens, model=ssmtools.load(m.state_dict(), n_groups=2))
    for bad in [(1.0, 0.5), (-1.0, 1.0), "fast", (0.1,)]:
        with pytest.raises(ArgumentError, match="time_step_limit"):
            ssmtools.load(m.state_dict(), n_groups=2, time_step_limit=bad)


def test_mambapy_mamba2_learnable_initial_states_are_refused():
    sd = {k[len("backbone.") :]: v for k, v in hf_mamba2(n_groups=1).state_dict().items() if k.startswith("backbone.")}
    assert ssmtools.load(sd).family == "mamba2"  # mambapy's Mamba2 layout: the same names without backbone.
    sd["layers.0.mixer.init_states"] = torch.zeros(4, 8, N)
    with pytest.raises(FormatError, match="init_states"):
        ssmtools.load(sd)


def test_files_round_trip(tmp_path):
    sd = {k: v.float() for k, v in hf_mamba().state_dict().items()}
    sd.pop("lm_head.weight")  # tied to the embedding: safetensors refuses shared tensors
    from safetensors.torch import save_file

    save_file(sd, tmp_path / "model.safetensors")
    torch.save(sd, tmp_path / "pytorch_model.bin")
    for name in ("model.safetensors", "pytorch_model.bin"):
        model = ssmtools.load(tmp_path / name)
        assert model.family == "mamba" and len(model) == 2


def _mamba1_mixer(prefix="model.layers.0.mamba", di=8, n=4, r=2, d=6):
    z = np.zeros
    return {
        f"{prefix}.A_log": z((di, n)), f"{prefix}.D": z(di), f"{prefix}.in_proj.weight": z((2 * di, d)),
        f"{prefix}.conv1d.weight": z((di, 1, 3)), f"{prefix}.x_proj.weight": z((r + 2 * n, di)),
        f"{prefix}.dt_proj.weight": z((di, r)), f"{prefix}.dt_proj.bias": z(di), f"{prefix}.out_proj.weight": z((d, di)),
    }  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ({"model.layers.0.mamba.dt_layernorm.weight": np.ones(2)}, "inner layernorms"),
        ({"model.layers.1.self_attn.q_proj.weight": np.ones((6, 6))}, "hybrid model"),
    ],
)
def test_refuses_jamba_like(extra, match):
    with pytest.raises(FormatError, match=match):
        ssmtools.load({**_mamba1_mixer(), **extra})


def test_refuses_lookalikes():
    gdn = {  # Qwen3-Next / Gated-DeltaNet linear attention: A_log and dt_bias, no Mamba projections
        "model.layers.0.linear_attn.A_log": np.zeros(4),
        "model.layers.0.linear_attn.dt_bias": np.zeros(4),
        "model.layers.0.linear_attn.in_proj_qkvz.weight": np.zeros((32, 8)),
    }
    with pytest.raises(FormatError, match="linear_attn.*Gated-DeltaNet"):
        ssmtools.load(gdn)
    mamba3 = {"layers.0.mixer.dt_bias": np.zeros(4), "layers.0.mixer.D": np.zeros(4)}
    mamba3["layers.0.mixer.in_proj.weight"] = np.zeros((40, 8))
    with pytest.raises(FormatError, match="without A_log.*Mamba-3"):
        ssmtools.load(mamba3)
    bad = _mamba1_mixer(prefix="layers.0.mixer")
    bad["layers.0.mixer.x_proj.weight"] = np.zeros((8, 8))  # 2N = 8 rows, no room for dt_rank
    with pytest.raises(FormatError, match="dt_rank"):
        ssmtools.load(bad)


def _logits(model, ids):
    with torch.no_grad():
        out = model(ids)
    return (out.logits if hasattr(out, "logits") else out).numpy()


@pytest.mark.parametrize("family", ["mamba", "mamba2", "mambapy"])
def test_prune_d_state_reloads_strictly_and_equals_masked(family):
    kept = [0, 2, 3, 5]
    if family == "mambapy":
        build, name = (lambda n: mambapy_model(d_state=n)), "layers.{}.mixer"
    else:
        build = hf_mamba if family == "mamba" else hf_mamba2
        name = "backbone.layers.{}.mixer"
    original = build(N)
    model = ssmtools.load(original.state_dict(), **({"n_groups": 2} if family == "mamba2" else {}))
    keep = np.zeros(N, dtype=bool)
    keep[kept] = True
    masks = {name.format(i): np.broadcast_to(keep, model[name.format(i)].system.poles.shape) for i in range(2)}
    pruned, masked = model.apply(masks), model.apply(masks, mask=True)
    assert pruned[name.format(0)].params.d_state == len(kept)
    small, same = build(len(kept)), build(N)
    small.load_state_dict(pruned.params, strict=True)
    same.load_state_dict(masked.params, strict=True)
    if family == "mambapy":
        x = torch.randn(2, T, D_MODEL, dtype=torch.float64)
        np.testing.assert_allclose(_logits(small, x), _logits(same, x), rtol=0, atol=1e-12)
        return
    ids = torch.randint(0, 40, (2, T))
    a, b = _logits(small, ids), _logits(same, ids)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6 * np.abs(b).max())
    # and ssmtools' masked scan is the masked model: the pruned mixer's forward equals it
    x = np.random.default_rng(4).standard_normal((T, D_MODEL))
    layer, pruned_layer = model[name.format(0)], pruned[name.format(0)]
    np.testing.assert_allclose(
        mixer_forward(pruned_layer.params, x), mixer_forward(layer.params, x, keep=keep), rtol=0, atol=1e-12
    )


def test_capabilities_and_per_channel_masks_are_refused():
    model = ssmtools.load(_mamba1_mixer(prefix="layers.0.mixer"))
    layer = model["layers.0.mixer"]
    assert model.adapter.capabilities.can_prune and not model.adapter.capabilities.can_replace
    with pytest.raises(CapabilityError):
        model.replace_systems({"layers.0.mixer": layer.system})
    keep = np.ones(layer.system.poles.shape, dtype=bool)
    keep[0, 1] = False  # a state removed from one channel only: B_t, C_t are shared by all channels
    with pytest.raises(ArgumentError, match="same states in every channel"):
        model.apply({"layers.0.mixer": keep})
