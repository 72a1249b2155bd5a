"""The code base passes ruff and is formatted by ruff format (configuration in pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def ruff(*arguments: str) -> subprocess.CompletedProcess:
    """Run the ruff of this environment in the repository root."""
    executable = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    return subprocess.run([executable, *arguments], cwd=ROOT, capture_output=True, text=True, check=False)


def test_ruff_reports_no_problems():
    result = ruff("check", "ssmtools", "tests", "benchmarks", "notebooks")
    assert result.returncode == 0, result.stdout + result.stderr


def test_code_is_formatted_as_ruff_format_writes_it():
    """The formatter of .pre-commit-config.yaml: ``ruff format`` leaves every file unchanged."""
    result = ruff("format", "--check", "ssmtools", "tests", "benchmarks")
    assert result.returncode == 0, "run `ruff format ssmtools tests benchmarks`:\n" + result.stdout + result.stderr
