"""DynamoDB exports to S3, read back as typed models; starting and following exports.

An export (``ExportTableToPointInTime``, docs/exports.md) writes, under the chosen S3 prefix::

    <prefix>/AWSDynamoDB/<ExportId>/manifest-summary.json   one JSON object (itemCount, ...)
    <prefix>/AWSDynamoDB/<ExportId>/manifest-files.json     JSON lines, one per data file
    <prefix>/AWSDynamoDB/<ExportId>/data/<name>.json.gz     gzip, JSON lines {"Item": {...}}

```python
reader = read_export("exports/AWSDynamoDB/01234567890123-a1b2c3d4", table=shop)
for order in reader:              # model instances, routed by the table's type attribute
    ...
reader.unrouted                   # what no model took, with the reason (never dropped)
reader.report                     # per-file counts and checks
```

Items are read lazily: one data file open at a time, line by line, so memory does not grow
with the export. Each item is routed to its model class by the table's entity-type attribute
(as collections and streams route them) and parsed with ``Model.from_item``. Items that no
model takes (an entity type no model knows, an item that does not validate, a line that is not
an item, dynamodel's own records) are `UnroutedItem` records with the reason: passed to
``on_unrouted``, or kept in `ExportReader.unrouted`.

What is checked (``verify=True``): each file's ``itemCount`` against the lines read from it,
the summary's ``itemCount`` against the total, and each file's ``md5Checksum``. The
documentation does not say which bytes that checksum covers: a file passes when it matches the
MD5 of the object as stored (compressed) or of its decompressed content. An S3 object's ETag
is compared with the manifest's ``etag``; a local file's only when that ETag is a plain MD5
(a single-part upload). The ``.checksum`` files beside the manifests are not read (their
format is not documented).

Amazon Ion exports are read with the ``amazon.ion`` package (``pip install 'dynamodel[ion]'``),
imported only when an Ion export is read.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from dynamodel.core.codec import Item
from dynamodel.core.errors import UNSUPPORTED_CODES as UNSUPPORTED_CODES, ValidationError
from dynamodel.core.keys import RESERVED_PREFIX
from dynamodel.ops.export_errors import (
    EXPORTS_FOLDER as EXPORTS_FOLDER,
    FILES as FILES,
    SUMMARY as SUMMARY,
    ExportError as ExportError,
    ExportFormat as ExportFormat,
    ExportVerificationError as ExportVerificationError,
    UnroutedKind as UnroutedKind,
    UnsupportedOperation as UnsupportedOperation,
    explain_error as explain_error,
)
from dynamodel.ops.export_files import (
    DataFile as DataFile,
    ExportManifest as ExportManifest,
    ExportSource as ExportSource,
    LocalSource as LocalSource,
    S3Source as S3Source,
    open_export as open_export,
    source_for as source_for,
)
from dynamodel.ops.export_items import (
    _ion_module as _ion_module,
    item_from_ion as item_from_ion,
    item_from_json as item_from_json,
    item_to_json as item_to_json,
)
from dynamodel.ops.export_jobs import (
    adescribe_export as adescribe_export,
    aexport_table as aexport_table,
    await_export as await_export,
    describe_export as describe_export,
    export_location as export_location,
    export_request as export_request,
    export_table as export_table,
    wait_export as wait_export,
    wait_flow as wait_flow,
)

if TYPE_CHECKING:
    from dynamodel.modelling.base import ModelBase
    from dynamodel.modelling.table import Table


_CHUNK = 1 << 16  # bytes read at a time to hash a stored file

__all__ = [
    "DataFile",
    "ExportError",
    "ExportItem",
    "ExportManifest",
    "ExportReader",
    "ExportReport",
    "ExportVerificationError",
    "FileReport",
    "UnroutedItem",
    "UnroutedKind",
    "UnsupportedOperation",
    "adescribe_export",
    "aexport_table",
    "await_export",
    "describe_export",
    "export_table",
    "open_export",
    "read_export",
    "wait_export",
]

# -- records ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportItem:
    """One item of the export, parsed into its model.

    Attributes:
        item: the model instance.
        raw: the item as stored (AttributeValues, binary values as bytes).
        file: the data file's key (``data/<name>.json.gz``).
        line: the line number in that file (1-based).
    """

    item: ModelBase
    raw: Item = field(repr=False)
    file: str
    line: int

    @property
    def model(self) -> type[ModelBase]:
        """The item's model class."""
        return type(self.item)


