"""Official S5 flax parameter trees (lindermanlab/S5): read, prune, replace against a reference recurrence."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import ssmtools
from ssmtools.errors import FormatError

from .reference import s5_flax_discretize, s5_flax_forward, simulate

H, P, L = 3, 6, 30


def _seq(rng, *, bidir: str | None, P: int = P, dtype=np.float64) -> dict:
    """Random S5SSM params with the official names/shapes; bidir None, "C1C2" or "C2P"."""
    seq = {
        "Lambda_re": -rng.uniform(0.05, 1.0, P),
        "Lambda_im": rng.uniform(-3, 3, P),
        "B": rng.standard_normal((P, H, 2)) / np.sqrt(H),
        "D": rng.standard_normal(H),
        "log_step": rng.uniform(np.log(1e-2), np.log(0.5), (P, 1)),
    }
    if bidir == "C1C2":
        seq["C1"] = rng.standard_normal((H, P, 2))
        seq["C2"] = rng.standard_normal((H, P, 2))
    elif bidir == "C2P":
        seq["C"] = rng.standard_normal((H, 2 * P, 2))
    else:
        seq["C"] = rng.standard_normal((H, P, 2))
    return {k: v.astype(dtype) for k, v in seq.items()}


def _tree(seed: int, *, bidir=None, n_layers: int = 2) -> dict:
    rng = np.random.default_rng(seed)
    encoder = {"encoder": {"kernel": rng.standard_normal((2, H)), "bias": np.zeros(H)}}
    for i in range(n_layers):
        encoder[f"layers_{i}"] = {"seq": _seq(rng, bidir=bidir), "norm": {"scale": np.ones(H), "bias": np.zeros(H)}}
    return {"params": {"encoder": encoder, "decoder": {"kernel": rng.standard_normal((H, 5))}}}


NAME = "params/encoder/layers_{}/seq"


@pytest.mark.parametrize("bidir", [None, "C1C2", "C2P"])
@pytest.mark.parametrize("discretization", ["zoh", "bilinear"])
@pytest.mark.parametrize("conj_sym", [True, False])
def test_read_matches_reference_recurrence(bidir, discretization, conj_sym):
    tree = _tree(1, bidir=bidir)
    config = dict(discretization=discretization, conj_sym=conj_sym, step_rescale=0.7)
    model = ssmtools.load(tree, **config)
    assert model.family == "s5" and list(model) == [NAME.format(0), NAME.format(1)]
    u = np.random.default_rng(2).standard_normal((L, H))
    for i in range(2):
        layer = model[NAME.format(i)]
        assert layer.bidirectional == (bidir is not None)
        expected = s5_flax_forward(tree["params"]["encoder"][f"layers_{i}"]["seq"], u, **config)
        np.testing.assert_allclose(simulate(layer.system, u), expected, atol=1e-11, rtol=0)


def test_clip_eigs_applies_the_clip():
    tree = _tree(3)
    seq = tree["params"]["encoder"]["layers_0"]["seq"]
    seq["Lambda_re"][:2] = [0.3, -1e-6]  # unstable / marginal until clipped
    u = np.random.default_rng(4).standard_normal((L, H))
    clipped = ssmtools.load(tree, clip_eigs=True)[NAME.format(0)]
    np.testing.assert_allclose(simulate(clipped.system, u), s5_flax_forward(seq, u, clip_eigs=True), atol=1e-11)
    assert np.all(np.abs(clipped.system.poles) < 1)
    assert np.abs(ssmtools.load(tree)[NAME.format(0)].system.poles[0]) > 1


@pytest.mark.parametrize("bidir", [None, "C1C2", "C2P"])
def test_prune_half_and_mask(bidir):
    tree = _tree(5, bidir=bidir)
    model = ssmtools.load(tree)
    rng = np.random.default_rng(6)
    keep = {}
    for i in range(2):
        k = np.zeros(P, dtype=bool)
        k[rng.choice(P, P // 2, replace=False)] = True
        keep[NAME.format(i)] = k
    pruned = model.apply(keep)
    masked = model.apply(keep, mask=True)
    u = rng.standard_normal((L, H))
    for i in range(2):
        name, k = NAME.format(i), keep[NAME.format(i)]
        seq = tree["params"]["encoder"][f"layers_{i}"]["seq"]
        new = pruned.params["params"]["encoder"][f"layers_{i}"]["seq"]
        assert new["Lambda_re"].shape == (P // 2,) and new["B"].shape == (P // 2, H, 2)
        assert new["log_step"].shape == (P // 2, 1)
        # reference: the original layer with the pruned states' B rows zeroed by hand
        by_hand = {key: value.copy() for key, value in seq.items()}
        by_hand["B"][~k] = 0
        expected = s5_flax_forward(by_hand, u)
        np.testing.assert_allclose(s5_flax_forward(new, u), expected, atol=1e-12)
        np.testing.assert_allclose(
            s5_flax_forward(masked.params["params"]["encoder"][f"layers_{i}"]["seq"], u), expected, atol=1e-12
        )
        assert masked.params["params"]["encoder"][f"layers_{i}"]["seq"]["B"].shape == seq["B"].shape
        layer = pruned[name]
        np.testing.assert_allclose(simulate(layer.system, u), expected, atol=1e-11)
    # non-SSM leaves are the same objects; the input tree is untouched
    assert pruned.params["params"]["decoder"]["kernel"] is tree["params"]["decoder"]["kernel"]
    assert (
        pruned.params["params"]["encoder"]["layers_0"]["norm"]["scale"]
        is tree["params"]["encoder"]["layers_0"]["norm"]["scale"]
    )
    assert tree["params"]["encoder"]["layers_0"]["seq"]["Lambda_re"].shape == (P,)


def test_plan_object_with_keep_attribute():
    model = ssmtools.load(_tree(7, n_layers=1))

    class Plan:
        keep = {NAME.format(0): np.array([True, True, False, True, False, True])}

    assert model.apply(Plan())[NAME.format(0)].n_states == 4


@pytest.mark.parametrize("bidir", [None, "C1C2", "C2P"])
@pytest.mark.parametrize("discretization", ["zoh", "bilinear"])
def test_replace_systems_reproduces_given_system(bidir, discretization):
    tree = _tree(8, bidir=bidir, n_layers=1)
    config = dict(discretization=discretization, step_rescale=0.5)
    model = ssmtools.load(tree, **config)
    layer = model[NAME.format(0)]
    rng = np.random.default_rng(9)
    n = 4
    poles = rng.uniform(0.2, 0.97, n) * np.exp(1j * rng.uniform(-np.pi + 0.1, np.pi - 0.1, n))
    system = getattr(layer.system, "forward", layer.system).replace(
        poles=poles,
        B=rng.standard_normal((n, H)) + 1j * rng.standard_normal((n, H)),
        C=rng.standard_normal((H, n)) + 1j * rng.standard_normal((H, n)),
    )
    if bidir:
        system = ssmtools.BidirectionalSSM(system, rng.standard_normal((H, n)) + 1j * rng.standard_normal((H, n)))
    replaced = model.replace_systems({NAME.format(0): ssmtools.SSMLayer(NAME.format(0), system)})
    seq = replaced.params["params"]["encoder"]["layers_0"]["seq"]
    assert seq["Lambda_re"].shape == (n,) and seq["log_step"].shape == (n, 1)
    assert set(seq) == set(tree["params"]["encoder"]["layers_0"]["seq"])
    u = rng.standard_normal((L, H))
    np.testing.assert_allclose(s5_flax_forward(seq, u, **config), simulate(system, u), atol=1e-10)


def test_replace_rejects_wrong_convention_and_clip():
    model = ssmtools.load(_tree(10, n_layers=1), clip_eigs=True)
    layer = model[NAME.format(0)]
    with pytest.raises(ValueError, match="convention"):
        model.replace_systems({NAME.format(0): layer.system.replace(state_includes_input=False)})
    with pytest.raises(ValueError, match="clip_eigs"):
        model.replace_systems({NAME.format(0): layer.system.replace(poles=np.full(P, 0.99999999 + 0j))})
    nondiag = layer.system.replace(D=np.ones((H, H)))
    with pytest.raises(ValueError, match="not diagonal"):
        model.replace_systems({NAME.format(0): nondiag})


def test_bad_trees():
    tree = _tree(11, n_layers=1)
    seq = tree["params"]["encoder"]["layers_0"]["seq"]
    missing = {"params": {"seq": {k: v for k, v in seq.items() if k != "log_step"}}}
    with pytest.raises(FormatError, match=r"missing parameter\(s\) \['params/seq/log_step'\]"):
        ssmtools.load(missing)
    bad_b = {"seq": dict(seq, B=seq["B"][..., 0])}
    with pytest.raises(FormatError, match="'seq/B' has shape .* expected"):
        ssmtools.load(bad_b)
    complex_c = {"seq": dict(seq, C=seq["C"][..., 0] + 1j * seq["C"][..., 1])}
    with pytest.raises(FormatError, match="'seq/C' is complex .* complex dtype mismatch"):
        ssmtools.load(complex_c)
    with pytest.raises(FormatError, match="bidirectional=True was passed"):
        ssmtools.load(tree, bidirectional=True)
    with pytest.raises(ValueError, match="discretization='foh' is not valid"):
        ssmtools.load(tree, discretization="foh")
    with pytest.raises(FormatError, match="no layer of a known SSM family found .*family="):
        ssmtools.load({"dense": {"kernel": np.ones((2, 2))}})
    mixed = {"a": {"seq": seq}, "b": {"nu_log": np.zeros(2), "theta_log": np.zeros(2)}}
    with pytest.raises(FormatError, match="ambiguous .*'lru'.*'s5'"):
        ssmtools.load(mixed)
    with pytest.raises(FormatError, match="no lru layer found"):
        ssmtools.load(tree, family="lru")
    with pytest.raises(ValueError, match="family='mamba3' is not valid"):
        ssmtools.load(tree, family="mamba3")


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    bits=st.lists(st.booleans(), min_size=P, max_size=P),
    bidir=st.sampled_from([None, "C1C2", "C2P"]),
    disc=st.sampled_from(["zoh", "bilinear"]),
)
def test_prune_is_modal_truncation_and_replace_own_systems_is_identity(seed, bits, bidir, disc):
    keep = np.array(bits)
    keep[seed % P] = True  # at least one state
    model = ssmtools.load(_tree(seed, bidir=bidir, n_layers=1), discretization=disc)
    name = NAME.format(0)
    layer = model[name]
    pruned = model.apply({name: keep})[name]
    np.testing.assert_allclose(pruned.system.poles, layer.system.poles[keep], rtol=1e-13)
    np.testing.assert_allclose(pruned.system.B, layer.system.B[keep], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(pruned.system.C, layer.system.C[:, keep], rtol=1e-13)
    np.testing.assert_array_equal(pruned.system.D, layer.system.D)
    if bidir:
        np.testing.assert_allclose(pruned.system.C_backward, layer.system.C_backward[:, keep], rtol=1e-13)
    masked = model.apply({name: keep}, mask=True)[name]
    assert np.all(masked.system.B[~keep] == 0) and np.all(masked.system.C[:, ~keep] == 0)
    again = model.replace_systems({name: layer})[name]
    np.testing.assert_allclose(again.system.poles, layer.system.poles, rtol=1e-12)
    np.testing.assert_allclose(again.system.B, layer.system.B, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(again.system.C, layer.system.C, rtol=1e-13)


def test_settings_of_the_wrong_type_are_refused():
    tree = _tree(1, n_layers=1)
    with pytest.raises(ssmtools.ArgumentTypeError, match="conj_sym='no' must be True or False"):
        ssmtools.load(tree, conj_sym="no")
    with pytest.raises(ssmtools.ArgumentError, match="step_rescale=0.0 must be a positive finite number"):
        ssmtools.load(tree, step_rescale=0.0)
    with pytest.raises(ssmtools.ArgumentTypeError, match="bidirectional='yes' must be True or False"):
        ssmtools.load(tree, bidirectional="yes")


@pytest.mark.parametrize("family", ["auto", "s5"])
def test_a_partially_recognised_layer_is_an_error_not_a_skipped_layer(family):
    tree = _tree(2, n_layers=3)
    del tree["params"]["encoder"]["layers_1"]["seq"]["Lambda_im"]
    with pytest.raises(
        ssmtools.FormatError,
        match=r"layer 'params/encoder/layers_1/seq' has \['Lambda_re'\] but lacks "
        r"\['Lambda_im'\]",
    ):
        ssmtools.load(tree, family=family)


def test_float32_checkpoints_are_discretised_in_float64():
    """Δ = exp(log_step) and the poles are computed in float64 from the stored float32 values (not in float32,
    which cost 1e-5 relative in the scores)."""
    tree = _tree(3, n_layers=1)
    seq = tree["params"]["encoder"]["layers_0"]["seq"]
    for key, value in seq.items():
        seq[key] = np.asarray(value, dtype=np.float32)
    layer = ssmtools.load(tree)[NAME.format(0)]
    widened = {key: np.asarray(value, dtype=np.float64) for key, value in seq.items()}
    lam_bar, B_bar, _ = s5_flax_discretize(widened)
    np.testing.assert_allclose(layer.system.poles, lam_bar, rtol=1e-14)
    np.testing.assert_allclose(layer.system.B, B_bar, rtol=1e-13)
