"""Griffe extension: Sphinx roles in docstrings become mkdocstrings cross-references when the API is rendered.

The source keeps the roles numpydoc and IDEs understand (``:func:`hinf_norm```, ``:class:`~ssmtools.DiagonalSSM```);
the rendered pages get an optional autorefs reference (a link where the target is documented, plain code
otherwise), so no page ever shows a literal role and a target that is not rendered never fails the strict build.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|attr|data|mod|exc|obj|const):`(~?)([^`<>]+?)`")


def _canonical(obj: Any, target: str) -> str:
    """The canonical path of ``target`` as seen from ``obj`` (best effort; ``target`` itself otherwise)."""
    path = target
    if not target.startswith("ssmtools"):
        try:
            path = obj.resolve(target.split(".")[0]) + target[len(target.split(".")[0]) :]
        except Exception:  # noqa: BLE001 - unresolvable names stay as written
            return target
    try:
        found = obj.package[path[len("ssmtools.") :]] if path.startswith("ssmtools.") else obj.package
        return str(getattr(found, "canonical_path", path))
    except Exception:  # noqa: BLE001
        return path


def convert(text: str, obj: Any) -> str:
    """``text`` with every Sphinx role replaced by an optional autorefs reference."""

    def replace(match: re.Match[str]) -> str:
        short, target = match[1] == "~", match[2].strip()
        title = target.rsplit(".", 1)[-1] if short else target
        return f'<autoref identifier="{_canonical(obj, target)}" optional><code>{title}</code></autoref>'

    return _ROLE.sub(replace, text)


class SphinxRoles(griffe.Extension):
    """Rewrite the docstrings of every loaded object (see the module docstring)."""

    def on_package(self, *, pkg: Any, **kwargs: Any) -> None:
        """Walk the package once it is loaded, so that names resolve against its complete namespace."""
        stack = [pkg]
        while stack:
            obj = stack.pop()
            if obj.is_alias:
                continue
            if obj.docstring is not None:
                obj.docstring.value = convert(obj.docstring.value, obj)
            stack.extend(member for member in obj.members.values() if not member.is_alias)