@dataclass(frozen=True)
class UnroutedItem:
    """A line of the export that did not become a model instance, and why.

    Attributes:
        kind: ``unknown_entity`` (an entity type no model knows), ``invalid_item`` (the item
            does not fit its model), ``no_entity_type`` (no entity-type attribute),
            ``invalid_line`` (not an item: corrupt JSON or Ion, a bad AttributeValue) or
            ``internal`` (dynamodel's own records: unique-constraint guards, shard layouts,
            migration state; kept so that an import carries them).
        reason: what went wrong, in words.
        file: the data file's key.
        line: the line number in that file (1-based).
        entity: the entity type found, if any.
        raw: the item, when the line could be read as one (None for ``invalid_line``).
        text: the line's text for ``invalid_line`` (at most 2,000 characters).
        error: the exception, if one was raised.
    """

    kind: UnroutedKind
    reason: str
    file: str
    line: int
    entity: str | None = None
    raw: Item | None = field(default=None, repr=False)
    text: str | None = field(default=None, repr=False)
    error: BaseException | None = field(default=None, repr=False)


@dataclass
class FileReport:
    """What was read from one data file, and how it compared with the manifest.

    Attributes:
        key: the data file's key.
        expected_items: the manifest's ``itemCount`` (None: not listed).
        lines: the non-empty lines read (one per stored item).
        routed: the lines that became model instances.
        unrouted: the lines that did not (see `UnroutedItem`).
        md5: ``ok``, ``mismatch``, ``not_listed`` or ``not_checked``.
        etag: ``ok``, ``mismatch``, ``not_listed`` or ``not_checked``.
        problems: what did not match, in words.
        complete: whether the file was read to its end.
    """

    key: str
    expected_items: int | None
    lines: int = 0
    routed: int = 0
    unrouted: int = 0
    md5: str = "not_checked"
    etag: str = "not_checked"
    problems: list[str] = field(default_factory=list)
    complete: bool = False


@dataclass
class ExportReport:
    """The counts and checks of one pass over an export.

    Attributes:
        files: one `FileReport` per data file read.
        expected_items: the summary's ``itemCount``.
        items: the item lines read in all.
        by_model: model class name -> instances yielded.
        unrouted: unrouted kind -> count.
        problems: every mismatch found (files and the summary).
    """

    files: list[FileReport] = field(default_factory=list)
    expected_items: int | None = None
    items: int = 0
    by_model: dict[str, int] = field(default_factory=dict)
    unrouted: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No mismatch was found."""
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready data."""
        return {
            "expected_items": self.expected_items,
            "items": self.items,
            "by_model": dict(self.by_model),
            "unrouted": dict(self.unrouted),
            "problems": list(self.problems),
            "files": [
                {
                    "key": f.key,
                    "expected_items": f.expected_items,
                    "lines": f.lines,
                    "routed": f.routed,
                    "unrouted": f.unrouted,
                    "md5": f.md5,
                    "etag": f.etag,
                    "problems": list(f.problems),
                }
                for f in self.files
            ],
        }


