"""One registry of named, option-carrying objects, shared by criteria and reductions.

A registered class has a ``name`` (its registry key) and dataclass fields as options, so that an
instance prints (``describe``) and serialises (``options``) into a pruning plan.
"""

from __future__ import annotations

import ast
import dataclasses
import math
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np

from ..errors import ArgumentError, ArgumentTypeError, check_choice, check_integer


class NamedOptions:
    """Mixin: a registry ``name`` and options taken from the dataclass fields.

    The fields are checked against their annotations when an instance is made (:meth:`__post_init__`): ``bool``
    takes True/False only (not a truthy string), ``int`` a non-negative integer (not ``1.5``, not a bool),
    ``float`` a positive finite number (scales, steps, tolerances), ``Literal[...]`` one of its values (the
    annotation is the one list of the choices), ``None`` where the annotation allows it.
    """

    name: ClassVar[str]

    def __post_init__(self) -> None:
        """Check every dataclass field against its annotation (see the class docstring)."""
        if not dataclasses.is_dataclass(self):
            return
        for field in dataclasses.fields(self):
            _check_field(self.name, field.name, str(field.type), getattr(self, field.name))

    def options(self) -> dict[str, Any]:
        """The options (dataclass fields) as a plain dict.

        Returns
        -------
        dict
        """
        return dataclasses.asdict(self) if dataclasses.is_dataclass(self) else {}

    def describe(self) -> str:
        """``name(option=value, ...)``, used in plan tables.

        Returns
        -------
        str
        """
        options = ", ".join(f"{key}={value!r}" for key, value in self.options().items())
        return f"{self.name}({options})" if options else self.name


def _check_field(owner: str, name: str, annotation: str, value: Any) -> None:
    if annotation.startswith("Literal[") and annotation.endswith("]"):
        choices = ast.literal_eval(f"({annotation[len('Literal[') : -1]},)")
        check_choice(f"{owner!r} option {name}", value, choices)
        return
    kinds = {part.strip() for part in annotation.split("|")}
    if value is None and "None" in kinds:
        return
    where = f"{owner!r} option {name}={value!r}"
    if kinds <= {"bool", "None"}:
        if not isinstance(value, (bool, np.bool_)):
            raise ArgumentTypeError(f"{where} must be True or False")
    elif kinds <= {"int", "None"}:
        check_integer(f"{owner!r} option {name}", value)
    elif kinds <= {"float", "None"}:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ArgumentTypeError(f"{where} must be a number")
        if not (math.isfinite(value) and value > 0):
            raise ArgumentError(f"{where} must be a positive finite number")


T = TypeVar("T", bound=NamedOptions)


class Registry(Generic[T]):
    """Classes of one kind (``"criterion"``, ``"reduction"``) selectable by name, with their options.

    Parameters
    ----------
    kind : str
        What the registered objects are, used in error messages.
    base : type
        Their base class; instances of it are accepted as they are.
    """

    def __init__(self, kind: str, base: type) -> None:
        self.kind = kind
        self.base: type = base
        self._classes: dict[str, type[T]] = {}

    def register(self, cls: type[T]) -> type[T]:
        """Make ``cls`` selectable by its ``name``.

        Parameters
        ----------
        cls : type
            A subclass of the base class.

        Returns
        -------
        type
            ``cls`` unchanged (so this works as a class decorator).
        """
        self._classes[cls.name] = cls
        return cls

    def names(self) -> list[str]:
        """Registered names, sorted.

        Returns
        -------
        list of str
        """
        return sorted(self._classes)

    def get(self, value: str | T, **options: Any) -> T:
        """An instance from a registered name (with options), or an instance (options replaced if given).

        Parameters
        ----------
        value : str or instance of the base class
            A registered name or an instance.
        **options
            Dataclass fields of the class.

        Returns
        -------
        instance of the base class
        """
        if not isinstance(value, str):
            if not isinstance(value, self.base):
                raise ArgumentTypeError(
                    f"{self.kind} must be a name of {self.names()} or a {self.base.__name__}, got {type(value).__name__}"
                )
            return dataclasses.replace(value, **options) if options else value  # type: ignore[type-var]
        if value not in self._classes:
            raise ArgumentError(
                f"unknown {self.kind} {value!r}; choose one of {self.names()} or pass a {self.base.__name__}"
            )
        cls = self._classes[value]
        fields: set[str] = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
        unknown = sorted(set(options) - fields)
        if unknown:
            raise ArgumentTypeError(
                f"{self.kind} {value!r} has no option(s) {unknown}; its options are {sorted(fields)}"
            )
        return cls(**options)
