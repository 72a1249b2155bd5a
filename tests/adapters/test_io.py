"""Checkpoint files: formats, atomic writes, refusal to overwrite the input, clear errors on bad files."""

from __future__ import annotations

import os

import msgpack
import numpy as np
import pytest

import ssmtools
from ssmtools import io as ssm_io
from ssmtools.errors import FormatError

from .reference import simulate

torch = pytest.importorskip("torch")
s5 = pytest.importorskip("s5")

H, P = 3, 4


def _flax_tree(seed=0):
    rng = np.random.default_rng(seed)
    seq = {
        "Lambda_re": -rng.uniform(0.1, 1, P).astype(np.float32),
        "Lambda_im": rng.uniform(-2, 2, P).astype(np.float32),
        "B": rng.standard_normal((P, H, 2)).astype(np.float32),
        "C": rng.standard_normal((H, P, 2)).astype(np.float32),
        "D": rng.standard_normal(H).astype(np.float32),
        "log_step": rng.uniform(-4, -1, (P, 1)).astype(np.float32),
    }
    return {"params": {"encoder": {"layers_0": {"seq": seq}, "encoder": {"kernel": np.ones((2, H), np.float32)}}}}


def _s5_state(seed=0):
    torch.manual_seed(seed)
    return s5.S5(width=H, state_width=P).state_dict()


def _flax_bytes(tree) -> bytes:
    """flax.serialization.to_bytes layout, built here from its documented format (ext 1 = ndarray)."""

    def default(obj):
        if isinstance(obj, np.ndarray):
            return msgpack.ExtType(1, msgpack.packb((obj.shape, obj.dtype.name, obj.tobytes("C")), use_bin_type=True))
        raise TypeError(type(obj))

    return msgpack.packb(tree, default=default, use_bin_type=True, strict_types=True)


def _assert_trees_equal(a, b):
    if isinstance(a, dict):
        assert set(a) == set(b)
        for key in a:
            _assert_trees_equal(a[key], b[key])
    else:
        a = a.numpy() if hasattr(a, "numpy") else a
        b = b.numpy() if hasattr(b, "numpy") else b
        assert np.asarray(a).dtype == np.asarray(b).dtype
        np.testing.assert_array_equal(a, b)


def test_flax_msgpack_read_matches_flax_layout_and_roundtrips(tmp_path):
    tree = _flax_tree()
    path = tmp_path / "ckpt.msgpack"
    path.write_bytes(_flax_bytes(tree))
    model = ssmtools.load(path)
    assert model.family == "s5" and model.source == str(path)
    _assert_trees_equal(model.params, tree)
    pruned = model.apply({"params/encoder/layers_0/seq": np.array([True, False, True, True])})
    out = ssmtools.save(pruned, tmp_path / "pruned.msgpack")
    again = ssmtools.load(out)
    _assert_trees_equal(again.params, pruned.params)
    # our writer produces what a flax reader expects: decode it here with plain msgpack
    raw = msgpack.unpackb(out.read_bytes(), raw=False)
    ext = raw["params"]["encoder"]["layers_0"]["seq"]["B"]
    assert isinstance(ext, msgpack.ExtType) and ext.code == 1
    shape, dtype, buffer = msgpack.unpackb(ext.data, raw=False)
    assert tuple(shape) == (3, H, 2) and dtype == "float32" and len(buffer) == 3 * H * 2 * 4


@pytest.mark.parametrize("suffix", [".safetensors", ".npz", ".pt"])
def test_nested_flax_tree_through_flat_formats_keeps_layer_names(tmp_path, suffix):
    model = ssmtools.load(_flax_tree(3))
    name = "params/encoder/layers_0/seq"
    path = ssmtools.save(model, tmp_path / f"flax{suffix}")
    again = ssmtools.load(path)
    assert list(again) == [name]
    np.testing.assert_allclose(again[name].system.poles, model[name].system.poles, rtol=1e-6)
    pruned = again.apply({name: np.array([False, True, True, False])})
    ssmtools.save(pruned, tmp_path / f"pruned{suffix}")
    assert ssmtools.load(tmp_path / f"pruned{suffix}")[name].n_states == 2


