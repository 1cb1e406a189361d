"""`Frozen`: a base for small immutable value classes that load with ``import dynamodel``.

It gives what ``@dataclass(frozen=True)`` would (equality, hashing, a repr, immutability,
``replace``) without the dataclass machinery's cost at class creation: a frozen dataclass
exec's about six generated methods, roughly 0.4 ms per class, and a Lambda cold start pays
that for every class ``import dynamodel`` loads. Subclasses list their attributes in
``_fields`` (repr and comparison order) and set them in ``__init__`` with ``_set``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self


class Frozen:
    """Immutable value object compared, hashed and printed by its ``_fields``."""

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()
    #: fields left out of equality, hashing and repr (e.g. an injectable clock)
    _private: ClassVar[frozenset[str]] = frozenset()

    def _set(self, **values: Any) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def _compared(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f) for f in self._fields if f not in self._private)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; use .replace({name}=...)")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._compared() == other._compared()

    def __hash__(self) -> int:
        return hash(self._compared())

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f}={getattr(self, f)!r}" for f in self._fields if f not in self._private
        )
        return f"{type(self).__name__}({shown})"

    def replace(self, **changes: Any) -> Self:
        """A copy with some attributes changed (validated like a new instance)."""
        unknown = set(changes) - set(self._fields)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field(s) {sorted(unknown)}")
        values = {f: getattr(self, f) for f in self._fields}
        values.update(changes)
        return type(self)(**values)

    __replace__ = replace  # copy.replace() (Python 3.13)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # pickle and copy rebuild through __init__ (positional: _fields is its order)
        return type(self), tuple(getattr(self, f) for f in self._fields)
