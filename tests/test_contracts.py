"""Executable contracts of the code base: types, layers, import placement, docstrings.

Each contract is checked module by module, so a failure names the module to fix:

- ``mypy``: ``python -m mypy`` with the ``[tool.mypy]`` configuration of pyproject.toml reports no error;
- ``layers``: the import-linter contract ``[tool.importlinter]`` (pyproject.toml) holds, i.e. no module imports a
  higher layer (lazy imports count);
- ``imports-at-top``: intra-package imports sit at module top level (``if TYPE_CHECKING:`` blocks included); a
  function may import only an optional or heavy third-party package (:data:`LAZY_IMPORTS_ALLOWED`);
- ``private-imports``: a private module of a subpackage (``ssmtools.pruning._bidir``) is imported only from inside
  that subpackage;
- ``docstrings``: numpydoc's validator finds none of :data:`DOCSTRING_CHECKS` in the public objects of a public
  module;
- ``library-errors``: argument errors are raised as ``ssmtools.errors`` classes (each an ``SSMToolsError`` and the
  built-in users catch), never as a bare ``ValueError``, ``TypeError``, ``KeyError`` or ``IndexError``;
- ``citations``: the source cites only documents inside the repository (no ``math.md`` / ``model_formats.md``
  background notes), and every ``derivations.md#anchor`` it cites exists in ``docs/concepts/derivations.md``.

Cases still being restructured under issue 13 are listed in :data:`PENDING_ISSUE_13`; they run as strict expected
failures, so an entry fails the suite as soon as its case is fixed and must then be removed.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ssmtools"

#: ``"<check>:<module>"`` -> why it still fails. Strict xfail: remove an entry as soon as its case passes.
PENDING_ISSUE_13: dict[str, str] = {}

CHECKS = ("mypy", "layers", "imports-at-top", "private-imports", "docstrings", "citations", "library-errors")

#: Third-party packages a function may import lazily: optional extras (torch, safetensors, msgpack), and
#: dependencies that are slow to import or only needed by one feature (matplotlib for plots, scipy.linalg for the pivoted QR of the HSVs, slycot/control for the
#: SLICOT cross-checks, rich/typer for the command line). Everything else is imported at module top.
LAZY_IMPORTS_ALLOWED = frozenset(
    {
        "torch",
        "matplotlib",
        "safetensors",
        "msgpack",
        "slycot",
        "control",
        "rich",
        "typer",
        "mpmath",
        "scipy",
        "threadpoolctl",
    }
    | {"transformers", "mambapy"}  # the Mamba calibration builds the original classes (extra "models")
)

#: numpydoc validation codes enforced on public objects. Chosen as what the API reference and the users rely on:
#: every public object has a docstring (GL08); its sections parse and render (GL06 unknown section, GL07 order,
#: PR10 ``name : type`` spacing); every parameter is documented, with a type and a description, and nothing
#: undocumented or stale is listed (PR01 missing, PR02 unknown, PR03 order, PR04 no type, PR06 canonical type
#: names, PR07 no description); what a function returns or yields is documented (RT01, YD01).
#: Not enforced, because they are style rather than content and would be noisy here: summary-line form (SS01–SS06:
#: the project writes one-sentence summaries that may wrap; "infinitive verb" is a pandas convention), an extended
#: summary (ES01), See Also (SA01) and Examples (EX01) on every object (examples are doctested where present, and
#: required by review for the top-level API, not by this check), a description under a self-explanatory return
#: type such as ``matplotlib.axes.Axes`` (RT03), capitalisation and final periods (PR08, PR09, RT04, RT05), and
#: the layout of quotes and blank lines (GL01–GL03, the formatter's business).
DOCSTRING_CHECKS = frozenset(
    {"GL06", "GL07", "GL08", "PR01", "PR02", "PR03", "PR04", "PR06", "PR07", "PR10", "RT01", "YD01"}
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULE_FILES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
MODULES = sorted(MODULE_FILES)
PUBLIC_MODULES = [name for name in MODULES if not any(part.startswith("_") for part in name.split("."))]


def _cases(check: str, modules: list[str]) -> list:
    params = []
    for module in modules:
        reason = PENDING_ISSUE_13.get(f"{check}:{module}")
        marks = [pytest.mark.xfail(strict=True, reason=f"issue 13: {reason}")] if reason else []
        params.append(pytest.param(module, id=module, marks=marks))
    return params


def test_pending_entries_name_existing_checks_and_modules():
    for key in PENDING_ISSUE_13:
        check, _, module = key.partition(":")
        assert check in CHECKS, f"PENDING_ISSUE_13[{key!r}]: unknown check {check!r}; use one of {CHECKS}"
        assert module in MODULES, f"PENDING_ISSUE_13[{key!r}]: no module {module!r} in ssmtools"


# --- mypy -------------------------------------------------------------------------------------------------------


@cache
def _mypy_errors() -> dict[str, list[str]]:
    from mypy import api

    stdout, stderr, status = api.run(
        [
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            "--no-color-output",
            "--no-error-summary",
            str(PACKAGE),
        ]
    )
    assert status in (0, 1), f"mypy did not run (exit status {status}):\n{stdout}\n{stderr}"
    errors: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        match = re.match(r"(?P<path>[^:]+\.py):\d+: error: ", line)
        if match:
            module = _module_name((ROOT / match["path"]).resolve())
            errors.setdefault(module, []).append(line)
    assert (status == 1) == bool(errors), f"mypy exit status {status} but parsed errors {errors}:\n{stdout}"
    return errors


@pytest.mark.parametrize("module", _cases("mypy", MODULES))
def test_mypy_reports_no_errors(module):
    assert _mypy_errors().get(module, []) == []


# --- layering (import-linter) -------------------------------------------------------------------------------------


@cache
def _layer_violations() -> dict[str, list[str]]:
    executable = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [executable, "--no-cache"],
        cwd=ROOT,  # reads pyproject.toml in cwd
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    output = result.stdout + result.stderr
    assert "ssmtools layers" in output, f"import-linter did not check the layers contract:\n{output}"
    violations: dict[str, list[str]] = {}
    if result.returncode == 0:
        return violations
    broken = output.split("Broken contracts", 1)[-1]
    for line in broken.splitlines():
        text = line.strip()
        chain = re.match(r"- (ssmtools[\w.]*) -> (ssmtools[\w.]*)", text)  # first link: the offending importer
        if chain:
            violations.setdefault(chain[1], []).append(text)
        elif text and not re.fullmatch(
            r"-+|ssmtools layers|\S+ is not allowed to import \S+:|(ssmtools[\w.]*)"
            r" -> (ssmtools[\w.]*).*|\(.*\)",
            text,
        ):
            pytest.fail(
                f"import-linter reported something this test does not attribute to a module: {text!r}\n{output}"
            )
    assert violations, f"import-linter failed but reported no import chain:\n{output}"
    return violations


@pytest.mark.parametrize("module", _cases("layers", MODULES))
def test_module_imports_only_lower_layers(module):
    assert _layer_violations().get(module, []) == []


# --- where intra-package imports happen (AST) ---------------------------------------------------------------------


def _parsed(module: str) -> ast.Module:
    return ast.parse(MODULE_FILES[module].read_text(encoding="utf-8"), filename=str(MODULE_FILES[module]))


def _imports_with_scope(tree: ast.Module):
    """(node, inside a function or class) for every import statement of the module."""

    def visit(node: ast.AST, nested: bool):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, nested
            inner = nested or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda)
            yield from visit(child, inner)

    yield from visit(tree, False)


def _absolute(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".") if MODULE_FILES[module].name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imported_modules(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The modules an import statement loads (for ``from x import y``: x, and x.y where y is a module)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = _absolute(module, node)
    return [base] + [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULE_FILES]


@pytest.mark.parametrize("module", _cases("imports-at-top", MODULES))
def test_function_level_imports_are_optional_third_party_only(module):
    misplaced = []
    for node, nested in _imports_with_scope(_parsed(module)):
        if not nested:
            continue
        for target in _imported_modules(module, node):
            top = target.split(".")[0]
            if top == "ssmtools" or top not in LAZY_IMPORTS_ALLOWED:
                misplaced.append(f"line {node.lineno}: {ast.unparse(node)}")
                break
    assert misplaced == [], (
        "imports inside functions or classes; move them to the module top (intra-package and standard-library "
        f"imports), or add the package to LAZY_IMPORTS_ALLOWED if it is optional/heavy third-party: {misplaced}"
    )


@pytest.mark.parametrize("module", _cases("private-imports", MODULES))
def test_private_submodules_are_imported_only_inside_their_package(module):
    offending = []
    for node, _ in _imports_with_scope(_parsed(module)):
        for target in _imported_modules(module, node):
            parts = target.split(".")
            for index in range(2, len(parts)):  # ssmtools._kernels (index 1) is private to the whole package
                owner = ".".join(parts[:index])
                if parts[index].startswith("_") and not (module == owner or module.startswith(owner + ".")):
                    offending.append(f"line {node.lineno}: {target} is private to {owner}")
                    break
    assert offending == [], f"use the public API of the subpackage (or move the helper to it): {offending}"


def test_import_scanner_resolves_relative_imports():
    tree = ast.parse("from ..pruning._bidir import x\nfrom . import _common\nimport os\n")
    found = [
        target for node, _ in _imports_with_scope(tree) for target in _imported_modules("ssmtools.plot.poles", node)
    ]
    assert found == ["ssmtools.pruning._bidir", "ssmtools.plot", "ssmtools.plot._common", "os"]


# --- docstrings (numpydoc) -----------------------------------------------------------------------------------------


def _public_objects(module: str) -> list[str]:
    """Dotted names of the public functions, classes and methods a public module provides.

    Those in ``__all__`` when present (skipping names re-exported from another public module, checked there), else
    the names not starting with ``_`` that are defined in the module; for classes also the public methods and
    properties the class itself defines.
    """
    mod = importlib.import_module(module)
    exported = getattr(mod, "__all__", None)
    names = []
    for name in exported if exported is not None else vars(mod):
        obj = getattr(mod, name)
        if not (inspect.isfunction(obj) or inspect.isclass(obj)):
            continue
        home = getattr(obj, "__module__", "")
        if exported is None and (name.startswith("_") or home != module):
            continue
        if exported is not None and home != module and home in PUBLIC_MODULES:
            continue
        if not getattr(obj, "_is_protocol", False):  # a typing.Protocol has no constructor to document
            names.append(f"{module}.{name}")
        if inspect.isclass(obj):
            names += [
                f"{module}.{name}.{attr}"
                for attr, value in vars(obj).items()
                if not attr.startswith("_")
                and (inspect.isfunction(value) or isinstance(value, property | classmethod | staticmethod))
            ]
    return names


@pytest.mark.parametrize("module", _cases("docstrings", PUBLIC_MODULES))
def test_public_docstrings_pass_numpydoc_validation(module):
    from numpydoc.validate import validate

    assert (importlib.import_module(module).__doc__ or "").strip(), f"{module} has no module docstring"
    problems = []
    for name in _public_objects(module):
        try:
            errors = validate(name)["errors"]
        except Exception as error:  # numpydoc could not read the object: report it, do not skip it
            errors = [("validate", f"numpydoc could not validate it: {error!r}")]
        problems += [
            f"{name}: {code} {message}" for code, message in errors if code in DOCSTRING_CHECKS or code == "validate"
        ]
    assert problems == []


def test_docstring_check_sees_the_public_api():
    objects = _public_objects("ssmtools.reduction")
    assert {"ssmtools.reduction.balanced_truncation", "ssmtools.reduction.ReductionResult"} <= set(objects)
    assert not any(name.rsplit(".", 1)[-1].startswith("_") for name in objects)


# --- citations ------------------------------------------------------------------------------------------------------

DERIVATIONS = ROOT / "docs" / "concepts" / "derivations.md"
EXTERNAL_NOTES = ("math.md", "model_formats.md")  # background notes outside the repository


def _anchors() -> set[str]:
    return set(re.findall(r"\{#([\w-]+)\}", DERIVATIONS.read_text(encoding="utf-8")))


def _citation_problems(text: str) -> list[str]:
    anchors = _anchors()
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        problems += [
            f"line {number}: cites {note} (outside the repository)"
            for note in EXTERNAL_NOTES
            if re.search(rf"(?<![\w/]){re.escape(note)}", line)
        ]
        problems += [
            f"line {number}: no anchor #{anchor} in {DERIVATIONS.name}"
            for anchor in re.findall(r"derivations\.md#([\w-]+)", line)
            if anchor not in anchors
        ]
    return problems


@pytest.mark.parametrize("module", _cases("citations", MODULES))
def test_module_cites_only_documents_in_the_repository(module):
    assert _citation_problems(MODULE_FILES[module].read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "page", sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").rglob("*.md")) + ["README.md"]
)
def test_docs_cite_only_documents_in_the_repository(page):
    assert _citation_problems((ROOT / page).read_text(encoding="utf-8")) == []


def test_citation_check_catches_external_notes_and_unknown_anchors():
    assert _anchors() >= {"standard-form", "state-hinf-pair-stable", "layer-h2", "lamp", "worked-example-e5"}
    problems = _citation_problems(
        "see math.md §3\nsee docs/concepts/derivations.md#no-such-anchor\nsee docs/concepts/derivations.md#lamp"
    )
    assert problems == [
        "line 1: cites math.md (outside the repository)",
        "line 2: no anchor #no-such-anchor in derivations.md",
    ]


#: Built-in exceptions a module may not raise directly: each has an ``ssmtools.errors`` subclass to raise instead.
BARE_ERRORS = {
    "ValueError": "ArgumentError",
    "TypeError": "ArgumentTypeError",
    "KeyError": "UnknownNameError",
    "IndexError": "BatchIndexError",
}


@pytest.mark.parametrize("module", _cases("library-errors", MODULES))
def test_argument_errors_are_library_errors(module):
    """``except ssmtools.SSMToolsError`` catches every argument error the library raises."""
    bare = []
    for node in ast.walk(_parsed(module)):
        if isinstance(node, ast.Raise) and node.exc is not None:
            call = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(call, ast.Name) and call.id in BARE_ERRORS:
                bare.append(f"line {node.lineno}: raise {call.id} (use ssmtools.errors.{BARE_ERRORS[call.id]})")
    assert bare == []


def test_library_errors_are_the_builtins_users_catch():
    import builtins

    import ssmtools.errors as errors

    for builtin, name in BARE_ERRORS.items():
        cls = getattr(errors, name)
        assert issubclass(cls, errors.SSMToolsError) and issubclass(cls, getattr(builtins, builtin))
