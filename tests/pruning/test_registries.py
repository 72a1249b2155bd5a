"""Names shown to users come from the registries: docs tables, CLI help, prune_plan's docstring; and the
pipeline has no string checks on criterion names nor duck-typed probing."""

from __future__ import annotations

import re
from pathlib import Path

import typer
from typer.testing import CliRunner

from ssmtools.cli import app
from ssmtools.pruning import available_criteria, available_reductions, get_criterion, prune_plan

ROOT = Path(__file__).resolve().parents[2]


def table_names(page: str, heading: str) -> set[str]:
    """Backticked names in the first column of the Markdown table under ``heading``."""
    section = page.split(heading, 1)[1]
    table = re.search(r"\n(\|.*?\n)(?:\n|$)", section, re.S).group(1)
    return {match for row in table.splitlines()[2:] for match in re.findall(r"^\|\s*`([^`]+)`", row)}


def test_the_concepts_page_lists_exactly_the_registered_names():
    page = (ROOT / "docs" / "concepts" / "pruning.md").read_text(encoding="utf-8")
    assert table_names(page, "## The criteria in ssmtools") == set(available_criteria())
    assert table_names(page, "## Reductions") == set(available_reductions())


def rst_table_names(doc: str) -> set[str]:
    """Names ````"name"```` opening the rows of the first reST table of a docstring."""
    return set(re.findall(r'^``"([a-z0-9-]+)"``', doc, re.M))


def test_module_tables_list_exactly_the_registered_names():
    from ssmtools.pruning import criteria, reductions

    assert rst_table_names(criteria.__doc__ or "") == set(available_criteria())
    assert rst_table_names(reductions.__doc__ or "") == set(available_reductions())


def test_cli_help_lists_the_registered_names():
    command = typer.main.get_command(app).commands["prune"]  # type: ignore[attr-defined]
    # listed in the full-width epilog, where narrow terminals wrap them instead of cutting them off
    assert "Criteria (--criterion): " + ", ".join(available_criteria()) + "." in command.epilog
    assert "Reductions (--reduction): " + ", ".join(available_reductions()) + "." in command.epilog
    assert CliRunner().invoke(app, ["prune", "--help"]).exit_code == 0


def test_prune_plan_docstring_names_no_criterion_by_hand():
    doc = prune_plan.__doc__ or ""
    assert "available_criteria" in doc and "available_reductions" in doc
    assert not [name for name in available_criteria() if f'"{name}"' in doc]


def test_default_reductions_are_registered():
    for name in available_criteria():
        assert get_criterion(name).default_reduction in available_reductions()


def test_no_name_checks_or_duck_typing_in_the_pipeline():
    source = "\n".join(path.read_text(encoding="utf-8") for path in (ROOT / "ssmtools" / "pruning").glob("*.py"))
    assert not re.search(r"criterion\s*[!=]=\s*[\"']", source)
    assert "getattr(crit" not in source and '"reduce_layer")' not in source
