"""Exceptions and warnings raised by ssmtools.

Every exception derives from [`SSMToolsError`][ssmtools.errors.SSMToolsError] *and* from the built-in
exception users already catch (``ValueError``, ``TypeError``), as
python-control's ``control/exception.py`` does.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence


class SSMToolsError(Exception):
    """Base class of every ssmtools exception."""


class ShapeError(SSMToolsError, ValueError):
    """An array has the wrong shape, or batch shapes do not broadcast."""


class NonFiniteError(SSMToolsError, ValueError):
    """An input array contains NaN or Inf."""


class NotDiagonalizableError(SSMToolsError, ValueError):
    """A state matrix has no well-conditioned eigenvector basis."""


class FormatError(SSMToolsError, ValueError):
    """A file or parameter tree is not in a format ssmtools can read."""


class ArgumentError(SSMToolsError, ValueError):
    """An argument has an invalid value (a ratio out of range, an unstable system where a stable one is needed, ...)."""


class OptionError(ArgumentError):
    """An option (a string choice, a tolerance, a count) has a value outside its valid set."""


class ArgumentTypeError(SSMToolsError, TypeError):
    """An argument has the wrong type (e.g. an array where a system is expected)."""


class UnknownNameError(SSMToolsError, KeyError):
    """A name (a layer of a model or a plan) is not known; the message lists the known ones."""

    def __str__(self) -> str:  # KeyError would print the message with quotes around it
        return str(self.args[0]) if self.args else ""


class BatchIndexError(SSMToolsError, IndexError):
    """An index does not select systems of a batch."""


class MissingDependencyError(SSMToolsError, ImportError):
    """An optional dependency is not installed; the message names what to install (:func:`missing_dependency`)."""


#: What to install for each optional module (one place: the CLI, the readers and the backends quote it).
INSTALL_HINTS = {
    "torch": 'pip install torch==2.13.0 (the CPU build; see the README), then pip install "ssmtools[torch]"',
    "safetensors": 'pip install "ssmtools[io]"',
    "msgpack": 'pip install "ssmtools[io]"',
}


def missing_dependency(module: str, needed_for: str) -> MissingDependencyError:
    """The error to raise when ``module`` (a key of :data:`INSTALL_HINTS`) is missing.

    Parameters
    ----------
    module : str
        The module that could not be imported.
    needed_for : str
        What needs it, e.g. ``"reading model.pt"``.

    Returns
    -------
    MissingDependencyError
        One line: what needs which module, and the install command.
    """
    return MissingDependencyError(f"{needed_for} needs {module}, which is not installed: {INSTALL_HINTS[module]}")


class UnstableSystemWarning(UserWarning):
    """A system or state is not asymptotically stable; its H∞/H2 norm is infinite."""


def check_choice(name: str, value: object, choices: Sequence[object]) -> None:
    """Raise [`OptionError`][ssmtools.errors.OptionError] (a ``ValueError``) unless ``value`` is one of ``choices``.

    Parameters
    ----------
    name : str
        Name of the argument, quoted in the message.
    value : object
        The value passed.
    choices : sequence
        The accepted values, listed in the message.

    Raises
    ------
    OptionError
        ``value`` is not in ``choices``.
    """
    if value not in choices:
        raise OptionError(f"{name}={value!r} is not valid; choose one of {list(choices)}")


def check_integer(name: str, value: object, minimum: int = 0) -> int:
    """``value`` as an int, or an error: ArgumentTypeError unless it is an integer (``1.5``, ``True``, ``"3"`` are
    refused), OptionError if it is below ``minimum``.

    Parameters
    ----------
    name : str
        Name of the argument, quoted in the message.
    value : object
        The value passed.
    minimum : int
        The smallest accepted value.

    Returns
    -------
    int
        The value.
    """
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise ArgumentTypeError(f"{name}={value!r} must be an integer (got {type(value).__name__})")
    number = int(value)  # type: ignore[call-overload,unused-ignore]
    if number < minimum:
        raise OptionError(f"{name}={number} must be ≥ {minimum}")
    return number


def warn_unstable(what: str, count: int, total: int) -> None:
    """Emit one [`UnstableSystemWarning`][ssmtools.errors.UnstableSystemWarning] for ``count`` of ``total`` unstable items.

    Parameters
    ----------
    what : str
        Plural subject and verb of the message, e.g. ``"states are"`` or ``"systems are"``.
    count : int
        Number of items that are not asymptotically stable.
    total : int
        Number of items checked.
    """
    warnings.warn(
        f"{count} of {total} {what} not asymptotically stable (|λ| ≥ 1 in discrete time, "
        "Re λ ≥ 0 in continuous time): their norm is reported as inf.",
        UnstableSystemWarning,
        stacklevel=3,
    )


@contextlib.contextmanager
def silence_unstable() -> Iterator[None]:
    """Suppress [`UnstableSystemWarning`][ssmtools.errors.UnstableSystemWarning] inside the block.

    For callers that report unstable states themselves (e.g. a pruning plan counts them once per layer).

    Yields
    ------
    None
        Control returns to the ``with`` block; other warnings pass through unchanged.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnstableSystemWarning)
        yield
