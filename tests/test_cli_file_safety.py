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