class _Hashing(io.RawIOBase):
    """A read-only stream that hashes (MD5) what is read through it and counts the bytes."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        size = len(data)
        buffer[:size] = data
        self.md5.update(data)
        self.count += size
        return size

    def drain(self) -> None:
        while self.readinto(bytearray(_CHUNK)):
            pass

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()


def _registry(
    table: Table | None, models: Sequence[type[ModelBase]] | None
) -> tuple[dict[str, type[ModelBase]], str, str]:
    if table is None and not models:
        raise ValidationError("read_export needs table=... or models=[...]")
    registry: dict[str, type[ModelBase]] = dict(table.entities) if table is not None else {}
    tables = {id(table): table} if table is not None else {}
    for model in models or ():
        spec = model._spec()
        registry[spec.entity] = model
        tables[id(spec.table)] = spec.table
    if len(tables) != 1:
        raise ValidationError("read_export: the models belong to different tables")
    (found,) = tables.values()
    if not registry:
        raise ValidationError(f"read_export: table {found.name!r} has no models registered")
    return registry, found.type_attribute, found.pk


class ExportReader:
    """A pass over an export's items (see `read_export`)."""

    def __init__(
        self,
        source: ExportSource,
        manifest: ExportManifest,
        *,
        table: Table | None = None,
        models: Sequence[type[ModelBase]] | None = None,
        verify: bool = True,
        strict: bool = True,
        on_unrouted: Callable[[UnroutedItem], Any] | None = None,
    ) -> None:
        self.source = source
        self.manifest = manifest
        self.verify = verify
        self.strict = strict
        self.on_unrouted = on_unrouted
        self._registry, self._type_attribute, self._pk = _registry(table, models)
        #: the unrouted items of the last pass, when no ``on_unrouted`` function takes them
        self.unrouted: list[UnroutedItem] = []
        #: the counts and checks of the last (or current) pass
        self.report = ExportReport(expected_items=manifest.item_count)

    # -- iteration ----------------------------------------------------------------------------

    def __iter__(self) -> Iterator[ModelBase]:
        """The model instances, in file order; unrouted items go to ``on_unrouted`` (or
        `unrouted`)."""
        for record in self.records():
            if isinstance(record, ExportItem):
                yield record.item
            elif self.on_unrouted is not None:
                self.on_unrouted(record)
            else:
                self.unrouted.append(record)

    def records(self) -> Iterator[ExportItem | UnroutedItem]:
        """Every line of every data file as an `ExportItem` or an `UnroutedItem`, in order.

        One file is open at a time and read line by line. A file that does not match its
        manifest is reported in `report` and, when ``strict``, raises
        `ExportVerificationError` once it was read.
        """
        self.unrouted = []
        self.report = ExportReport(expected_items=self.manifest.item_count)
        simpleion = _ion_module() if self.manifest.output_format == "ION" else None
        for data_file in self.manifest.files:
            yield from self._read_file(data_file, simpleion)
        report = self.report
        if (
            self.verify
            and report.expected_items is not None
            and report.expected_items != report.items
            and all(f.complete for f in report.files)
        ):
            problem = (
                f"{SUMMARY}: itemCount is {report.expected_items:,} but {report.items:,} "
                "items were read"
            )
            report.problems.append(problem)
            if self.strict:
                raise ExportVerificationError(
                    f"{self.manifest.location}: {problem}", problems=[problem]
                )

    def _read_file(
        self, data_file: DataFile, simpleion: Any
    ) -> Iterator[ExportItem | UnroutedItem]:
        report = FileReport(key=data_file.key, expected_items=data_file.item_count)
        self.report.files.append(report)
        try:
            raw, etag = self.source.open(data_file.key)
        except FileNotFoundError:
            report.problems.append(f"{data_file.key}: listed in {FILES} but missing")
            self.report.problems.extend(report.problems)
            if self.strict:
                raise ExportVerificationError(
                    f"{self.source.describe(data_file.key)} is missing (listed in {FILES})",
                    problems=list(report.problems),
                ) from None
            return
        hashing = _Hashing(raw)
        buffered = io.BufferedReader(hashing, _CHUNK)
        try:
            compressed = buffered.peek(2)[:2] == b"\x1f\x8b"
            if not compressed and data_file.key.endswith((".zst", ".zstd")):
                raise ExportError(
                    f"{self.source.describe(data_file.key)} is zstd-compressed: not read by "
                    "dynamodel (exports are gzip); decompress it first"
                )
            stream: Any = gzip.GzipFile(fileobj=buffered, mode="rb") if compressed else buffered
            content = hashlib.md5(usedforsecurity=False)
            number = 0
            for line in stream:
                number += 1
                content.update(line)
                if not line.strip():
                    continue
                report.lines += 1
                self.report.items += 1
                record = self._record(line, data_file.key, number, simpleion)
                if isinstance(record, ExportItem):
                    report.routed += 1
                    name = type(record.item).__name__
                    self.report.by_model[name] = self.report.by_model.get(name, 0) + 1
                else:
                    report.unrouted += 1
                    self.report.unrouted[record.kind] = self.report.unrouted.get(record.kind, 0) + 1
                yield record
            hashing.drain()
            report.complete = True
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            report.problems.append(f"{data_file.key}: cannot be read to its end: {exc}")
        finally:
            buffered.close()
        if self.verify:
            self._check(data_file, report, hashing, content if report.complete else None, etag)
        if report.problems:
            self.report.problems.extend(report.problems)
            if self.strict:
                raise ExportVerificationError(
                    f"{self.source.describe(data_file.key)} does not match {FILES}: "
                    + "; ".join(report.problems),
                    problems=list(report.problems),
                )

    def _check(
        self,
        data_file: DataFile,
        report: FileReport,
        hashing: _Hashing,
        content: Any,
        etag: str | None,
    ) -> None:
        if not report.complete:
            return
        if data_file.item_count is not None and data_file.item_count != report.lines:
            report.problems.append(
                f"{data_file.key}: itemCount is {data_file.item_count:,} but "
                f"{report.lines:,} items were read"
            )
        stored = hashing.md5.digest()
        if data_file.md5 is None:
            report.md5 = "not_listed"
        else:
            accepted = {
                base64.b64encode(stored).decode(),
                base64.b64encode(content.digest()).decode(),
            }
            report.md5 = "ok" if data_file.md5 in accepted else "mismatch"
            if report.md5 == "mismatch":
                report.problems.append(f"{data_file.key}: md5Checksum does not match")
        if data_file.etag is None:
            report.etag = "not_listed"
        elif etag is not None:
            report.etag = "ok" if etag == data_file.etag.strip('"') else "mismatch"
        elif "-" not in data_file.etag:  # a single-part upload's ETag is the object's MD5
            report.etag = "ok" if data_file.etag.strip('"') == stored.hex() else "mismatch"
        if report.etag == "mismatch":
            report.problems.append(f"{data_file.key}: etag does not match")

    def _record(
        self, line: bytes, key: str, number: int, simpleion: Any
    ) -> ExportItem | UnroutedItem:
        try:
            text = line.decode("utf-8")
            item = item_from_ion(text, simpleion) if simpleion else item_from_json(text)
        except (ValidationError, UnicodeDecodeError) as exc:
            shown = line[:2000].decode("utf-8", "replace").rstrip("\n")
            return UnroutedItem("invalid_line", str(exc), key, number, text=shown, error=exc)
        tag = item.get(self._type_attribute)
        entity = tag.get("S") if tag else None
        if not isinstance(entity, str):
            pk = (item.get(self._pk) or {}).get("S")
            if isinstance(pk, str) and pk.startswith(RESERVED_PREFIX):
                return UnroutedItem("internal", "dynamodel's own record", key, number, raw=item)
            return UnroutedItem(
                "no_entity_type",
                f"no entity type attribute {self._type_attribute!r}",
                key,
                number,
                raw=item,
            )
        if entity.startswith(RESERVED_PREFIX):
            return UnroutedItem(
                "internal", f"dynamodel's own record ({entity})", key, number, entity, item
            )
        model = self._registry.get(entity)
        if model is None:
            return UnroutedItem(
                "unknown_entity", f"no model for entity type {entity!r}", key, number, entity, item
            )
        try:
            instance = model.from_item(item)
        except Exception as exc:
            return UnroutedItem(
                "invalid_item",
                f"the item does not fit {model.__name__}: {exc}",
                key,
                number,
                entity,
                item,
                error=exc,
            )
        return ExportItem(instance, item, key, number)


