"""Every public function and class of ``ssmtools`` documents every parameter (numpydoc style)."""

from __future__ import annotations

import inspect
import re

import pytest

import ssmtools

PUBLIC = sorted(
    name
    for name in dir(ssmtools)
    if not name.startswith("_")
    and (inspect.isfunction(getattr(ssmtools, name)) or inspect.isclass(getattr(ssmtools, name)))
)


def documented_parameters(doc: str) -> set[str]:
    match = re.search(r"Parameters\n\s*-+\n(.*?)(\n\s*\n\s*[A-Z][a-z]+\n\s*-+\n|\Z)", doc, re.S)
    if not match:
        return set()
    names = set()
    for line in match.group(1).splitlines():
        entry = re.match(r"\s*([\w*, ]+?)\s*:", line)
        if entry and not line.startswith(" " * 8):
            names.update(part.strip().lstrip("*") for part in entry.group(1).split(","))
    return names


@pytest.mark.parametrize("name", PUBLIC)
def test_public_callable_documents_its_parameters(name):
    obj = getattr(ssmtools, name)
    if inspect.isclass(obj) and issubclass(obj, BaseException | Warning):
        assert obj.__doc__, f"{name} has no docstring"
        return
    doc = inspect.getdoc(obj) or ""
    assert doc, f"{name} has no docstring"
    target = obj.__init__ if inspect.isclass(obj) and "__init__" in vars(obj) else obj
    try:
        parameters = [
            p
            for p in inspect.signature(target).parameters.values()
            if p.name not in ("self", "cls") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
    except (TypeError, ValueError):
        return
    if not parameters:
        return
    missing = [p.name for p in parameters if p.name not in documented_parameters(doc)]
    assert not missing, f"{name}: parameters {missing} are not documented in its docstring's Parameters section"


def test_registries_are_reachable_from_the_top_level_package():
    """The names users pass as strings can be listed from ``import ssmtools`` alone."""
    assert ssmtools.available_criteria() == ssmtools.pruning.available_criteria()
    assert {"last", "last-official", "last-exact"} <= set(ssmtools.available_criteria())
    assert ssmtools.available_reductions() == ssmtools.pruning.available_reductions()
    assert set(ssmtools.available_families()) >= {"s5", "s5-pytorch", "s4d", "lru"}
    assert ssmtools.available_families() == ssmtools.adapters.available_families()
