"""``ssmtools analyze`` / ``prune`` on a Mamba checkpoint with a calibration file: the pruned file loads strictly
into the original class at the smaller state_size."""

from __future__ import annotations

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from ssmtools.cli import app

from .adapters.test_mamba import N, hf_mamba


def test_analyze_and_prune_a_mamba_checkpoint(tmp_path):
    m = hf_mamba()
    save_file(
        {k: v.contiguous() for k, v in m.state_dict().items() if k != "lm_head.weight"}, tmp_path / "m.safetensors"
    )
    m.config.to_json_file(tmp_path / "config.json")
    np.save(tmp_path / "tokens.npy", np.random.default_rng(0).integers(0, 40, (3, 10)))
    runner = CliRunner()
    ckpt, tokens = str(tmp_path / "m.safetensors"), str(tmp_path / "tokens.npy")
    result = runner.invoke(app, ["analyze", ckpt, "--calibration", tokens, "--max-tokens", "20"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # titles wrap
    assert "view 'averaged' of a time-varying layer" in text and "gramian" in text
    out = tmp_path / "pruned.safetensors"
    args = ["prune", ckpt, "--ratio", "0.5", "--criterion", "gramian", "--calibration", tokens, "-o", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert f"state_size {N} -> {N // 2}" in text and "random" in text
    small = hf_mamba(state_size=N // 2)
    state = load_file(out)
    state["lm_head.weight"] = state["backbone.embeddings.weight"]
    small.load_state_dict({k: v.double() for k, v in state.items()}, strict=True)
    assert torch.isfinite(small(input_ids=torch.zeros(1, 4, dtype=torch.int64)).logits).all()
    result = runner.invoke(app, ["analyze", ckpt, "--view", "frozen"])
    assert result.exit_code == 2 and "needs --calibration" in " ".join(result.output.split())


def test_analyze_json_of_a_mamba_checkpoint_names_its_view(tmp_path):
    import json

    m = hf_mamba()
    save_file(
        {k: v.contiguous() for k, v in m.state_dict().items() if k != "lm_head.weight"}, tmp_path / "m.safetensors"
    )
    np.save(tmp_path / "tokens.npy", np.random.default_rng(1).integers(0, 40, (2, 10)))
    runner = CliRunner()
    ckpt, out = str(tmp_path / "m.safetensors"), tmp_path / "norms.json"
    result = runner.invoke(app, ["analyze", ckpt, "--json", str(out)])
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    assert (document["schema"], document["version"], document["family"]) == ("ssmtools.analyze", 1, "mamba")
    assert document["view"]["name"] == "bias" and document["view"]["calibration_tokens"] is None
    assert [layer["name"] for layer in document["layers"]] == [f"backbone.layers.{i}.mixer" for i in range(2)]
    assert all("states" not in layer for layer in document["layers"])
    args = ["analyze", ckpt, "--json", str(out), "--force", "--calibration", str(tmp_path / "tokens.npy")]
    result = runner.invoke(app, [*args, "--view", "frozen", "--max-tokens", "15"])
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    assert document["view"]["name"] == "frozen" and document["view"]["calibration_tokens"] == 15
    assert "one calibration token" in document["view"]["label"] and document["view"]["time_varying"] is True
    for layer in document["layers"]:
        assert len(layer["states"]) == N and layer["n_states"] == N * 2 * 16  # d_inner = 2 · d_model
        rates = [state["mean_rate"] for state in layer["states"]]
        assert all(rate > 0 for rate in rates) and all(state["gramian"] > 0 for state in layer["states"])


def test_analyze_takes_the_mamba2_time_step_limit_from_config_json(tmp_path):
    import json

    from .adapters.test_mamba import hf_mamba2

    m = hf_mamba2(n_groups=1, time_step_limit=(0.3, 1.2))  # not in the weights: only config.json says it
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, tmp_path / "m.safetensors")  # untied head
    np.save(tmp_path / "tokens.npy", np.random.default_rng(0).integers(0, 40, (2, 8)))
    runner = CliRunner()
    norms = {}
    for case in ("weights alone", "config.json"):
        if case == "config.json":  # the clamped module, checked against the clamped recurrence
            m.config.to_json_file(tmp_path / "config.json")
        out = tmp_path / f"{case}.json"
        args = ["analyze", str(tmp_path / "m.safetensors"), "--calibration", str(tmp_path / "tokens.npy")]
        result = runner.invoke(app, [*args, "--json", str(out)])
        assert result.exit_code == 0, result.output
        norms[case] = [layer["hinf"] for layer in json.loads(out.read_text())["layers"]]
    assert norms["weights alone"] != norms["config.json"]  # the clamp changes Δ, so the averaged view
