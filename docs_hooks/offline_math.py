"""mkdocs hook: serve MathJax from the built site, so formulas render without the internet.

MathJax 3 comes from the ``django-static-mathjax`` package of the ``docs`` extra (a plain copy of the
MathJax distribution; Django itself is not needed). At build time this hook copies the one combined
component the pages load (TeX input, CommonHTML output), its web fonts and the TeX extensions that
MathJax's autoload may fetch into ``assets/mathjax/`` of the site; ``mkdocs.yml`` loads it from there.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import mathjax

SOURCE = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
TARGET = Path("assets") / "mathjax"
COMPONENT = "tex-chtml.js"
FOLDERS = ("output/chtml/fonts/woff-v2", "input/tex/extensions")


def on_post_build(config, **kwargs) -> None:
    """Copy the MathJax component, its fonts and the autoloaded TeX extensions into the built site."""
    target = Path(config["site_dir"]) / TARGET
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(SOURCE / COMPONENT, target / COMPONENT)
    for folder in FOLDERS:
        shutil.copytree(SOURCE / folder, target / folder, dirs_exist_ok=True)
