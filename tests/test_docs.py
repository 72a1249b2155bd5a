"""The documentation site: ``mkdocs build --strict`` passes, and the API reference covers the public API.

The build renders every docstring (mkdocstrings) and every notebook (mkdocs-jupyter), so a docstring
griffe cannot parse, a dead link or a page missing from the nav fails here. The notebooks themselves are
executed by nbmake in the same pytest run (``testpaths`` includes ``notebooks/``), so this build skips
their execution (``SSMTOOLS_DOCS_EXECUTE=false``); one small notebook is executed through the same
mkdocs-jupyter configuration to check that executed pages carry their figures.
"""

from __future__ import annotations

import functools
import html
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """Build the site once into a temporary folder (nothing is written into the repository)."""
    out = tmp_path_factory.mktemp("site")
    return build(ROOT / "mkdocs.yml", out, execute=False)


def build(config: Path, out: Path, *, execute: bool) -> Path:
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", SSMTOOLS_DOCS_EXECUTE=str(execute).lower())
    env.pop("MPLBACKEND", None)  # conftest's Agg would stop the kernels' inline backend from emitting figures
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config), "--site-dir", str(out)],
        cwd=config.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout[-4000:]}\n{result.stderr[-8000:]}"
    return out


FIGURE = re.compile(r'<img[^>]*src="data:image/png')


def api_anchor_ids(site: Path) -> set[str]:
    ids: set[str] = set()
    for page in (site / "api").rglob("index.html"):
        ids.update(re.findall(r'id="(ssmtools[\w.]*)"', page.read_text(encoding="utf-8")))
    return ids


PUBLIC_API_SCRIPT = """
import inspect, json, ssmtools

def defined_in(value, module):
    # defined in module, or re-exported by a package from one of its public submodules
    defined = getattr(value, "__module__", None) or ""
    rest = defined[len(module) + 1:] if defined.startswith(module + ".") else None
    return defined == module or (rest is not None and not any(p.startswith("_") for p in rest.split(".")))

found = {}
for name in dir(ssmtools):
    obj = getattr(ssmtools, name)
    if name.startswith("_"):
        continue
    if inspect.ismodule(obj):
        if not obj.__name__.startswith("ssmtools.") or any(p.startswith("_") for p in obj.__name__.split(".")):
            continue
        members = getattr(obj, "__all__", None) or [
            m for m, v in vars(obj).items()
            if not m.startswith("_") and (inspect.isfunction(v) or inspect.isclass(v)) and defined_in(v, obj.__name__)
        ]
        for m in members:
            v = getattr(obj, m)
            found[obj.__name__ + "." + m] = v.__module__ + "." + v.__qualname__
    elif inspect.isfunction(obj) or inspect.isclass(obj):
        found["ssmtools." + name] = obj.__module__ + "." + obj.__qualname__
print(json.dumps(found))
"""


def public_objects() -> dict[str, str]:
    """Qualified name -> canonical ``module.qualname`` of every public function/class that ``import ssmtools``
    exposes: top-level re-exports and the public members of the public submodules it imports.

    Computed in a fresh interpreter, so modules other tests happened to import do not count."""
    result = subprocess.run([sys.executable, "-c", PUBLIC_API_SCRIPT], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def test_mkdocs_build_strict_passes(site):
    assert (site / "index.html").is_file()
    assert (site / "api" / "norms" / "index.html").is_file()


def test_every_public_name_appears_in_the_api_reference(site):
    ids = api_anchor_ids(site)
    missing = []
    for qualified, canonical in public_objects().items():
        public = ".".join(part for part in canonical.split(".") if not part.startswith("_"))  # via its package
        if qualified not in ids and canonical not in ids and public not in ids:
            missing.append(qualified)
    assert not missing, f"not in the API reference (docs/api/*.md): {sorted(missing)}"
    assert {"ssmtools.norms.hinf_norm", "ssmtools.plot.sigma", "ssmtools.systems.DiagonalSSM"} <= ids


def test_api_reference_shows_docstrings(site):
    page = (site / "api" / "norms" / "index.html").read_text(encoding="utf-8")
    assert html.escape("H2 norm of every one-state subsystem", quote=False) in page
    plot_page = (site / "api" / "plot" / "index.html").read_text(encoding="utf-8")
    assert "Singular-value (sigma) plot of one layer" in plot_page


class _ConfigLoader(yaml.SafeLoader):
    """mkdocs.yml with ``!ENV [NAME, default]`` read as its default."""


_ConfigLoader.add_constructor("!ENV", lambda loader, node: loader.construct_sequence(node)[-1])


def read_config() -> dict:
    return yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=_ConfigLoader)


def nav_files(node) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [f for item in node for f in nav_files(item)]
    if isinstance(node, dict):
        return [f for value in node.values() for f in nav_files(value)]
    return []


