"""Criteria: released formulas vs an independent implementation, worked examples, exact norms vs sweeps."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

import ssmtools
from ssmtools import BidirectionalSSM, DiagonalSSM, NonFiniteError, SSMLayer, SSMModel, UnstableSystemWarning
from ssmtools.pruning import Criterion, available_criteria, get_criterion, prune_plan
from ssmtools.pruning.criteria import output_scale, subsystem_h2_squared, subsystem_hinf

from .reference import released_lamp, released_raw_scores, s5_tree, seq_layers

ALL = [
    "last",
    "last-official",
    "last-exact",
    "aire",
    "uniform-hinf",
    "global-hinf",
    "magnitude",
    "lamp-magnitude",
    "random",
]


def random_layer(rng, P=5, H=3, *, output="real", bidirectional=False, radius=(0.3, 0.95), name="layer"):
    lam = rng.uniform(*radius, P) * np.exp(1j * rng.uniform(-np.pi, np.pi, P))
    B = rng.normal(size=(P, H)) + 1j * rng.normal(size=(P, H))
    C = rng.normal(size=(H, P)) + 1j * rng.normal(size=(H, P))
    system = DiagonalSSM(lam, B, C, np.diag(rng.normal(size=H)), dt=True, output=output, state_includes_input=True)
    if bidirectional:
        system = BidirectionalSSM(system, rng.normal(size=(H, P)) + 1j * rng.normal(size=(H, P)))
    return SSMLayer(name, system)


def multi_siso_layer(rng, H, N, *, c=1.0, d=None):
    """An S4D-like multi-SISO system: H channels of N stored states, output 2Re; returns (system, poles, b)."""
    lam = rng.uniform(0.3, 0.9, (H, N)) * np.exp(1j * rng.uniform(0, np.pi, (H, N)))
    g = rng.normal(size=(H, N)) + 1j * rng.normal(size=(H, N))
    D = None if d is None else np.full((H, 1, 1), d)
    system = DiagonalSSM(
        lam, g[..., None], c * np.ones((H, 1, N)), D, dt=True, output="real", state_includes_input=True
    )
    return system, lam, g


def response(layer: SSMLayer, omega: np.ndarray) -> np.ndarray:
    """G(e^{jω}) of a (bidirectional) layer without D, written from math.md §1.3: (k, p, m)."""
    s = layer.system
    z = np.exp(1j * omega)[:, None]

    def part(lam, B, C1, C2):
        G = np.einsum("pn,kn,nm->kpm", C1, 1 / (1 - lam / z), B)
        if C2 is not None:
            G = G + np.einsum("pn,kn,nm->kpm", C2, 1 / (1 - lam * z), B)
        return G

    C_backward = getattr(s, "C_backward", None)
    G = part(s.poles, s.B, s.C, C_backward)
    if s.output == "real":
        C2c = None if C_backward is None else np.conj(C_backward)
        G = 0.5 * (G + part(np.conj(s.poles), np.conj(s.B), np.conj(s.C), C2c))
    return G


def sweep_linf(layer: SSMLayer) -> float:
    """Dense sweep of σ_max over (−π, π] plus local refinement of the best point (a lower bound made tight)."""
    omega = np.linspace(-np.pi, np.pi, 20001)

    def sigma(w):
        return np.linalg.svd(response(layer, np.atleast_1d(w)), compute_uv=False)[..., 0]

    values = sigma(omega)
    best = omega[np.argmax(values)]
    step = omega[1] - omega[0]
    refined = minimize_scalar(
        lambda w: -sigma(w)[0], bounds=(best - step, best + step), method="bounded", options={"xatol": 1e-13}
    )
    return max(float(values.max()), -float(refined.fun))


# ---------------------------------------------------------------------------------------------- registry
def test_every_criterion_is_registered_and_documented():
    assert set(ALL) | {"balanced"} <= set(available_criteria())
    for name in ALL:
        crit = get_criterion(name)
        assert isinstance(crit, Criterion) and crit.name == name
        assert type(crit).__doc__ and len(type(crit).__doc__) > 60


def test_unknown_criterion_and_options_are_rejected():
    with pytest.raises(ValueError, match="unknown criterion 'lats'"):
        get_criterion("lats")
    with pytest.raises(TypeError, match="no option"):
        get_criterion("last-official", bidirectinal_formula="intended")
    with pytest.raises(ValueError, match="bidirectional_formula"):
        get_criterion("last-official", bidirectional_formula="paper")
    with pytest.raises(ValueError, match="form"):
        get_criterion("aire", form="approx")


# ---------------------------------------------------------------------------------------------- last-official
@pytest.mark.parametrize("bidirectional, stacked", [(False, False), (True, False), (True, True)])
@pytest.mark.parametrize("formula", ["released", "intended"])
def test_last_official_matches_released_formulas(bidirectional, stacked, formula):
    rng = np.random.default_rng(3)
    tree = s5_tree(rng, n_layers=3, P=7, H=5, bidirectional=bidirectional, stacked_c=stacked)
    model = ssmtools.load(tree)
    crit = get_criterion("last-official", bidirectional_formula=formula)
    for (name, seq), layer in zip(seq_layers(tree), model.values()):
        assert layer.name == name and layer.bidirectional == bidirectional
        expected = released_raw_scores(seq, kind="last", formula=formula)
        raw = crit.raw_scores(layer, model=model)
        np.testing.assert_allclose(raw, expected, rtol=1e-12, atol=0)
        np.testing.assert_allclose(crit.normalize(raw), released_lamp(expected), rtol=1e-12, atol=0)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_aire_official_matches_released_formula(bidirectional):
    rng = np.random.default_rng(4)
    tree = s5_tree(rng, n_layers=2, P=6, H=3, bidirectional=bidirectional)
    model = ssmtools.load(tree)
    crit = get_criterion("aire")
    for (_, seq), layer in zip(seq_layers(tree), model.values()):
        expected = released_raw_scores(seq, kind="aire")
        np.testing.assert_allclose(crit.raw_scores(layer, model=model), expected, rtol=1e-12, atol=0)


def test_output_scale_follows_the_family():
    tree = s5_tree(np.random.default_rng(0), n_layers=1)
    assert output_scale(ssmtools.load(tree)) == 2.0
    assert output_scale(ssmtools.load(tree, conj_sym=False)) == 1.0
    assert output_scale(SSMModel.from_systems([random_layer(np.random.default_rng(0)).system])) == 1.0


def e5_tree():
    """math.md §8 as an S5 flax tree (conj_sym, ZOH, unidirectional)."""
    C = np.array([[1, 1j], [0.5, -1]])
    Bt = np.array([[1, 0], [1j, 1]])
    seq = {
        "Lambda_re": np.array([-0.5, -0.1]),
        "Lambda_im": np.array([1.0, 3.0]),
        "B": np.stack([Bt.real, Bt.imag], -1),
        "C": np.stack([C.real, C.imag], -1),
        "D": np.array([0.3, -0.2]),
        "log_step": np.log([[0.1], [0.2]]),
    }
    return {"layers_0": {"seq": seq}}


def test_e5_last_and_aire_official_values():
    model = ssmtools.load(e5_tree())
    layer = model["layers_0/seq"]
    last = get_criterion("last-official")
    raw = last.raw_scores(layer, model=model)
    np.testing.assert_allclose(raw, [4.9958142391, 388.1334152042], rtol=1e-10)
    np.testing.assert_allclose(last.normalize(raw), [0.0127078168, 1.0], rtol=1e-8)
    aire = get_criterion("aire")
    raw = aire.raw_scores(layer, model=model)
    np.testing.assert_allclose(raw, [0.1248698545, 3.8813027765], rtol=1e-9)
    np.testing.assert_allclose(aire.normalize(raw), [0.03116936, 1.0], rtol=1e-6)
    # exact pair norms of E5 (math.md §8)
    np.testing.assert_allclose(
        get_criterion("last-exact").raw_scores(layer, model=model),
        np.array([2.4562394155, 19.7013531066]) ** 2,
        rtol=1e-9,
    )
    np.testing.assert_allclose(
        get_criterion("aire", form="exact").raw_scores(layer, model=model), [0.2996875085, 7.7626075327], rtol=1e-9
    )


def e7_layer():
    """math.md §6.5 E7: ‖c1‖ = 1, ‖c2‖ = 3, ‖b‖² = 2, |λ̄| = 0.5 (one bidirectional state)."""
    system = DiagonalSSM([0.5j], [[1.0, 1.0j]], [[0.6], [0.8j]], dt=True, output="real", state_includes_input=True)
    return SSMLayer("e7", BidirectionalSSM(system, np.array([[3.0], [0.0]])))


def test_e7_bidirectional_precedence_quirk():
    layer = e7_layer()
    released = get_criterion("last-official", c_scale=1.0).raw_scores(layer)
    intended = get_criterion("last-official", bidirectional_formula="intended", c_scale=1.0).raw_scores(layer)
    np.testing.assert_allclose(released, [7.99999968], rtol=1e-12)
    np.testing.assert_allclose(intended, [31.99999872], rtol=1e-12)
    # "last" uses the full triangle bound ((‖c1‖+‖c2‖)‖b‖/(1−r))² = 4 × intended without the 1e-8
    np.testing.assert_allclose(get_criterion("last").raw_scores(layer), [(4 * np.sqrt(2) / 0.5) ** 2], rtol=1e-14)


# ---------------------------------------------------------------------------------------------- exact norms
def test_last_exact_uses_the_exact_conjugate_pair_norm():
    # math.md E3: pair 2Re(c bᵀ)/(z − λ̄), exact H∞ 17.1918174488, single-pole 16.7705098312
    lam = 0.9 * np.exp(1j * np.pi / 4)
    c, b = np.array([1, 0.5]), np.array([1, 1 + 0.5j])
    system = DiagonalSSM([lam], b[None, :], 2 * c[:, None], dt=True, output="real", state_includes_input=True)
    layer = SSMLayer("e3", system)
    np.testing.assert_allclose(get_criterion("last-exact").raw_scores(layer), [17.1918174488**2], rtol=1e-9)
    np.testing.assert_allclose(get_criterion("last").raw_scores(layer), [(2 * 16.7705098312) ** 2], rtol=1e-9)
    np.testing.assert_allclose(get_criterion("aire", form="exact").raw_scores(layer), [31.0242595953], rtol=1e-9)


@pytest.mark.parametrize("output", ["real", "complex"])
def test_exact_bidirectional_state_norms_match_a_frequency_sweep(output):
    rng = np.random.default_rng(11)
    layer = random_layer(rng, P=4, H=3, output=output, bidirectional=True)
    exact = subsystem_hinf(layer, exact=True)
    energy = subsystem_h2_squared(layer)
    omega = np.linspace(-np.pi, np.pi, 2**14, endpoint=False)
    for i in range(layer.system.n_states):
        keep = np.arange(layer.system.n_states) == i
        one = SSMLayer(
            "one",
            BidirectionalSSM(
                DiagonalSSM(
                    layer.system.poles[keep],
                    layer.system.B[keep],
                    layer.system.C[:, keep],
                    dt=True,
                    output=output,
                    state_includes_input=True,
                ),
                layer.system.C_backward[:, keep],
            ),
        )
        assert exact[i] == pytest.approx(sweep_linf(one), rel=1e-9)
        # Parseval: mean of ‖G‖²_F over a uniform grid (exact up to aliasing λ̄^(2^14) ≈ 0)
        assert energy[i] == pytest.approx(np.mean(np.sum(np.abs(response(one, omega)) ** 2, axis=(1, 2))), rel=1e-9)
    # the AB13DD route (stacked forward/backward realisation, math.md §1.3) agrees with the closed form
    np.testing.assert_allclose(ssmtools.hinf_norm(layer.system.states(), method="slycot"), exact, rtol=1e-9)
    # the single-pole triangle bound is an upper bound of the exact value for complex output
    if output == "complex":
        assert np.all(exact <= subsystem_hinf(layer, exact=False) * (1 + 1e-12))


# ---------------------------------------------------------------------------------------------- baselines
def test_baseline_scores():
    rng = np.random.default_rng(5)
    layer = random_layer(rng, P=6)
    system = layer.system
    np.testing.assert_allclose(get_criterion("magnitude").raw_scores(layer), np.abs(system.poles))
    np.testing.assert_allclose(get_criterion("lamp-magnitude").raw_scores(layer), np.abs(system.poles) ** 2)
    single = np.linalg.norm(system.C, axis=0) * np.linalg.norm(system.B, axis=1) / (1 - np.abs(system.poles))
    np.testing.assert_allclose(get_criterion("global-hinf").raw_scores(layer), single, rtol=1e-14)
    np.testing.assert_allclose(get_criterion("uniform-hinf").raw_scores(layer), single, rtol=1e-14)
    np.testing.assert_allclose(
        get_criterion("global-hinf", exact=True).raw_scores(layer), ssmtools.state_hinf_norms(system), rtol=1e-14
    )
    assert get_criterion("uniform-hinf").scope == "layer" and get_criterion("global-hinf").scope == "global"


def test_random_is_seeded_per_layer_name():
    rng = np.random.default_rng(6)
    a, b = random_layer(rng, name="a"), random_layer(rng, name="b")
    r0 = get_criterion("random", seed=0)
    assert np.array_equal(r0.raw_scores(a), get_criterion("random", seed=0).raw_scores(a))
    assert not np.array_equal(r0.raw_scores(a), get_criterion("random", seed=1).raw_scores(a))
    assert not np.array_equal(r0.raw_scores(a), r0.raw_scores(b))
    assert np.all((r0.raw_scores(a) >= 0) & (r0.raw_scores(a) < 1))


# ---------------------------------------------------------------------------------------------- stability
def unstable_layer():
    poles = np.array([0.5, 1.0, 1.2 * np.exp(0.3j), 0.9j])
    B = np.ones((4, 2))
    C = np.ones((2, 4))
    return SSMLayer("u", DiagonalSSM(poles, B, C, dt=True, output="real", state_includes_input=True))


def test_unstable_states_score_inf_except_in_the_released_formula():
    layer = unstable_layer()
    for name in ["last", "last-exact", "aire", "global-hinf"]:
        scores = get_criterion(name).raw_scores(layer)
        assert np.array_equal(np.isinf(scores), [False, True, True, False]), name
    for form in ["exact"]:
        assert np.isinf(get_criterion("aire", form=form).raw_scores(layer)[1:3]).all()
    released = get_criterion("last-official", c_scale=1.0).raw_scores(layer)
    assert np.all(np.isfinite(released))
    assert released[1] == pytest.approx(2 * 2 * 1e8)  # ‖c‖² ‖b‖² / 1e-8 at |λ̄| = 1 (quirk 3)
    assert released[2] > released[0]  # unstable ranks high in the released code


def test_plan_keeps_and_reports_unstable_states():
    rng = np.random.default_rng(8)
    model = SSMModel.from_systems({"u": unstable_layer().system, "s": random_layer(rng, P=4, H=2).system})
    with pytest.warns(UnstableSystemWarning, match=r"2 of 8 stored states .*'u': 2"):
        plan = prune_plan(model, 0.5, "last-exact")
    assert plan.unstable == {"u": 2}
    assert plan["u"].keep[1] and plan["u"].keep[2]
    assert plan["u"].hinf_norm == np.inf and plan["u"].hinf_error >= 0
    assert plan.n_removed == 4


def test_nan_parameters_are_rejected_and_nan_scores_are_errors():
    with pytest.raises(NonFiniteError, match="NaN"):
        DiagonalSSM([np.nan], [[1.0]], [[1.0]], dt=True)

    class Broken(Criterion):
        name = "broken"

        def raw_scores(self, layer, *, model=None):
            return np.full(layer.system.poles.shape, np.nan)

    model = SSMModel.from_systems([random_layer(np.random.default_rng(0)).system])
    with pytest.raises(ValueError, match="NaN"):
        prune_plan(model, 0.2, Broken())


def test_state_units_combine_channels():
    rng = np.random.default_rng(9)
    H, N = 3, 4
    system, _, _ = multi_siso_layer(rng, H, N)
    model = SSMModel.from_systems({"s4d": system})
    plan = prune_plan(model, 0.5, "last", units="state")
    raw = get_criterion("last").raw_scores(model["s4d"])
    unit = raw.max(axis=0)
    kept = np.argsort(unit)[N // 2 :]
    assert np.array_equal(plan["s4d"].keep, np.broadcast_to(np.isin(np.arange(N), kept), (H, N)))
    plan_h2 = prune_plan(model, 0.5, "aire", units="state", errors=False)
    unit_h2 = get_criterion("aire").raw_scores(model["s4d"]).sum(axis=0)  # energies add over channels
    assert np.array_equal(plan_h2["s4d"].keep[0], np.isin(np.arange(N), np.argsort(unit_h2)[N // 2 :]))


# ---------------------------------------------------------------------------------------------- balanced
def test_balanced_slot_energies_are_paired_hankel_singular_values():
    from scipy.linalg import solve_discrete_lyapunov

    rng = np.random.default_rng(12)
    layer = random_layer(rng, P=5, H=3)
    s = layer.system
    # real realization of the strictly proper part (math.md §1.2, §4.4), Gramians by scipy
    A = np.block([[np.diag(s.poles.real), -np.diag(s.poles.imag)], [np.diag(s.poles.imag), np.diag(s.poles.real)]])
    B = np.concatenate([s.B.real, s.B.imag])
    C = np.concatenate([s.C.real, -s.C.imag], axis=1)
    P = solve_discrete_lyapunov(A, B @ B.T)
    Q = solve_discrete_lyapunov(A.T, C.T @ C)
    hsv = np.sort(np.sqrt(np.abs(np.linalg.eigvals(P @ Q))))[::-1]
    scores = get_criterion("balanced").raw_scores(layer)
    np.testing.assert_allclose(scores, (hsv**2).reshape(5, 2).sum(axis=1), rtol=1e-9)
    assert np.all(np.diff(scores) <= 0)
    assert get_criterion("balanced").scope == "global"
    assert get_criterion("balanced", order_allocation="uniform").scope == "layer"


def test_balanced_refuses_bidirectional_and_unstable_layers():
    rng = np.random.default_rng(13)
    with pytest.raises(ValueError, match="bidirectional"):
        get_criterion("balanced").raw_scores(random_layer(rng, bidirectional=True))
    with pytest.raises(ValueError, match="stable"):
        get_criterion("balanced", unstable="error").raw_scores(unstable_layer())


def test_every_literal_option_is_checked_against_its_annotation():
    """The Literal annotation of an option is its one list of choices: every registered criterion and reduction
    refuses a value outside it, with the owner, option and choices named (some refuse valid choices too, by design:
    empirical-balanced fixes its fit and unstable policy)."""
    import dataclasses
    import typing

    import ssmtools.pruning as pruning
    from ssmtools.errors import OptionError

    checked = 0
    for registry_names, get in (
        (pruning.available_criteria(), pruning.get_criterion),
        (pruning.available_reductions(), pruning.get_reduction),
    ):
        for name in registry_names:
            cls = type(get(name))
            for field in dataclasses.fields(cls):
                if str(field.type).startswith("Literal["):
                    choices = typing.get_args(typing.get_type_hints(cls)[field.name])
                    with pytest.raises(OptionError, match=rf"'{name}' option {field.name}=.*{choices[0]}"):
                        cls(**{field.name: "not-a-choice"})
                    checked += 1
    assert checked >= 6