def test_msgpack_chunked_scalars_and_complex(tmp_path):
    big = np.arange(10, dtype=np.float64)
    chunked = {"__msgpack_chunked_array__": True, "shape": {"0": 2, "1": 5}, "chunks": {"0": big[:6], "1": big[6:]}}

    def default(obj):
        if isinstance(obj, np.ndarray):
            return msgpack.ExtType(1, msgpack.packb((obj.shape, obj.dtype.name, obj.tobytes()), use_bin_type=True))
        if isinstance(obj, complex):
            return msgpack.ExtType(2, msgpack.packb((obj.real, obj.imag)))
        if isinstance(obj, np.generic):
            a = np.asarray(obj)
            return msgpack.ExtType(3, msgpack.packb((a.shape, a.dtype.name, a.tobytes()), use_bin_type=True))
        raise TypeError(type(obj))

    data = msgpack.packb(
        {"w": chunked, "z": 1 + 2j, "s": np.float32(3)}, default=default, use_bin_type=True, strict_types=True
    )
    path = tmp_path / "x.msgpack"
    path.write_bytes(data)
    params, fmt = ssm_io.read_params(path)
    assert fmt == "msgpack"
    np.testing.assert_array_equal(params["w"], big.reshape(2, 5))
    assert params["z"] == 1 + 2j and params["s"] == np.float32(3) and params["s"].dtype == np.float32


@pytest.mark.parametrize("suffix", [".pt", ".safetensors", ".npz", ".msgpack"])
def test_s5_pytorch_state_dict_through_every_format(tmp_path, suffix):
    state = _s5_state(1)
    source = tmp_path / "in.pt"
    torch.save(state, source)
    model = ssmtools.load(source)
    keep = np.array([True, True, False, True])
    pruned = model.apply({"seq": keep})
    out = ssmtools.save(pruned, tmp_path / f"out{suffix}")
    reloaded = ssmtools.load(out)
    assert reloaded.family == "s5-pytorch"
    np.testing.assert_allclose(reloaded["seq"].system.poles, model["seq"].system.poles[keep], rtol=1e-6)
    if suffix == ".safetensors":
        from safetensors.torch import load_file

        tensors = load_file(out)
    elif suffix == ".pt":
        tensors = torch.load(out, weights_only=True)
    else:
        tensors = {k: torch.as_tensor(np.asarray(v)) for k, v in reloaded.params.items()}
    smaller = s5.S5(width=H, state_width=3)
    smaller.load_state_dict(tensors, strict=True)
    assert smaller.seq.Lambda.dtype == torch.complex64
    u = np.random.default_rng(2).standard_normal((10, H))
    with torch.no_grad():
        y = smaller(torch.as_tensor(u, dtype=torch.float32)[None]).numpy()[0]
    np.testing.assert_allclose(y, simulate(pruned["seq"].system, u), atol=1e-5)


def test_save_refuses_to_overwrite_the_input(tmp_path):
    source = tmp_path / "model.pt"
    torch.save(_s5_state(), source)
    before = source.read_bytes()
    model = ssmtools.load(source)
    pruned = model.apply({"seq": np.array([True, False, True, True])})
    with pytest.raises(ssm_io.OverwriteError, match="refusing to overwrite the input checkpoint"):
        ssmtools.save(pruned, source)
    link = tmp_path / "link.pt"
    link.symlink_to(source)
    with pytest.raises(ssm_io.OverwriteError):
        ssmtools.save(pruned, link)
    with pytest.raises(ssm_io.OverwriteError):
        ssmtools.save(pruned, os.path.join(tmp_path, "sub", "..", "model.pt"))
    assert source.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.pt", "model.pt"]