def test_every_page_and_notebook_is_in_the_nav():
    config = read_config()
    listed = set(nav_files(config["nav"]))
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    notebooks = {f"notebooks/{p.name}" for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert pages | notebooks <= listed, f"not in mkdocs.yml nav: {sorted((pages | notebooks) - listed)}"
    assert listed <= pages | notebooks, f"nav entries without a file: {sorted(listed - pages - notebooks)}"


def test_site_renders_formulas_and_every_notebook(site):
    norms = (site / "concepts" / "norms" / "index.html").read_text(encoding="utf-8")
    assert norms.count('class="arithmatex"') > 20  # formulas go through MathJax
    assert 'id="per-state-norms"' in norms  # the anchor the norms module's docstrings cite
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        rendered = (site / "notebooks" / notebook.stem / "index.html").read_text(encoding="utf-8")
        assert "import ssmtools as st" in html.unescape(re.sub(r"<[^>]+>", "", rendered)), notebook.name


def test_executed_notebook_pages_show_their_figures(tmp_path):
    """The site's own mkdocs-jupyter settings (execute on) turn a plotting notebook into a page with its figure."""
    import nbformat

    config = read_config()
    jupyter = next(p["mkdocs-jupyter"] for p in config["plugins"] if isinstance(p, dict) and "mkdocs-jupyter" in p)
    (tmp_path / "docs" / "notebooks").mkdir(parents=True)
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("import ssmtools as st\nst.plot.sigma(st.examples.s5_layer_e5());")]
    )
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, tmp_path / "docs" / "notebooks" / "figure.ipynb")
    site_config = {
        "site_name": "figure check",
        "strict": True,
        "theme": {"name": "material"},
        "nav": [{"figure": "notebooks/figure.ipynb"}],
        "plugins": [{"mkdocs-jupyter": dict(jupyter, execute=True)}],
    }
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(site_config), encoding="utf-8")
    out = build(tmp_path / "mkdocs.yml", tmp_path / "site", execute=True)
    page = (out / "notebooks" / "figure" / "index.html").read_text(encoding="utf-8")
    assert len(FIGURE.findall(page)) == 1


def test_notebooks_are_stored_without_outputs():
    import nbformat

    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        dirty = [
            i
            for i, cell in enumerate(notebook.cells)
            if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
        ]
        assert not dirty, f"{path.name}: cells {dirty} have stored outputs; clear them before committing"


BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


class _Site(http.server.SimpleHTTPRequestHandler):
    """Serves the built site and records every path asked for (the browser's own log of what it loaded)."""

    requested: list[str]

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        self.requested.append(self.path)


@pytest.fixture
def served(site):
    """The built site on a loopback port, with the list of paths the browser requested."""
    requested: list[str] = []
    handler = type("Handler", (_Site,), {"requested": requested})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requested
    finally:
        server.shutdown()
        server.server_close()


def test_formulas_render_offline_in_a_browser(served, tmp_path):
    """Headless Chromium, with every host but the loopback unresolvable, typesets the formulas of concepts/norms.

    Raw TeX is gone, every formula became a MathJax container, and the browser fetched MathJax's TeX fonts from
    the site (containers whose glyph styles were dropped draw nothing and fetch only MathJax_Zero)."""
    browser = find_browser()
    if browser is None:
        pytest.skip(f"no headless browser found (looked for {', '.join(BROWSERS)}); install Debian's chromium")
    base, requested = served
    result = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",  # offline: only the site answers
            "--virtual-time-budget=20000",
            "--dump-dom",
            f"{base}/concepts/norms/",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    spans = re.findall(r'<(span|div) class="arithmatex">(.*?)</\1>', dom, re.S)
    assert len(spans) > 20
    raw = [text for _, text in spans if "mjx-container" not in text]
    assert not raw, f"formulas left as TeX: {raw[:3]}"
    assert "\\(" not in html.unescape(re.sub(r"<[^>]+>", "", dom.split("<body", 1)[1]))
    assert "/assets/mathjax/tex-chtml.js" in requested
    fonts = {Path(p).name for p in requested if p.endswith(".woff")}
    assert {"MathJax_Main-Regular.woff", "MathJax_Math-Italic.woff"} <= fonts, sorted(fonts)


def test_pages_load_nothing_from_the_network(site):
    """No page loads a script, stylesheet or font from another host (the site works offline)."""
    external = re.compile(r'<(?:script|link)\b[^>]*\b(?:src|href)="(?:https?:)?//[^"]*"[^>]*>')
    found = {}
    for page in site.rglob("*.html"):
        loaded = [t for t in external.findall(page.read_text(encoding="utf-8")) if 'rel="canonical"' not in t]
        if loaded:
            found[page.relative_to(site).as_posix()] = loaded[:2]
    assert not found, found


def test_last_is_credited_to_its_authors():
    """The LAST paper (NeurIPS 2024, arXiv 2411.02824) is by Minseon Gwak, Seongrok Moon, Joohwan Ko, PooGyeon Park."""
    for page in ("concepts/pruning.md", "concepts/derivations.md"):
        text = (DOCS / page).read_text(encoding="utf-8")
        assert "M. Gwak, S. Moon, J. Ko, P. Park" in text, page
    pruning = (DOCS / "concepts" / "pruning.md").read_text(encoding="utf-8")
    assert "Minseon Gwak, Seongrok Moon, Joohwan Ko and PooGyeon Park" in pruning
    assert "(0, 1]$, keep" not in pruning  # zero raw scores normalise to 0: the range is [0, 1]


SPHINX_ROLE = re.compile(r":(?:func|class|meth|attr|data|mod|exc|obj):(?:<code>|`)")


def test_api_reference_has_no_literal_sphinx_roles(site):
    """No rendered page shows a literal Sphinx role (docs_hooks/sphinx_roles.py turns roles into cross-references)."""
    found = {}
    for page in (site / "api").rglob("index.html"):
        roles = SPHINX_ROLE.findall(page.read_text(encoding="utf-8"))
        if roles:
            found[page.parent.name] = len(roles)
    assert not found, f"literal Sphinx roles on the API pages: {found}"
    norms = (site / "api" / "norms" / "index.html").read_text(encoding="utf-8")
    assert re.search(r'<a[^>]+href="[^"]*#ssmtools\.norms\.hinf_result"', norms)  # cross-references became links
