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

Rendering is injective (docs/security.md): a template's **separators** are ``#`` and every
character of its literal text that is not a letter or digit. A value that could contain one
(``str``, ``Enum``, ``int``, ``Decimal``, ``float``, formatted values; not the fixed-format
datetimes, dates, UUIDs and booleans) is refused when it does, naming the model, field,
template and character, so no value can forge another item's key. With ``escape=True``
(``Meta.escape_keys``) such characters, and ``%``, are percent-encoded instead, and any string
round-trips (`KeyTemplate.parse`). Two fields need a separator between them, and a partition key
never starts with `RESERVED_PREFIX` (the library's own records).
"""

from __future__ import annotations

import datetime as _dt
import enum
import itertools
import re
import string
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from dynamodel.core.codec import format_datetime
from dynamodel.core.errors import ValidationError

INT_SORT_WIDTH = 20
#: ints in a sort key render zero-padded to INT_SORT_WIDTH digits: 0 <= n < INT_SORT_LIMIT
INT_SORT_LIMIT = 10**INT_SORT_WIDTH
#: partition keys of dynamodel's own records (shard counts, migration state, locks) start with
#: it; no model key may
RESERVED_PREFIX = "_dynamodel"
#: always a separator, whatever the template's literal text
DEFAULT_SEPARATOR = "#"
#: escapes separators in escape mode (and is escaped itself)
ESCAPE = "%"
_MISSING = object()
#: values rendered from these types have a fixed format: their characters are not checked
_FIXED_FORMAT = (_dt.date, uuid.UUID, bool)
_PERCENT = re.compile("(?:%[0-9A-F]{2})+")  # a run of escapes: whole UTF-8 characters


def naive_key_error(value: _dt.datetime, field: str) -> ValidationError:
    """The error refusing naive datetime ``value`` of key template field ``field``."""
    return ValidationError(
        f"key field {field!r}: naive datetime {value.isoformat()} has no time zone, so "
        "the key it renders depends on the writer's clock zone; pass an aware datetime "
        "(datetime.now(UTC), or value.replace(tzinfo=UTC) if it is UTC)"
    )


def render_part(value: Any, spec: str, *, sort: bool, field: str) -> str:
    """Render one template field value as key text.

    A naive ``datetime`` (no time zone) is refused: the same instant would render differently
    on machines in other zones, and an aware value of it would render another key.
    """
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, _dt.datetime) and value.utcoffset() is None:
        raise naive_key_error(value, field)
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
        if value >= INT_SORT_LIMIT:
            raise ValidationError(
                f"key field {field!r}: int {value} in a sort key is 10**{INT_SORT_WIDTH} or more "
                f"and would not sort as text (ints are padded to {INT_SORT_WIDTH} digits); "
                "give the template a format spec or store it as a Decimal with one"
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


def separators_of(text: str) -> str:
    """The separator characters of template ``text``: ``#`` and every non-alphanumeric
    character of its literal text, sorted."""
    literal = "".join(part[0] for part in string.Formatter().parse(text))
    return "".join(sorted({DEFAULT_SEPARATOR} | {c for c in literal if not c.isalnum()}))


def _percent(char: str) -> str:
    return "".join(f"%{byte:02X}" for byte in char.encode())


def unescape(text: str) -> str:
    """Undo escape mode's percent-encoding."""
    if ESCAPE not in text:
        return text
    return _PERCENT.sub(lambda m: bytes.fromhex(m.group().replace(ESCAPE, "")).decode(), text)


class KeyTemplate:
    """A parsed key template. ``sort`` says whether it renders a sort key (affects ints);
    ``escape`` percent-encodes separator characters in values instead of refusing them."""

    __slots__ = ("_separator", "_unsafe", "escape", "fields", "parts", "separators", "sort", "text")

    def __init__(self, text: str, *, sort: bool = False, escape: bool = False) -> None:
        if not isinstance(text, str):
            raise ValidationError(f"key template must be a string, got {text!r}")
        self.text = text
        self.sort = sort
        self.escape = escape
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
        if len(set(self.fields)) != len(self.fields):
            raise ValidationError(f"key template {text!r} names a field twice")
        self.separators = separators_of(text)
        for (_, field, _), (literal, following, _) in itertools.pairwise(parts):
            if field is not None and following is not None and (not literal or literal.isalnum()):
                raise ValidationError(
                    f"key template {text!r}: {{{field}}} and {{{following}}} need a separator "
                    f"between them (such as '#'), or two different values could render the "
                    "same key"
                )
        if self.parts and self.parts[0][0].startswith(RESERVED_PREFIX):
            raise ValidationError(
                f"key template {text!r} starts with {RESERVED_PREFIX!r}, reserved for "
                "dynamodel's own records"
            )
        unsafe = self.separators + (ESCAPE if escape else "")
        self._unsafe = re.compile("[" + re.escape(unsafe) + "]").search
        self._separator = re.compile("[" + re.escape(self.separators) + "]").search

    def __repr__(self) -> str:
        return f"KeyTemplate({self.text!r})"

    @property
    def is_constant(self) -> bool:
        """True when the template has no fields."""
        return not self.fields

    def _safe(self, text: str, field: str, what: str) -> str:
        """``text`` (a rendered value) without separator characters: escaped in escape mode,
        else refused."""
        if text.isalnum():
            return text
        found = self._unsafe(text)
        if found is None:
            return text
        if self.escape:
            unsafe = self._unsafe
            return "".join(_percent(c) if unsafe(c) else c for c in text)
        raise ValidationError(
            f"{what}: field {field!r} = {text!r} contains {found.group()!r}, a separator of key "
            f"template {self.text!r}: such a value could forge another item's key. Nothing was "
            "sent. Declare Meta.escape_keys = True to store any string (docs/security.md)"
        )

    def _part(self, value: Any, spec: str, field: str, what: str) -> str:
        try:
            text = render_part(value, spec, sort=self.sort, field=field)
        except ValidationError as exc:
            raise ValidationError(f"{what}: {exc} (key template {self.text!r})") from None
        if isinstance(value, _FIXED_FORMAT) and not isinstance(value, enum.Enum):
            return text  # datetimes, dates, UUIDs, booleans: fixed formats, never user text
        return self._safe(text, field, what)

    def _check_reserved(self, text: str, what: str) -> str:
        if not self.sort and text.startswith(RESERVED_PREFIX):
            raise ValidationError(
                f"{what}: key {text!r} (template {self.text!r}) starts with "
                f"{RESERVED_PREFIX!r}, reserved for dynamodel's own records. Nothing was sent"
            )
        return text

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
                out.append(
                    value
                    if value.isalnum() or not self._unsafe(value)
                    else self._safe(value, field, what)
                )
                continue
            if value is _MISSING or value is None:
                raise ValidationError(
                    f"{what}: template {self.text!r} needs field {field!r}, which is missing"
                )
            out.append(self._part(value, spec, field, what))
        text = "".join(out)
        return self._check_reserved(text, what) if not self.parts[0][0] else text

    def try_render(self, values: Mapping[str, Any], what: str = "key") -> str | None:
        """Render, or None when a field is missing or None (sparse index keys)."""
        for field in self.fields:
            if values.get(field) is None:
                return None
        return self.render(values, what)

    def prefix(self, values: Mapping[str, Any], what: str = "key") -> tuple[str, bool]:
        """Render up to the first missing field: ``(text, complete)``.

        ``"ORDER#{placed_at}#{order_id}"`` with only ``placed_at`` gives
        ``("ORDER#2024-...#", False)``; used for ``begins_with`` and range bounds. The text
        ends with the literal after the last given field, so it matches whole segments only.
        """
        out: list[str] = []
        for literal, field, spec in self.parts:
            out.append(literal)
            if field is None:
                continue
            value = values.get(field)
            if value is None:
                return "".join(out), False
            out.append(self._part(value, spec, field, what))
        return "".join(out), True

    def parse(self, text: str) -> dict[str, str]:
        """The rendered text of each field in ``text`` (a key this template rendered), escapes
        undone: ``parse(render(values))`` gives back each ``str`` value.

        Fields must hold values whose characters are checked (``str``, ints, decimals): a
        fixed-format value that contains a separator cannot be told apart. Raises
        ``ValueError`` when ``text`` does not match the template.
        """
        out: dict[str, str] = {}
        position = 0
        parts = self.parts
        for number, (literal, field, _) in enumerate(parts):
            if not text.startswith(literal, position):
                raise ValueError(f"{text!r} does not match key template {self.text!r}")
            position += len(literal)
            if field is None:
                continue
            following = parts[number + 1][0] if number + 1 < len(parts) else ""
            if not following:
                end = len(text)
            else:
                offset = next(i for i, c in enumerate(following) if c in self.separators)
                found = self._separator(text, position)
                if found is None:
                    raise ValueError(f"{text!r} does not match key template {self.text!r}")
                end = found.start() - offset
            if end < position:
                raise ValueError(f"{text!r} does not match key template {self.text!r}")
            value = text[position:end]
            out[field] = unescape(value) if self.escape else value
            position = end
        if position != len(text):
            raise ValueError(f"{text!r} does not match key template {self.text!r}")
        return out