def test_failed_write_leaves_target_and_directory_untouched(tmp_path, monkeypatch):
    model = ssmtools.load(_flax_tree())
    target = tmp_path / "out.npz"
    target.write_bytes(b"previous content")

    def broken(params, file):
        file.write(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(ssm_io, "_write_npz", broken)
    with pytest.raises(ssm_io.OutputError, match="out.npz.*disk full"):
        ssmtools.save(model, target)
    assert target.read_bytes() == b"previous content"
    assert [p.name for p in tmp_path.iterdir()] == ["out.npz"]


def test_non_array_leaf_is_a_clear_error_and_writes_nothing(tmp_path):
    tree = _flax_tree()
    tree["step"] = "not an array"
    model = ssmtools.load(tree)
    with pytest.raises(FormatError, match="'step' is not an array"):
        ssmtools.save(model, tmp_path / "out.npz")
    assert list(tmp_path.iterdir()) == []


def test_format_inference(tmp_path):
    source = tmp_path / "in.npz"
    np.savez(
        source,
        **{
            "seq.Lambda": np.array([-0.5 + 1j, -0.2 + 0j]),
            "seq.B": np.ones((2, H, 2)),
            "seq.C": np.ones((H, 2), complex),
            "seq.D": np.ones(H),
            "seq.log_step": np.zeros(2),
        },
    )
    model = ssmtools.load(source)
    assert model.family == "s5-pytorch"
    out = ssmtools.save(model, tmp_path / "copy.weights")  # unknown extension: the source's format
    assert np.load(out, allow_pickle=False)["seq.D"].shape == (H,)
    out = ssmtools.save(model, tmp_path / "as_torch.bin", format="torch")
    assert torch.load(out, weights_only=True)["seq.Lambda"].dtype == torch.complex128
    with pytest.raises(FormatError, match="cannot tell the format"):
        ssmtools.save(ssmtools.load(dict(model.params)), tmp_path / "x.weights")


@pytest.mark.parametrize("suffix", [".pt", ".safetensors", ".npz", ".msgpack"])
def test_corrupt_and_truncated_files(tmp_path, suffix):
    good = tmp_path / f"good{suffix}"
    model = ssmtools.load(_flax_tree())
    ssmtools.save(
        model,
        good,
        format={".pt": "torch", ".safetensors": "safetensors", ".npz": "npz", ".msgpack": "msgpack"}[suffix],
    )
    data = good.read_bytes()
    truncated = tmp_path / f"truncated{suffix}"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match=f"truncated{suffix}"):
        ssmtools.load(truncated)
    garbage = tmp_path / f"garbage{suffix}"
    garbage.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(FormatError, match=f"garbage{suffix}"):
        ssmtools.load(garbage)


def test_non_ssm_checkpoint_and_missing_files(tmp_path):
    path = tmp_path / "mlp.pt"
    torch.save(torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1)).state_dict(), path)
    with pytest.raises(FormatError, match=r"mlp.pt: no layer of a known SSM family found \(keys: 0.weight"):
        ssmtools.load(path)
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        ssmtools.load(tmp_path / "nope.pt")
    with pytest.raises(FormatError, match="unknown checkpoint extension '.ckpt'"):
        ssmtools.load(tmp_path / "model.ckpt")
    bad = tmp_path / "bad_shape.npz"
    np.savez(
        bad,
        **{
            "seq.Lambda": np.ones(2, complex),
            "seq.B": np.ones((2, H)),
            "seq.C": np.ones((H, 2), complex),
            "seq.D": np.ones(H),
            "seq.log_step": np.zeros(2),
        },
    )
    with pytest.raises(FormatError, match=r"bad_shape.npz: 'seq.B' has shape \(2, 3\), expected \(2, \?, 2\)"):
        ssmtools.load(bad)


def test_module_source_and_custom_model_errors():
    model = ssmtools.load(s5.S5(width=H, state_width=P))
    assert list(model) == ["seq"] and model.source is None
    custom = ssmtools.SSMModel.from_systems([model["seq"].system])
    with pytest.raises(ValueError, match="Load a checkpoint"):
        custom.apply({"layer_0": np.ones(P, bool)})
    with pytest.raises(ValueError, match="no parameters to save"):
        ssmtools.save(custom, "unused.pt")
