"""``ssmtools plot``, ``ssmtools report``, ``analyze --json``, the generated CLI page and the install-path messages,
through the real entry point in a subprocess (``python -m ssmtools``) on S5, S4D and LRU checkpoints."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import control
import numpy as np
import pytest
from PIL import Image

import ssmtools
from ssmtools.cli._reference import BEGIN, END, cli_reference
from ssmtools.pruning import available_criteria, prune_plan

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"


def run_cli(*arguments, cwd, env=None, timeout=300):
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "ssmtools", *map(str, arguments)],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def one_error_line(result) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture
def s5_checkpoint(tmp_path):
    from .pruning.reference import s5_tree

    path = tmp_path / "s5.npz"
    ssmtools.save(ssmtools.load(s5_tree(np.random.default_rng(3), n_layers=2, P=4, H=3)), path)
    return path


def s4d_checkpoint(tmp_path):
    from .adapters.test_s4d import _minimal_tree

    path = tmp_path / "s4d.safetensors"
    ssmtools.save(ssmtools.load(_minimal_tree(5)), path)
    return path


def lru_checkpoint(tmp_path):
    torch = pytest.importorskip("torch")
    from .adapters.test_lru import _package

    path = tmp_path / "lru.pt"
    torch.save(_package(2).state_dict(), path)  # the LRU-pytorch package's own module
    return path


def check_figure(data: bytes, fmt: str) -> None:
    if fmt == "png":
        assert data.startswith(PNG)
        Image.open(io.BytesIO(data)).verify()
    elif fmt == "svg":
        assert ET.fromstring(data).tag.endswith("svg")
    else:
        assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")


# ---------------------------------------------------------------------------------------------------- plot
@pytest.mark.parametrize(
    ("family", "kind", "fmt"),
    [("s5", "poles", "svg"), ("s4d", "bode", "pdf"), ("s5", "plan", "png")],
)
def test_plot_writes_the_figure_of_every_family(s5_checkpoint, tmp_path, family, kind, fmt):
    checkpoint = {
        "s5": lambda: s5_checkpoint,
        "s4d": lambda: s4d_checkpoint(tmp_path),
        "lru": lambda: lru_checkpoint(tmp_path),
    }[family]()
    before = checkpoint.read_bytes()
    out = tmp_path / f"figure.{fmt}"
    extra = ["--ratio", "0.3"] if kind == "plan" else []
    result = run_cli("plot", checkpoint, "--kind", kind, "-o", out, *extra, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wrote {out}"
    check_figure(out.read_bytes(), fmt)
    assert checkpoint.read_bytes() == before


def test_plot_default_output_and_one_layer(s5_checkpoint, tmp_path):
    name = next(iter(ssmtools.load(s5_checkpoint)))
    result = run_cli("plot", s5_checkpoint, "--kind", "hsv", "--layer", name, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    check_figure((tmp_path / "s5-hsv.png").read_bytes(), "png")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--kind", "nyquist"], "--kind 'nyquist' is not a figure; choose one of sigma, bode, poles"),
        (["--kind", "plan"], "--kind plan shows a pruning plan; pass --ratio R"),
        (["-o", "fig.jpg"], "cannot write a figure as '.jpg'; name a .png, .svg, .pdf file"),
        (["--layer", "nope"], "no layer named 'nope'; layers are"),
        (["--ratio", "1.5", "--kind", "plan"], "ratio"),
    ],
)
def test_plot_bad_input_is_one_line_exit_2(s5_checkpoint, tmp_path, arguments, message):
    line = one_error_line(run_cli("plot", s5_checkpoint, *arguments, cwd=tmp_path))
    assert message in line


@pytest.mark.parametrize("command", ["plot", "report"])
def test_figure_outputs_never_replace_the_input_and_need_force(s5_checkpoint, tmp_path, command):
    before = s5_checkpoint.read_bytes()
    link = tmp_path / "alias.png"
    link.symlink_to(s5_checkpoint)
    line = one_error_line(run_cli(command, s5_checkpoint, "-o", link, cwd=tmp_path))
    assert "is the same file as the input" in line
    assert s5_checkpoint.read_bytes() == before
    existing = tmp_path / ("old.png" if command == "plot" else "old.html")
    existing.write_bytes(b"keep me")
    assert "already exists; pass --force" in one_error_line(
        run_cli(command, s5_checkpoint, "-o", existing, cwd=tmp_path)
    )
    assert existing.read_bytes() == b"keep me"
    if command == "plot":
        assert run_cli(command, s5_checkpoint, "--kind", "hsv", "-o", existing, "--force", cwd=tmp_path).returncode == 0
        check_figure(existing.read_bytes(), "png")


def test_model_figure_pole_maps_are_the_margin_view_of_every_layer():
    from .pruning.reference import s5_tree

    model = ssmtools.load(s5_tree(np.random.default_rng(1), n_layers=3, P=4, H=2))
    fig = ssmtools.plot.model_figure(model, "poles")
    panels = [ax for ax in fig.axes if any(c.get_gid() == "poles" for c in ax.collections)]
    assert len(panels) == len(model)
    for ax, layer in zip(panels, model.values()):
        (poles,) = [c for c in ax.collections if c.get_gid() == "poles"]
        np.testing.assert_allclose(poles.get_offsets()[:, 0], np.angle(layer.system.poles.ravel()))
        np.testing.assert_allclose(poles.get_offsets()[:, 1], 1 - np.abs(layer.system.poles.ravel()), rtol=1e-9)
        assert ax.get_yscale() == "log"


# -------------------------------------------------------------------------------------------------- report
class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _report(checkpoint, tmp_path, *extra):
    out = tmp_path / "report.html"
    result = run_cli("report", checkpoint, "-o", out, *extra, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wrote {out}"
    return out, out.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def s5_report(tmp_path_factory):
    """(checkpoint, report text) of an S5 checkpoint with a plan at ratio 0.3, written once for the module."""
    from .pruning.reference import s5_tree

    tmp_path = tmp_path_factory.mktemp("report")
    checkpoint = tmp_path / "s5.npz"
    ssmtools.save(ssmtools.load(s5_tree(np.random.default_rng(3), n_layers=2, P=4, H=3)), checkpoint)
    return checkpoint, _report(checkpoint, tmp_path, "--ratio", "0.3")[1]


def _images(text: str) -> list[bytes]:
    parser = _Tags()
    parser.feed(text)
    for tag, attrs in parser.tags:
        assert tag not in ("script", "link", "iframe", "object", "embed"), f"report loads <{tag}>"
        for key in ("src", "href"):
            assert not re.match(r"\s*(https?:)?//", attrs.get(key) or ""), (
                f"<{tag} {key}={attrs[key]!r}> needs a network"
            )
    sources = [attrs["src"] for tag, attrs in parser.tags if tag == "img"]
    assert all(src.startswith("data:image/png;base64,") for src in sources)
    return [base64.b64decode(src.split(",", 1)[1], validate=True) for src in sources]


def test_report_is_one_self_contained_file_with_the_tables_and_figures(s5_report):
    checkpoint, text = s5_report
    images = _images(text)
    model = ssmtools.load(checkpoint)
    assert len(images) == 1 + 2 * len(model) + 3  # σ of all, (σ, poles) per layer, scores, HSVs, plan
    for data in images:
        check_figure(data, "png")
    for name, layer in model.items():  # the analyze table, against SLICOT AB13DD on the layer's realization
        value, _ = control.linfnorm(layer.system.to_control(), tol=1e-10)
        assert name in text and f"{float(value):.6g}" in text
    plan = prune_plan(model, 0.3, "last")
    assert f"removed {plan.n_removed} of {plan.n_total} stored states" in text
    for layer in plan.layers:
        assert f"<td>{layer.n_kept}/{layer.n_total}</td><td>{layer.hinf_error:.4g}</td>" in text


@pytest.mark.parametrize("family", ["s4d", "lru"])
def test_report_of_s4d_and_lru_checkpoints(tmp_path, family):
    checkpoint = s4d_checkpoint(tmp_path) if family == "s4d" else lru_checkpoint(tmp_path)
    _, text = _report(checkpoint, tmp_path)
    for data in _images(text):
        check_figure(data, "png")
    assert f"({family})" in text and "Pruning plan" not in text


def test_report_figures_that_cannot_be_drawn_become_a_note():
    unstable = ssmtools.DiagonalSSM(np.array([0.5, 1.02]), np.ones((2, 1)), np.ones((1, 2)), dt=True)
    with pytest.warns(ssmtools.errors.UnstableSystemWarning):
        text = ssmtools.html_report.html_report(ssmtools.SSMModel.from_systems({"bad": unstable}))
    assert re.search(r'<p class="note">Hankel singular value decay[^<]*: not drawn \(', text)
    assert '<tr class="unstable"><td>bad</td>' in text


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed (apt-get install chromium)")
def test_report_opens_in_headless_chromium_with_every_figure_loaded(s5_report, tmp_path):
    _, text = s5_report
    probe = (
        "<script>window.addEventListener('load', () => { const images = [...document.images]; "
        "document.body.setAttribute('data-loaded', images.filter(i => i.complete && i.naturalWidth > 0).length "
        "+ '/' + images.length); });</script>"
    )
    page = tmp_path / "probe.html"  # the report itself stays script-free; the probe is added to a copy
    page.write_text(text.replace("</body>", probe + "</body>"), encoding="utf-8")
    result = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=10000",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    match = re.search(r'data-loaded="(\d+)/(\d+)"', result.stdout)
    assert match, result.stderr[-2000:]
    loaded, total = map(int, match.groups())
    assert total == len(_images(text)) > 0 and loaded == total


# -------------------------------------------------------------------------------------------- analyze --json
def test_analyze_json_is_the_versioned_table(s5_checkpoint, tmp_path):
    out = tmp_path / "norms.json"
    result = run_cli("analyze", s5_checkpoint, "--json", out, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    document = json.loads(out.read_text(encoding="utf-8"))
    assert (document["schema"], document["version"], document["family"]) == ("ssmtools.analyze", 1, "s5")
    model = ssmtools.load(s5_checkpoint)
    assert [layer["name"] for layer in document["layers"]] == list(model)
    for entry, layer in zip(document["layers"], model.values()):
        value, peak = control.linfnorm(layer.system.to_control(), tol=1e-10)  # SLICOT AB13DD
        assert entry["hinf"] == pytest.approx(float(value), rel=1e-7)
        assert entry["norm"] == "Hinf" and entry["stable"] is True
        assert entry["h2"] == pytest.approx(float(control.norm(layer.system.to_control(), p=2)), rel=1e-7)
    assert "already exists; pass --force" in one_error_line(
        run_cli("analyze", s5_checkpoint, "--json", out, cwd=tmp_path)
    )
    assert "same file as the input" in one_error_line(
        run_cli("analyze", s5_checkpoint, "--json", s5_checkpoint, cwd=tmp_path)
    )


def test_analyze_json_writes_unstable_norms_as_strings():
    unstable = ssmtools.DiagonalSSM(np.array([0.5, 1.02]), np.ones((2, 1)), np.ones((1, 2)), dt=True)
    with pytest.warns(ssmtools.errors.UnstableSystemWarning):
        text = ssmtools.report.summary_json(ssmtools.SSMModel.from_systems({"bad": unstable}))
    (layer,) = json.loads(text)["layers"]
    assert layer["hinf"] == "inf" and layer["stable"] is False


def test_docs_cli_page_is_generated_from_the_cli():
    page = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    generated = page[page.index(BEGIN) : page.index(END) + len(END) + 1]
    assert generated == cli_reference(), "docs/cli.md is stale: run python -m ssmtools.cli._reference"
    for command in ("analyze", "demo", "plot", "prune", "report"):
        assert f"### ssmtools {command}\n" in generated


# ------------------------------------------------------------------------------------------- install paths
@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_core_install_names_the_extra_in_one_line(s5_checkpoint, tmp_path, suffix):
    path = tmp_path / f"model{suffix}"
    ssmtools.save(ssmtools.load(s5_checkpoint), path)
    code = (
        "import sys\n"
        "for name in ('torch', 'safetensors', 'safetensors.numpy'):\n"
        "    sys.modules[name] = None  # as on a core-only install: importing them fails\n"
        f"sys.argv = ['ssmtools', 'analyze', {str(path)!r}]\n"
        "from ssmtools.cli import main\n"
        "main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    line = one_error_line(result)
    if suffix == ".pt":
        assert "needs torch, which is not installed" in line and "pip install torch==2.13.0" in line
    else:
        assert 'needs safetensors, which is not installed: pip install "ssmtools[io]"' in line
    assert not re.search(r"pip install torch(?!==)", line)  # never a bare (CUDA-resolving) torch install


def test_version_and_ascii_terminal(tmp_path):
    result = run_cli("--version", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout == f"ssmtools {ssmtools.__version__}\n"
    result = run_cli(
        "demo", "--layers", "1", "--states", "3", "--width", "2", cwd=tmp_path, env={"PYTHONIOENCODING": "ascii"}
    )
    assert result.returncode == 0, result.stderr
    assert "H-inf" in result.stdout and "UnicodeEncodeError" not in result.stderr
    widths = {len(line) for line in result.stdout.splitlines() if line.startswith("|")}
    assert len(widths) <= 2  # the norm table and the plan table, each aligned


@pytest.mark.parametrize("command", ["prune", "plot", "report"])
def test_help_lists_every_criterion_in_full_on_a_narrow_terminal(tmp_path, command):
    result = run_cli(command, "--help", cwd=tmp_path, env={"COLUMNS": "60", "TERMINAL_WIDTH": "60"})
    assert result.returncode == 0
    assert "…" not in result.stdout  # rich cuts words that do not fit a table cell
    text = re.sub(r"[\s│]+", "", result.stdout)  # the help as one line: rich wraps long lists (after hyphens too)
    missing = [name for name in available_criteria() if f"{name}," not in text and f"{name}." not in text]
    assert not missing


def mamba_checkpoint(tmp_path, version: int) -> Path:
    """A small random Hugging Face Mamba (1) or Mamba-2 language model's state dict, as safetensors."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    torch.manual_seed(version)
    common = {"vocab_size": 40, "hidden_size": 16, "state_size": 4, "num_hidden_layers": 2, "expand": 2}
    if version == 1:
        model = transformers.MambaForCausalLM(transformers.MambaConfig(**common, conv_kernel=3))
    else:
        config = transformers.Mamba2Config(**common, head_dim=8, num_heads=4, n_groups=1, conv_kernel=3)
        model = transformers.Mamba2ForCausalLM(config)
    state = {key: value.contiguous() for key, value in model.state_dict().items() if key != "lm_head.weight"}
    path = tmp_path / f"mamba{version}.safetensors"
    safetensors_torch.save_file(state, str(path))
    return path


@pytest.mark.parametrize("version", [1, 2])
def test_plot_and_report_of_mamba_checkpoints_show_the_labelled_view(tmp_path, version):
    checkpoint = mamba_checkpoint(tmp_path, version)
    model = ssmtools.load(checkpoint)
    assert model.family == ("mamba" if version == 1 else "mamba2")
    out = tmp_path / "poles.png"
    result = run_cli("plot", checkpoint, "--kind", "poles", "-o", out, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    check_figure(out.read_bytes(), "png")
    _, text = _report(checkpoint, tmp_path)
    images = _images(text)
    assert len(images) == 1 + 2 * len(model) + 2  # σ of all, (σ, poles) per layer, scores, HSVs
    for data in images:
        check_figure(data, "png")
    assert "LTI view 'bias'" in text and text.count("(LTI view: bias)") == len(model)  # never shown as LTI
    for name, layer in model.items():  # the view's H∞ (max over channels), against SLICOT AB13DD per channel
        channels = [layer.system[index] for index in np.ndindex(*layer.system.batch_shape)]
        value = max(float(control.linfnorm(channel.to_control(), tol=1e-10)[0]) for channel in channels)
        assert name in text and f"{value:.6g}" in text
