"""Adversarial inputs, one section per class of issue 18: every attack of a class, through the real entry point
(``python -m ssmtools`` in a subprocess) where the class is about the command line.

The invariant checked everywhere: an anticipated failure is exactly one ``error:`` line on stderr and exit 2 (a
traceback only with ``--debug``), the message names the file, the layer and the key, and no input or output is
damaged. File-safety classes 1–4 are in ``test_cli_file_safety.py``, the boundary rule of class 6 in
``test_boundary.py``.
"""

from __future__ import annotations

import copy
import json
import os
import re
import resource
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import ssmtools
from ssmtools import io
from ssmtools.adapters import flatten
from ssmtools.errors import FormatError

from .pruning.reference import s5_tree

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # this checkout, not an installed copy


def run_cli(*arguments, cwd, preexec_fn=None, script=None, stdout=subprocess.PIPE):
    command = [sys.executable, "-c", script, *map(str, arguments)] if script else [sys.executable, "-m", "ssmtools"]
    if not script:
        command += list(map(str, arguments))
    return subprocess.run(
        command,
        cwd=cwd,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=preexec_fn,
        env={**os.environ, "COLUMNS": "60", "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])},
    )


def one_error_line(result, *needles):
    """Exit 2, and stderr is exactly one ``error:`` line containing every needle."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.fixture
def leaves():
    flat, _ = flatten(s5_tree(np.random.default_rng(4), n_layers=1, P=4, H=3))
    return {key: np.array(value) for key, value in flat.items()}


def key_of(leaves, name):
    return next(key for key in leaves if key.endswith("/" + name))


@pytest.fixture
def checkpoint(tmp_path, leaves):
    path = tmp_path / "model.pt"
    torch.save({key: torch.from_numpy(value) for key, value in leaves.items()}, path)
    return path


# ------------------------------------------------------------------------ class 11: one line, exit 2, --debug
def test_debug_shows_the_traceback_that_is_otherwise_one_line(tmp_path):
    (tmp_path / "d.npz").mkdir()
    one_error_line(run_cli("analyze", "d.npz", cwd=tmp_path), "d.npz", "directory")
    result = run_cli("--debug", "analyze", "d.npz", cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" in result.stderr and "InputFileError" in result.stderr


def _limit_file_size():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (600, 600))  # writes past 600 bytes fail like a full disk (EFBIG)


def test_a_full_disk_during_a_pt_write_is_one_line_and_leaves_nothing(checkpoint, tmp_path):
    out = tmp_path / "out.pt"
    result = run_cli("prune", checkpoint, "--ratio", "0.5", "-o", out, cwd=tmp_path, preexec_fn=_limit_file_size)
    one_error_line(result, f"could not write {str(out)!r}", "nothing was written")
    assert ".tmp" not in result.stderr  # the user's path, never the hidden temporary
    assert sorted(p.name for p in tmp_path.iterdir()) == [checkpoint.name]


class _FullDisk:
    """A binary file on which every write past 600 bytes fails with ENOSPC."""

    def __init__(self, file):
        self.file, self.written = file, 0

    def write(self, data):
        self.written += len(data)
        if self.written > 600:
            raise OSError(28, "No space left on device")
        return self.file.write(data)

    def __getattr__(self, name):
        return getattr(self.file, name)


@pytest.mark.parametrize("fmt", io.FORMATS)
def test_every_writer_reports_a_full_disk_as_an_output_error(tmp_path, leaves, fmt):
    write = io.params_writer(ssmtools.load(leaves).params, fmt)
    with pytest.raises(io.OutputError, match=r"could not write .*out\.x.*No space left on device"):
        io.atomic_write(tmp_path / "out.x", lambda file: write(_FullDisk(file)))
    assert list(tmp_path.iterdir()) == []


def test_torch_write_failures_reported_as_runtime_errors_are_output_errors(tmp_path):
    def failing(file):
        raise RuntimeError("[enforce fail at inline_container.cc:595] . unexpected pos 64 vs 0\nfile write failed")

    with pytest.raises(io.OutputError, match="could not write .*x.pt.*file write failed"):
        io.atomic_write(tmp_path / "x.pt", failing)
    assert list(tmp_path.iterdir()) == []


_INTERRUPT = textwrap.dedent(
    """
    import os, signal, sys
    import ssmtools.io as io
    real, sig = io._write_torch, getattr(signal, sys.argv[1])
    def write(params, file):
        file.write(b"partial")
        os.kill(os.getpid(), sig)
        real(params, file)
    io._write_torch = write
    from ssmtools.cli import main
    sys.argv = ["ssmtools", *sys.argv[2:]]
    main()
    """
)


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_an_interrupt_during_a_pt_write_removes_the_temporary(checkpoint, tmp_path, sig):
    out = tmp_path / "out.pt"
    result = run_cli(sig, "prune", checkpoint, "--ratio", "0.5", "-o", out, cwd=tmp_path, script=_INTERRUPT)
    one_error_line(result, "interrupted", "nothing was written")
    assert sorted(p.name for p in tmp_path.iterdir()) == [checkpoint.name]


def test_the_sigterm_handler_is_restored_after_a_write(tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    io.atomic_write(tmp_path / "a.bin", lambda f: f.write(b"x"))
    with pytest.raises(io.OutputError):
        io.atomic_write(tmp_path / "b.bin", lambda f: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    assert signal.getsignal(signal.SIGTERM) is before


def test_meta_device_tensors_are_one_line(tmp_path, leaves):
    torch.save({key: torch.empty(value.shape, device="meta") for key, value in leaves.items()}, tmp_path / "m.pt")
    one_error_line(run_cli("analyze", "m.pt", cwd=tmp_path), "m.pt", "meta-device", key_of(leaves, "Lambda_re"))


def test_stdout_on_a_full_device_is_one_line(checkpoint, tmp_path):
    with open("/dev/full", "w") as full:
        result = run_cli("analyze", checkpoint, cwd=tmp_path, stdout=full)
    one_error_line(result, "standard output", "No space left")


def test_deeply_nested_trees_are_one_line(tmp_path):
    tree: dict = {"x": torch.zeros(1)}
    for _ in range(300):
        tree = {"a": tree}
    torch.save(tree, tmp_path / "deep.pt")
    one_error_line(run_cli("analyze", "deep.pt", cwd=tmp_path), "deep.pt", "nested")
    io.write_params({"a": {"x": np.zeros(1)}}, tmp_path / "ok.msgpack", "msgpack")  # the writer's own limit is lower
    deep = (tmp_path / "ok.msgpack").read_bytes()
    for _ in range(200):
        deep = b"\x81\xa1a" + deep  # {"a": ...} around the tree
    (tmp_path / "deep.msgpack").write_bytes(deep)
    with pytest.raises(FormatError, match="deep.msgpack: .*nested more than"):
        ssmtools.load(tmp_path / "deep.msgpack")
    with pytest.raises(FormatError, match="nested more than"):
        flatten(tree)


def test_flatten_keeps_depth_first_key_order():
    tree = {"a": {"x": 1, "y": {"z": 2}}, "b": 3, "c": {"d": 4}}
    leaves, paths = flatten(tree)
    assert list(leaves) == ["a/x", "a/y/z", "b", "c/d"] and paths["a/y/z"] == ("a", "y", "z")


# ------------------------------------------------------------------------ class 12: messages name file/layer/key
def test_a_non_finite_value_is_located_by_file_layer_key_and_index(tmp_path, leaves):
    key = key_of(leaves, "B")
    leaves[key][0, 1, 0] = np.nan
    np.savez(tmp_path / "bad.npz", **leaves)
    one_error_line(run_cli("analyze", "bad.npz", cwd=tmp_path), "bad.npz", repr(key), "index (0, 1, 0)", "NaN/Inf")


@pytest.mark.parametrize("name, index", [("Lambda_re", (2,)), ("Lambda_im", (0,)), ("D", (1,)), ("log_step", (3, 0))])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_every_non_finite_value_is_located(tmp_path, leaves, name, index, value):
    key = key_of(leaves, name)
    leaves[key][index] = value
    torch.save({k: torch.from_numpy(v) for k, v in leaves.items()}, tmp_path / "bad.pt")
    with pytest.raises(
        FormatError, match=rf"bad.pt: '{key}' holds 1 NaN/Inf value\(s\) \(the first at index {re.escape(str(index))}"
    ):
        ssmtools.load(tmp_path / "bad.pt")


@pytest.mark.parametrize(
    "family, tree, key",
    [
        ("s5", None, "log_step"),
        (
            "lru",
            {
                "nu_log": [800.0, 0.0],
                "theta_log": [0.0, 0.0],
                "B_re": np.ones((2, 2)),
                "B_im": np.zeros((2, 2)),
                "C_re": np.ones((2, 2)),
                "C_im": np.zeros((2, 2)),
            },
            "nu_log",
        ),
        ("s4d", {"log_dt": [800.0], "log_A_real": [[0.0]], "A_imag": [[1.0]], "C": np.ones((1, 1, 2))}, "log_dt"),
    ],
)
def test_an_overflowing_log_parameter_is_blamed_on_itself(tmp_path, leaves, family, tree, key):
    if tree is None:
        leaves[key_of(leaves, key)][0] = 800.0
        tree = leaves
    np.savez(tmp_path / "big.npz", **{k: np.asarray(v, dtype=float) for k, v in tree.items()})
    with pytest.raises(FormatError, match=f"big.npz: '[^']*{key}' overflows") as caught:  # no RuntimeWarning either
        ssmtools.load(tmp_path / "big.npz", family)
    assert "'B'" not in str(caught.value)
    if family == "s5":  # and through the command line, as one line with no warning before it
        result = run_cli("analyze", "big.npz", cwd=tmp_path)
        one_error_line(result, "big.npz", "overflows", key)
        assert "warning" not in result.stderr.lower()


def test_directories_fifos_and_unreadable_files_are_not_missing_files(tmp_path, monkeypatch, checkpoint):
    (tmp_path / "d.npz").mkdir()
    os.mkfifo(tmp_path / "f.npz")
    for name, message in [("d.npz", "is a directory"), ("f.npz", "is not a regular file"), ("gone.npz", "no such")]:
        with pytest.raises(io.InputFileError, match=f"{name}: {message}"):  # the FIFO is not opened (no blocking)
            ssmtools.load(tmp_path / name)
    with pytest.raises(FileNotFoundError):
        ssmtools.load(tmp_path / "gone.npz")

    def denied(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(io, "open", denied, raising=False)  # as root, chmod 000 would still be readable
    with pytest.raises(io.InputFileError, match="model.pt: permission denied"):
        io.read_params(checkpoint)


class _Opaque:
    pass


def test_unsafe_third_party_advice_is_never_passed_on(tmp_path, leaves):
    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}], dtype=object), **leaves)
    torch.save({"x": _Opaque(), **{k: torch.from_numpy(v) for k, v in leaves.items()}}, tmp_path / "obj.pt")
    line = one_error_line(run_cli("analyze", "obj.npz", cwd=tmp_path), "obj.npz", "never unpickles")
    assert "allow_pickle" not in line
    with pytest.raises(FormatError, match="obj.pt: holds pickled Python objects") as caught:
        ssmtools.load(tmp_path / "obj.pt")
    assert "weights_only" not in str(caught.value) and caught.value.__cause__ is None


def test_warnings_are_one_line_without_source(tmp_path, leaves):
    key = key_of(leaves, "Lambda_re")
    leaves[key][0] = 0.5  # an unstable state: analyze warns, then prints inf
    np.savez(tmp_path / "u.npz", **leaves)
    result = run_cli("analyze", "u.npz", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines and all(line.startswith("warning: ") for line in lines), result.stderr


# ------------------------------------------------------------------------ class 13: API validation
def _plan_dict():
    from .pruning.test_results import small_model

    return json.loads(ssmtools.prune_plan(small_model(), 0.5, "last").to_json())


def _without(data, *path):
    data = copy.deepcopy(data)
    node = data
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    return data


def _with(data, value, *path):
    data = copy.deepcopy(data)
    node = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return data


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: _without(d, "layers"), "the plan lacks the key 'layers'"),
        (lambda d: _without(d, "criterion"), "lacks the key 'criterion'"),
        (lambda d: _without(d, "layers", 1, "keep"), r"layers\[1\] lacks the key 'keep'"),
        (lambda d: _without(d, "layers", 0, "n_kept"), r"layers\[0\] lacks the key 'n_kept'"),
        (lambda d: _with(d, "0.5", "ratio"), "'ratio' must be a float, got str"),
        (lambda d: _with(d, 1.5, "ratio"), r"ratio 1.5 is not in \[0, 1\)"),
        (lambda d: _with(d, "a", "layers"), "'layers' must be a list"),
        (lambda d: _with(d, [1], "layers"), r"layers\[0\] must be a JSON object"),
        (lambda d: _with(d, 3.5, "layers", 0, "n_total"), "'n_total' must be a int"),
        (lambda d: _with(d, 99, "layers", 0, "n_total"), r"layer 'a'\): inconsistent counts: n_total=99"),
        (lambda d: _with(d, 3, "layers", 0, "n_kept"), "n_kept=3 but keep marks 1 states kept"),
        (lambda d: _with(d, 5, "layers", 0, "n_unstable"), "n_unstable=5 ≤ n_total=4"),
        (lambda d: _with(d, [4, 1], "layers", 0, "keep", "shape"), r"4 values for shape \(4, 1\)|keep \(4, 1\)"),
        (lambda d: _with(d, [1, 0, 0, 0], "layers", 0, "keep", "data"), "values must all be booleans"),
        (lambda d: _with(d, [2], "layers", 0, "scores", "shape"), r"scores: 4 values for shape \(2,\)"),
        (lambda d: _with(d, "b", "layers", 0, "name"), "names a layer twice"),
        (lambda d: _with(d, 3, "version"), "version 3 is not supported"),
        (lambda d: [d], "not a serialised PruningPlan.*a JSON list"),
    ],
)
def test_malformed_or_inconsistent_plans_are_format_errors(tmp_path, edit, message):
    text = json.dumps(edit(_plan_dict()))
    with pytest.raises(FormatError, match=message):
        ssmtools.PruningPlan.from_json(text)
    (tmp_path / "plan.json").write_text(text)
    with pytest.raises(FormatError, match="plan.json: "):  # a file: its name leads the message
        ssmtools.PruningPlan.from_json(tmp_path / "plan.json")


def test_plan_json_text_is_never_taken_for_a_path(tmp_path):
    for text in ("[]", '  \n ["x"]', '"plan"', "null", '\t{"format": 1}'):
        with pytest.raises(FormatError, match="the JSON text: not a serialised PruningPlan"):
            ssmtools.PruningPlan.from_json(text)
    with pytest.raises(FormatError, match=r"the JSON text: is not valid JSON \(.* line 1, column"):
        ssmtools.PruningPlan.from_json("{not json")
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(FormatError, match="bad.json: is not valid JSON"):
        ssmtools.PruningPlan.from_json(tmp_path / "bad.json")
    with pytest.raises(io.InputFileError, match="gone.json: no such"):
        ssmtools.PruningPlan.from_json(tmp_path / "gone.json")
    plan = ssmtools.PruningPlan.from_json(json.dumps(_plan_dict()))  # a valid plan still reads
    assert plan.n_removed == 5


@pytest.mark.parametrize(
    "name, options, error",
    [
        ("random", {"seed": 1.5}, "must be an integer"),
        ("random", {"seed": True}, "must be an integer"),
        ("random", {"seed": -1}, "must be ≥ 0"),
        ("last-official", {"c_scale": 0.0}, "positive finite"),
        ("aire", {"c_scale": -2.0}, "positive finite"),
        ("aire", {"c_scale": float("nan")}, "positive finite"),
        ("last-official", {"c_scale": "2"}, "must be a number"),
        ("uniform-hinf", {"exact": "no"}, "True or False"),
    ],
)
def test_criterion_options_are_checked_against_their_types(name, options, error):
    from ssmtools.pruning import get_criterion

    with pytest.raises(ssmtools.SSMToolsError, match=error):
        get_criterion(name, **options)


@pytest.mark.parametrize("setting", [{"step_rescale": 0.0}, {"step_rescale": -1.0}, {"conj_sym": "no"}])
def test_family_settings_are_checked(leaves, setting):
    with pytest.raises(ssmtools.SSMToolsError, match="setting"):
        ssmtools.load(leaves, "s5", **setting)


@pytest.mark.parametrize("argument", [{"seed": 1.5}, {"seed": -1}, {"n_states": 0}, {"width": 2.0}])
def test_example_models_check_their_counts(argument):
    with pytest.raises(ssmtools.SSMToolsError, match=next(iter(argument))):
        ssmtools.examples.random_s5_model(**argument)


@pytest.mark.parametrize("norm", ["hinf_norm", "h2_norm"])
def test_slycot_failures_become_library_errors_with_a_fix(monkeypatch, norm):
    import slycot

    def raising(*args, **kwargs):
        raise slycot.exceptions.SlycotArithmeticError("The computation did not converge", 2)

    monkeypatch.setattr(slycot, "ab13dd", raising)
    monkeypatch.setattr(slycot, "ab13bd", raising)
    poles = np.array([-1e-9 + 1j, -1e-9 - 1j])
    system = ssmtools.DiagonalSSM(poles, np.ones((2, 1)), np.ones((1, 2)), np.zeros((1, 1)), dt=0)
    with pytest.raises(ssmtools.SSMToolsError, match="SLICOT AB13.D failed.*use method="):
        getattr(ssmtools, norm)(system, method="slycot")
    empty = ssmtools.DiagonalSSM(np.zeros(0), np.ones((0, 1)), np.ones((1, 0)), np.full((1, 1), 2.0), dt=True)
    monkeypatch.undo()
    assert getattr(ssmtools, norm)(empty, method="slycot") == pytest.approx(2.0)  # n = 0: ‖D‖, no raw error


# ------------------------------------------------------------------------ class 5: training state is refused
def _training_checkpoint(leaves, *, optimizer=True, ema=True):
    model = {key.replace("/", "."): torch.from_numpy(value) for key, value in leaves.items()}
    checkpoint = {"model": model, "epoch": 3}
    if optimizer:
        checkpoint["optimizer"] = {
            "state": {
                i: {"step": torch.tensor(3.0), "exp_avg": torch.zeros_like(t)} for i, t in enumerate(model.values())
            },
            "param_groups": [{"lr": 1e-3, "params": list(range(len(model)))}],
        }
    if ema:
        checkpoint["ema"] = {key: value.clone() for key, value in model.items()}
    return checkpoint


def test_the_cli_refuses_to_prune_a_checkpoint_with_optimizer_state_or_ema(tmp_path, leaves):
    torch.save(_training_checkpoint(leaves), tmp_path / "train.pt")
    result = run_cli("prune", "train.pt", "--ratio", "0.5", "-o", "out.pt", cwd=tmp_path)
    one_error_line(result, "train.pt", "training state", "['ema', 'optimizer']", "optimizer/state/0/exp_avg")
    assert not (tmp_path / "out.pt").exists()


@pytest.mark.parametrize("optimizer, ema", [(True, False), (False, True)])
def test_every_kind_of_training_state_is_refused_by_every_write_back(leaves, optimizer, ema):
    model = ssmtools.load(_training_checkpoint(leaves, optimizer=optimizer, ema=ema))
    name = "optimizer" if optimizer else "ema"
    with pytest.raises(FormatError, match=f"training state .*{name}"):
        ssmtools.last_prune(model, 0.5)
    keep = {layer: np.arange(model[layer].system.n_states) < 2 for layer in model}
    with pytest.raises(FormatError, match="could not be resumed"):
        model.apply(keep)
    with pytest.raises(FormatError, match="could not be resumed"):
        model.adapter.replace(model, {layer: model[layer] for layer in model})


def test_flax_train_states_are_refused_and_plain_weights_are_not(leaves):
    from ssmtools.adapters import training_state_keys

    tree = s5_tree(np.random.default_rng(4), n_layers=1, P=4, H=3)
    train_state = {"params": tree["params"], "opt_state": {"0": {"mu": tree["params"], "count": np.zeros(())}}}
    assert training_state_keys(train_state)[0].startswith("opt_state/0/mu/")
    with pytest.raises(FormatError, match="'opt_state'"):
        ssmtools.last_prune(train_state, 0.5)
    model_only = _training_checkpoint(leaves, optimizer=False, ema=False)  # {"model": ..., "epoch": 3}
    pruned, plan = ssmtools.last_prune(model_only, 0.5)
    assert plan.n_removed == 2 and pruned["epoch"] == 3
    assert training_state_keys({"layers.0.emb": np.zeros(1), "emanuel": np.zeros(1)}) == []


# ------------------------------------------------------------------------ class 10: resource bombs
def test_a_compressed_npz_bomb_is_refused_before_it_expands(tmp_path, leaves):
    np.savez_compressed(tmp_path / "bomb.npz", **leaves, pad=np.zeros(2**23))  # 64 MiB of zeros in ~70 KB
    assert (tmp_path / "bomb.npz").stat().st_size < 2**20
    result = run_cli("--memory-budget", "16M", "analyze", "bomb.npz", cwd=tmp_path)
    one_error_line(result, "bomb.npz", "declares 64.0 MiB", "memory budget of 16.0 MiB", "SSMTOOLS_MEMORY_BUDGET")
    assert ssmtools.load(tmp_path / "bomb.npz").n_states == 4  # within the default budget it reads


@pytest.mark.parametrize("fmt, suffix", [("safetensors", ".safetensors"), ("torch", ".pt"), ("msgpack", ".msgpack")])
def test_every_format_declares_its_size_before_loading(tmp_path, leaves, fmt, suffix):
    path = tmp_path / f"big{suffix}"
    io.write_params({**leaves, "pad": np.zeros(2**18)}, path, fmt)  # 2 MiB of array data
    assert 2**21 <= io.declared_bytes(path, fmt) <= 2**21 + 2**16
    with pytest.raises(io.MemoryBudgetError, match=f"big{re.escape(suffix)}: declares 2.0 MiB .*budget of 1.0 MiB"):
        io.read_params(path, memory_budget="1M")
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("SSMTOOLS_MEMORY_BUDGET", "1M")
    with pytest.raises(io.MemoryBudgetError):
        ssmtools.load(path)
    monkeypatch.undo()
    assert io.read_params(path)[1] == fmt


def test_a_safetensors_header_that_lies_about_its_size_is_refused(tmp_path):
    header = json.dumps({"x": {"dtype": "F64", "shape": [2**30], "data_offsets": [0, 2**33]}}).encode()
    (tmp_path / "lie.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + bytes(64))
    with pytest.raises(FormatError, match="declares 8589934592 bytes of tensor data but the file holds 64"):
        ssmtools.load(tmp_path / "lie.safetensors")
    (tmp_path / "short.safetensors").write_bytes((2**40).to_bytes(8, "little") + b"{}")
    with pytest.raises(FormatError, match="header declares 1099511627776 bytes but the file has 10"):
        ssmtools.load(tmp_path / "short.safetensors")


@pytest.mark.parametrize("value, bytes_", [("8G", 8 * 2**30), ("512m", 512 * 2**20), ("1.5KiB", 1536), (4096, 4096)])
def test_memory_budget_sizes(value, bytes_):
    assert io.memory_budget(value) == bytes_


@pytest.mark.parametrize("value", ["lots", "-1G", 0, True, "G"])
def test_bad_memory_budgets_are_argument_errors(value):
    with pytest.raises(ssmtools.SSMToolsError, match="memory budget"):
        io.memory_budget(value)


def test_h2_of_a_large_layer_works_in_blocks_and_matches_the_gramian_sum():
    from ssmtools import _kernels
    from ssmtools.systems import augmented_realization

    system = ssmtools.examples.random_s5_model(1, 60, 3, seed=2)["layers_0"]
    lam, B, C = augmented_realization(system)
    cross = C @ B
    gramian = B @ B.conj().T / (1 - lam[:, None] * lam[None, :].conj())  # the dense reference, n×n
    reference = np.real(np.trace(C @ gramian @ C.conj().T)) + np.sum(np.abs(system.D) ** 2)
    reference += 2 * np.real(np.sum(system.D.conj() * cross))
    for block in (1, 7 * 120, 2**20):  # one row per block, a ragged last block, everything at once
        value = _kernels.h2_squared_diagonal(
            lam, B, C, system.D, discrete=True, feedthrough_cross=cross, block_elements=block
        )
        assert value == pytest.approx(reference, rel=1e-12)


def test_the_progress_bar_goes_to_a_terminal_stderr_only_and_not_with_quiet(monkeypatch):
    from io import StringIO

    from rich.console import Console

    from ssmtools.cli import _app

    for terminal, quiet, shown in ((True, False, True), (True, True, False), (False, False, False)):
        stream = StringIO()
        monkeypatch.setattr(_app, "errors", Console(file=stream, force_terminal=terminal, width=80))
        monkeypatch.setitem(_app._state, "quiet", quiet)
        assert list(_app.progress(["a", "b", "c"], "norms")) == ["a", "b", "c"]
        assert ("norms" in stream.getvalue()) is shown, (terminal, quiet, stream.getvalue())
