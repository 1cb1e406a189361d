"""Key templates such as ``"USER#{user_id}"`` or ``"ORDER#{placed_at}#{order_id:08d}"``.

A template is literal text with ``{field}`` or ``{field:format_spec}`` placeholders naming model
fields. Rendering rules (order preserving where it matters, see docs/models.md):

* ``str`` as is; ``UUID`` as its canonical text; ``Enum`` as its value; ``bool`` as
  ``true``/``false``.
* ``datetime`` in fixed-width ISO-8601 (aware values in UTC: ``2024-05-01T09:30:00.000000Z``),
  ``date`` as ``YYYY-MM-DD``: both sort chronologically as strings.
* ``int`` in a **sort key** (table or index) is zero-padded to 20 digits so that string order is
  numeric order for 0 <= n < 10**20; negative ints need an explicit format spec. In a partition
  key an int renders plainly (partition keys are never range-compared).
* ``Decimal``/``float`` render as ``str`` unless a format spec is given (``{price:012.2f}``):
  give one if you range-query on them.
* A format spec, when present, is applied with `format` and wins over these defaults.
"""

from __future__ import annotations

import datetime as _dt
import enum
import string
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from .codec import format_datetime
from .errors import ValidationError

INT_SORT_WIDTH = 20
_MISSING = object()


def render_part(value: Any, spec: str, *, sort: bool, field: str) -> str:
    """Render one template field value as key text."""
    if isinstance(value, enum.Enum):
        value = value.value
    if spec:
        try:
            return format(value, spec)
        except (ValueError, TypeError) as exc:
            raise ValidationError(
                f"key field {field!r}: cannot format {value!r} with spec {spec!r}: {exc}"
            ) from exc
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if not sort:
            return str(value)
        if value < 0:
            raise ValidationError(
                f"key field {field!r}: negative int {value} in a sort key does not sort as text; "
                "give the template a format spec or offset the value"
            )
        return str(value).zfill(INT_SORT_WIDTH)
    if isinstance(value, _dt.datetime):
        return format_datetime(value)
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal | float):
        return str(value)
    if value is None:
        raise ValidationError(f"key field {field!r} is None")
    raise ValidationError(
        f"key field {field!r}: cannot render a {type(value).__name__} in a key; "
        "use str, int, Decimal, datetime, date, UUID, bool or Enum"
    )


class KeyTemplate:
    """A parsed key template. ``sort`` says whether it renders a sort key (affects ints)."""

    __slots__ = ("fields", "parts", "sort", "text")

    def __init__(self, text: str, *, sort: bool = False) -> None:
        if not isinstance(text, str):
            raise ValidationError(f"key template must be a string, got {text!r}")
        self.text = text
        self.sort = sort
        parts: list[tuple[str, str | None, str]] = []
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise ValidationError(f"bad key template {text!r}: {exc}") from exc
        for literal, field, spec, conversion in parsed:
            if conversion:
                raise ValidationError(f"key template {text!r}: conversions (!r, !s) not supported")
            if field is not None:
                if not field.isidentifier():
                    raise ValidationError(
                        f"key template {text!r}: {{{field}}} is not a plain field name"
                    )
                if spec and ("{" in spec):
                    raise ValidationError(f"key template {text!r}: nested fields not supported")
            parts.append((literal, field, spec or ""))
        self.parts = tuple(parts)
        self.fields = tuple(f for _, f, _ in parts if f is not None)

    def __repr__(self) -> str:
        return f"KeyTemplate({self.text!r})"

    @property
    def is_constant(self) -> bool:
        """True when the template has no fields."""
        return not self.fields

    def render(self, values: Mapping[str, Any], what: str = "key") -> str:
        """Render with every field present; a missing field is a `ValidationError`."""
        if not self.fields:
            return self.text
        out: list[str] = []
        for literal, field, spec in self.parts:
            out.append(literal)
            if field is None:
                continue
            value = values.get(field, _MISSING)
            if type(value) is str and not spec:  # the commonest case, without a call
                out.append(value)
                continue
            if value is _MISSING or value is None:
                raise ValidationError(
                    f"{what}: template {self.text!r} needs field {field!r}, which is missing"
                )
            out.append(render_part(value, spec, sort=self.sort, field=field))
        return "".join(out)

    def try_render(self, values: Mapping[str, Any]) -> str | None:
        """Render, or None when a field is missing or None (sparse index keys)."""
        for field in self.fields:
            if values.get(field) is None:
                return None
        return self.render(values)

    def prefix(self, values: Mapping[str, Any]) -> tuple[str, bool]:
        """Render up to the first missing field: ``(text, complete)``.

        ``"ORDER#{placed_at}#{order_id}"`` with only ``placed_at`` gives
        ``("ORDER#2024-...#", False)``; used for ``begins_with`` and range bounds.
        """
        out: list[str] = []
        for literal, field, spec in self.parts:
            out.append(literal)
            if field is None:
                continue
            value = values.get(field)
            if value is None:
                return "".join(out), False
            out.append(render_part(value, spec, sort=self.sort, field=field))
        return "".join(out), True
