"""What the commands that write files share: the output checks, the ``--force`` rule and one atomic commit.

The rules of ``prune`` for every command: an output is never an input (by resolved identity) nor another output,
an existing output is replaced only with ``--force``, and all outputs are written as one commit (all, or none).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO

from ..io import OverwriteError, atomic_write_all, check_output_paths

Writer = Callable[[BinaryIO], None]


def check_outputs(outputs: Mapping[str, Path], inputs: Mapping[str, Path], *, force: bool) -> None:
    """Refuse, before any work, outputs that are inputs or each other, and existing outputs without ``force``.

    Parameters
    ----------
    outputs : Mapping[str, Path]
        Option name (``"--output"``) -> path.
    inputs : Mapping[str, Path]
        What each input is -> path.
    force : bool
        Whether existing outputs may be replaced.

    Raises
    ------
    OverwriteError
        One line naming the option and the path.
    """
    check_output_paths(outputs, inputs)
    existing = [f"{label} {os.fspath(target)!r}" for label, target in outputs.items() if Path(target).exists()]
    if existing and not force:
        raise OverwriteError(f"{', '.join(existing)} already exists; pass --force to replace it")


def text_writer(text: str) -> Writer:
    """A writer of UTF-8 ``text`` for :func:`write_all`.

    Parameters
    ----------
    text : str
        The content.

    Returns
    -------
    callable
        ``write(file)``.
    """
    data = text.encode("utf-8")

    def write(file: BinaryIO) -> None:
        file.write(data)

    return write


def write_all(files: list[tuple[Path, Writer]]) -> None:
    """Write every file atomically as one commit (:func:`ssmtools.io.atomic_write_all`).

    Parameters
    ----------
    files : list of (Path, callable)
        Destination and writer of each output.
    """
    atomic_write_all(files)