def read_export(
    location: str | Path | ExportSource,
    *,
    table: Table | None = None,
    models: Sequence[type[ModelBase]] | None = None,
    s3_client: Any = None,
    verify: bool = True,
    strict: bool = True,
    require_manifest: bool = True,
    on_unrouted: Callable[[UnroutedItem], Any] | None = None,
) -> ExportReader:
    """An export's items as model instances, read lazily (see the module docs).

    Args:
        location: the export folder (``<prefix>/AWSDynamoDB/<ExportId>``), one of its manifest
            files, or the prefix above ``AWSDynamoDB`` when it holds a single export; a local
            path or an ``s3://bucket/key`` URL (an `ExportSource` is also accepted).
        table: route items to every model registered on this table.
        models: route items to these models (with or instead of ``table``).
        s3_client: the boto3 S3 client for ``s3://`` locations (default: ``boto3.client("s3")``).
        verify: compare item counts and checksums with the manifests.
        strict: raise `ExportVerificationError` at the end of a file that does not match
            (False: only record it in `ExportReader.report`).
        require_manifest: False reads a folder without ``manifest-files.json`` (every file
            under ``data/``), unverified.
        on_unrouted: called with each `UnroutedItem` while iterating the models (raise in it
            to stop); None keeps them in `ExportReader.unrouted`.

    The manifests are read now; the data files when the reader is iterated.
    """
    source, manifest = open_export(location, s3_client=s3_client, require_manifest=require_manifest)
    return ExportReader(
        source,
        manifest,
        table=table,
        models=models,
        verify=verify,
        strict=strict,
        on_unrouted=on_unrouted,
    )
