"""File safety of the command line, through the real entry point in a subprocess: no command destroys an input or
another of its outputs, whatever the spelling of the paths (the class of defects, not one example)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import ssmtools


@pytest.fixture
def checkpoint(tmp_path):
    from .pruning.reference import s5_tree

    path = tmp_path / "model.npz"
    ssmtools.save(ssmtools.load(s5_tree(np.random.default_rng(4), n_layers=1, P=4, H=3)), path)
    return path


def run_cli(*arguments, cwd):
    return subprocess.run(
        [sys.executable, "-m", "ssmtools", *map(str, arguments)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _aliases(checkpoint, tmp_path):
    """Other spellings of the input: relative with ./.., a symlink, a hard link."""
    (tmp_path / "sub").mkdir()
    link, hard = tmp_path / "link.npz", tmp_path / "hard.npz"
    link.symlink_to(checkpoint)
    os.link(checkpoint, hard)
    return [checkpoint, f"sub/../{checkpoint.name}", link, hard]


@pytest.mark.parametrize("which", ["--plan-json", "-o"])
def test_no_output_may_be_the_input_under_any_spelling(checkpoint, tmp_path, which):
    before = checkpoint.read_bytes()
    for alias in _aliases(checkpoint, tmp_path):
        arguments = [
            "prune",
            checkpoint,
            "--ratio",
            "0.5",
            "-o",
            tmp_path / "out.npz",
            "--plan-json",
            tmp_path / "p.json",
        ]
        arguments[arguments.index(which) + 1] = alias
        result = run_cli(*arguments, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert "refusing to overwrite" in result.stderr and "Traceback" not in result.stderr
        assert checkpoint.read_bytes() == before
        assert not (tmp_path / "out.npz").exists() and not (tmp_path / "p.json").exists()  # nothing was written


def test_outputs_may_not_be_the_same_file(checkpoint, tmp_path):
    out = tmp_path / "out.npz"
    result = run_cli("prune", checkpoint, "--ratio", "0.5", "-o", out, "--plan-json", out, cwd=tmp_path)
    assert result.returncode == 2 and "same file" in result.stderr
    assert not out.exists()


def test_outputs_may_not_be_directories_or_special_files(checkpoint, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for target, message in ((f"{tmp_path}{os.sep}", "directory"), (tmp_path, "directory"), (fifo, "not a regular")):
        result = run_cli("prune", checkpoint, "--ratio", "0.5", "-o", target, cwd=tmp_path)
        assert result.returncode == 2 and message in result.stderr, result.stderr
    assert fifo.exists() and not fifo.is_file()  # the FIFO was not replaced


def test_existing_outputs_need_force_and_then_are_replaced(checkpoint, tmp_path):
    out = tmp_path / "out.npz"
    out.write_bytes(b"not mine")
    os.chmod(out, 0o644)
    result = run_cli("prune", checkpoint, "--ratio", "0.5", "-o", out, cwd=tmp_path)
    assert result.returncode == 2 and "--force" in result.stderr and out.read_bytes() == b"not mine"
    result = run_cli("prune", checkpoint, "--ratio", "0.5", "-o", out, "--force", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert ssmtools.load(out).n_states == 2 and (out.stat().st_mode & 0o777) == 0o644  # replaced, mode kept


def test_all_outputs_or_none(checkpoint, tmp_path):
    """A plan that cannot be written (its directory is missing) leaves no checkpoint behind either."""
    out = tmp_path / "out.npz"
    result = run_cli(
        "prune", checkpoint, "--ratio", "0.5", "-o", out, "--plan-json", tmp_path / "no" / "p.json", cwd=tmp_path
    )
    assert result.returncode == 2 and "does not exist" in result.stderr
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_new_outputs_get_the_umask_mode(checkpoint, tmp_path):
    out = tmp_path / "out.npz"
    result = subprocess.run(
        ["sh", "-c", f'umask 022 && "{sys.executable}" -m ssmtools prune "{checkpoint}" --ratio 0.5 -o "{out}"'],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (out.stat().st_mode & 0o777) == 0o644


def test_a_failed_commit_restores_every_destination(tmp_path, monkeypatch):
    from ssmtools import io

    first, second = tmp_path / "a.bin", tmp_path / "b.bin"
    first.write_bytes(b"old a")
    real_replace, calls = os.replace, []

    def failing_replace(src, dst):
        calls.append(dst)
        if len(calls) == 2 and str(dst) == str(second):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(io.os, "replace", failing_replace)
    with pytest.raises(OSError, match="No space"):
        io.atomic_write_all([(first, lambda f: f.write(b"new a")), (second, lambda f: f.write(b"new b"))])
    assert first.read_bytes() == b"old a" and not second.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]  # no temporaries or backups left


def test_demo_with_a_negative_seed_is_a_usage_error(tmp_path):
    result = run_cli("demo", "--seed", "-1", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr


@pytest.mark.parametrize("P, H", [(0, 3), (3, 0)])
def test_empty_layers_are_a_one_line_error(tmp_path, P, H):
    seq = {
        "Lambda_re": -np.ones(P),
        "Lambda_im": np.zeros(P),
        "B": np.zeros((P, H, 2)),
        "C": np.zeros((H, P, 2)),
        "D": np.ones(H),
        "log_step": np.zeros((P, 1)),
    }
    path = tmp_path / "empty.npz"
    np.savez(path, **{f"layers_0/seq/{key}": value for key, value in seq.items()})
    result = run_cli("analyze", path, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "layers_0/seq" in result.stderr and "at least one" in result.stderr


def test_error_messages_are_one_line_at_any_terminal_width(checkpoint, tmp_path):
    env = {**os.environ, "COLUMNS": "40"}
    result = subprocess.run(
        [sys.executable, "-m", "ssmtools", "prune", str(checkpoint), "--ratio", "0.5", "-o", str(checkpoint)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "refusing to overwrite" in result.stderr
