"""Packaging: one version, written once in ``ssmtools/_version.py``; the type marker ships with the package."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import ssmtools

ROOT = Path(__file__).resolve().parents[1]


def test_built_metadata_carries_the_package_version(tmp_path):
    # Build the wheel metadata with the PEP 517 hook pip uses, in a fresh interpreter (so setuptools runs in the
    # checkout as it does at install time), and read it back with importlib.metadata.
    code = (
        "import sys; from setuptools import build_meta; print(build_meta.prepare_metadata_for_build_wheel(sys.argv[1]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    dist_info = result.stdout.strip().splitlines()[-1]
    built = metadata.PathDistribution(tmp_path / dist_info)
    assert built.metadata["Name"] == "ssmtools"
    assert built.version == ssmtools.__version__


def _installed_distribution() -> metadata.Distribution | None:
    """The distribution pip installed from this checkout (the one with a ``direct_url.json`` naming it).

    ``metadata.distribution("ssmtools")`` is not enough: from the checkout's root the build's own
    ``ssmtools.egg-info`` (no ``direct_url.json``) shadows the installed ``.dist-info``.
    """
    for dist in metadata.distributions(name="ssmtools"):
        direct_url = dist.read_text("direct_url.json")
        if direct_url and json.loads(direct_url).get("url", "").removeprefix("file://").rstrip("/") == str(ROOT):
            return dist
    return None


def _installed_from_this_checkout() -> bool:
    return _installed_distribution() is not None


@pytest.mark.skipif(
    not _installed_from_this_checkout(),
    reason="the installed ssmtools distribution was not installed from this checkout (CI installs "
    "it from the checkout, so the check runs there)",
)
def test_installed_version_matches_package_version():
    # Fails on a stale install too: an editable install records the version at install time, so after a version
    # bump run `pip install -e .` again.
    dist = _installed_distribution()
    assert dist is not None and dist.version == ssmtools.__version__


def test_package_ships_py_typed_marker():
    from setuptools.config.pyprojecttoml import read_configuration

    config = read_configuration(ROOT / "pyproject.toml", expand=False)
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["ssmtools"]
    assert (Path(ssmtools.__file__).parent / "py.typed").is_file()
