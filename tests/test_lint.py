"""The code base passes ruff and is formatted by ruff format (configuration in pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_reports_no_problems():
    executable = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    result = subprocess.run(
        [executable, "check", "ssmtools", "tests", "benchmarks", "notebooks"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_code_is_formatted_as_ruff_format_writes_it():
    """The formatter of .pre-commit-config.yaml: ``ruff format`` leaves every file unchanged."""
    executable = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    result = subprocess.run(
        [executable, "format", "--check", "ssmtools", "tests", "benchmarks"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, "run `ruff format ssmtools tests benchmarks`:\n" + result.stdout + result.stderr
