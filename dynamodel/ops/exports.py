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
import binascii
import datetime as dt
import gzip
import hashlib
import io
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, Protocol

from dynamodel.core.codec import Item
from dynamodel.core.errors import DynamodelError, ServiceError, ValidationError
from dynamodel.core.flows import Flow, Request, Sleep, call, connection_inputs
from dynamodel.core.keys import RESERVED_PREFIX

if TYPE_CHECKING:
    from dynamodel.io.clients import Connection
    from dynamodel.modelling.base import ModelBase
    from dynamodel.modelling.table import Table

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

SUMMARY = "manifest-summary.json"
FILES = "manifest-files.json"
EXPORTS_FOLDER = "AWSDynamoDB"
ExportFormat = Literal["DYNAMODB_JSON", "ION"]
UnroutedKind = Literal[
    "unknown_entity", "invalid_item", "no_entity_type", "invalid_line", "internal"
]
#: error codes an endpoint answers with for an operation it does not implement
UNSUPPORTED_CODES = frozenset(
    {"UnknownOperationException", "InvalidAction", "NotImplemented", "NotImplementedException"}
)
_CHUNK = 1 << 16


# -- errors -----------------------------------------------------------------------------------


class ExportError(DynamodelError):
    """An export (or import-ready folder) cannot be read: no manifest, a bad manifest, an
    unsupported format."""


class ExportVerificationError(ExportError):
    """A data file does not match its manifest (item count, checksum) or is missing.

    Raised at the end of the file it concerns (its items were already yielded) when the reader
    is ``strict``; ``problems`` lists what did not match.
    """

    def __init__(self, message: str, *, problems: list[str]) -> None:
        super().__init__(message)
        self.problems = problems


class UnsupportedOperation(ServiceError):
    """The endpoint (a local emulator) does not implement this API call."""


def explain_error(error: DynamodelError, operation: str, endpoint: str | None) -> DynamodelError:
    """A clearer error for the API calls of exports and imports (the original as cause)."""
    code = error.code or ""
    where = f"the endpoint {endpoint}" if endpoint else "this endpoint"
    if code in UNSUPPORTED_CODES or (
        code == "" and "not" in str(error).lower() and "implement" in str(error).lower()
    ):
        return UnsupportedOperation(
            f"{where} does not support {operation} ({error}); exports and imports run on "
            "DynamoDB itself (or an emulator that implements them, such as moto)",
            code=code or None,
        )
    hints = {
        "PointInTimeRecoveryUnavailableException": (
            "point-in-time recovery is off: declare Table(..., point_in_time_recovery=True) "
            "and apply it with `dynamodel table sync` (or table.create() for a new table)"
        ),
        "InvalidExportTimeException": (
            "the export time must be within the point-in-time recovery window (the last 35 "
            "days, and not before PITR was enabled) and not in the future"
        ),
        "ExportConflictException": "an export with the same client token is under way",
        "ImportConflictException": "an import with the same client token is under way",
        "ResourceInUseException": (
            "the table to import into already exists: ImportTable creates a new table; "
            "choose another name (table_name= or --table-name)"
        ),
        "LimitExceededException": "too many exports or imports are running at once",
    }
    hint = hints.get(code)
    if hint is None:
        return error
    return ServiceError(f"{error}: {hint}", code=error.code)


# -- where the files are ----------------------------------------------------------------------


class ExportSource(Protocol):
    """Where an export's files are read from: a local folder or an S3 prefix.

    Keys are ``/``-separated paths relative to the source's root.
    """

    def describe(self, key: str = "") -> str:
        """A human-readable location (a path or an ``s3://`` URL)."""
        ...

    def read_bytes(self, key: str) -> bytes | None:
        """A small file's content, or None when it does not exist."""
        ...

    def open(self, key: str) -> tuple[BinaryIO, str | None]:
        """A data file opened for streaming, and its ETag when the store has one."""
        ...

    def folders(self, key: str) -> list[str]:
        """The names of the sub-folders of ``key``."""
        ...

    def files(self, key: str) -> list[str]:
        """The keys of the files under ``key`` (recursively), sorted."""
        ...

    def child(self, key: str) -> ExportSource:
        """The same store rooted at ``key``."""
        ...


class LocalSource:
    """An export's files in a local folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def describe(self, key: str = "") -> str:
        return str(self.root / key) if key else str(self.root)

    def read_bytes(self, key: str) -> bytes | None:
        path = self.root / key
        return path.read_bytes() if path.is_file() else None

    def open(self, key: str) -> tuple[BinaryIO, str | None]:
        path = self.root / key
        if not path.is_file():
            raise FileNotFoundError(str(path))
        return path.open("rb"), None

    def folders(self, key: str) -> list[str]:
        path = self.root / key
        return sorted(p.name for p in path.iterdir() if p.is_dir()) if path.is_dir() else []

    def files(self, key: str) -> list[str]:
        path = self.root / key
        if not path.is_dir():
            return []
        return sorted(p.relative_to(self.root).as_posix() for p in path.rglob("*") if p.is_file())

    def child(self, key: str) -> LocalSource:
        return LocalSource(self.root / key)


class S3Source:
    """An export's files under an S3 prefix, read with a boto3 S3 client (made on first use
    from boto3's defaults when not given; ``AWS_ENDPOINT_URL_S3`` is honoured by boto3)."""

    def __init__(self, bucket: str, prefix: str = "", client: Any = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client = client

    @classmethod
    def from_url(cls, url: str, client: Any = None) -> S3Source:
        """``s3://bucket/prefix`` -> source."""
        if not url.startswith("s3://"):
            raise ValidationError(f"not an s3:// URL: {url!r}")
        bucket, _, prefix = url[len("s3://") :].partition("/")
        if not bucket:
            raise ValidationError(f"no bucket in {url!r}")
        return cls(bucket, prefix, client)

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("s3")
        return self._client

    def _key(self, key: str) -> str:
        return "/".join(p for p in (self.prefix, key.strip("/")) if p)

    def describe(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def _missing(self, error: Exception) -> bool:
        code = str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))
        return code in ("NoSuchKey", "404", "NotFound")

    def _failed(self, error: Exception, key: str) -> ExportError:
        if getattr(error, "response", None) is None:
            raise error  # not an S3 answer (no credentials, no network...): as it is
        return ExportError(f"{self.describe(key)}: {error}")

    def read_bytes(self, key: str) -> bytes | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as error:
            if self._missing(error):
                return None
            raise self._failed(error, key) from error
        data: bytes = response["Body"].read()
        return data

    def open(self, key: str) -> tuple[BinaryIO, str | None]:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as error:
            if self._missing(error):
                raise FileNotFoundError(self.describe(key)) from error
            raise self._failed(error, key) from error
        etag = response.get("ETag")
        return response["Body"], etag.strip('"') if isinstance(etag, str) else None

    def _list(self, key: str, delimiter: bool) -> Iterator[dict[str, Any]]:
        prefix = self._key(key)
        prefix = prefix + "/" if prefix else ""
        params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        if delimiter:
            params["Delimiter"] = "/"
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            yield from paginator.paginate(**params)
        except Exception as error:
            raise self._failed(error, key) from error

    def folders(self, key: str) -> list[str]:
        names = []
        for page in self._list(key, True):
            for entry in page.get("CommonPrefixes") or []:
                names.append(entry["Prefix"].rstrip("/").rsplit("/", 1)[-1])
        return sorted(names)

    def files(self, key: str) -> list[str]:
        start = len(self.prefix) + 1 if self.prefix else 0
        found = []
        for page in self._list(key, False):
            for entry in page.get("Contents") or []:
                found.append(entry["Key"][start:])
        return sorted(found)

    def child(self, key: str) -> S3Source:
        return S3Source(self.bucket, self._key(key), self._client)


def source_for(location: str | Path | ExportSource, s3_client: Any = None) -> ExportSource:
    """A local path, an ``s3://`` URL, or an `ExportSource` as it is. A path to a manifest
    file stands for its folder."""
    if isinstance(location, str) and location.startswith("s3://"):
        url = location
        for name in (SUMMARY, FILES):
            if url.endswith("/" + name):
                url = url[: -len(name) - 1]
        return S3Source.from_url(url, s3_client)
    if isinstance(location, str | Path):
        path = Path(location)
        if path.name in (SUMMARY, FILES) and path.is_file():
            path = path.parent
        return LocalSource(path)
    return location


# -- manifests ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataFile:
    """One data file as ``manifest-files.json`` lists it.

    Attributes:
        key: the file's key relative to the export folder (``data/<name>.json.gz``).
        listed_key: ``dataFileS3Key`` as the manifest spells it.
        item_count: ``itemCount`` (None: not listed, e.g. an export read without manifest).
        md5: ``md5Checksum`` (base64), if any.
        etag: ``etag``, if any.
    """

    key: str
    listed_key: str
    item_count: int | None = None
    md5: str | None = None
    etag: str | None = None


@dataclass(frozen=True)
class ExportManifest:
    """An export folder's manifests.

    Attributes:
        location: where the export folder is (a path or an ``s3://`` URL).
        summary: ``manifest-summary.json`` as read (empty without one).
        files: the data files, in manifest order.
        output_format: ``DYNAMODB_JSON`` or ``ION``.
        item_count: the summary's ``itemCount``, if any.
        has_manifest: False when the folder had no ``manifest-files.json`` and its data files
            were listed instead (``require_manifest=False``): counts are not verified then.
    """

    location: str
    summary: dict[str, Any]
    files: list[DataFile]
    output_format: ExportFormat
    item_count: int | None
    has_manifest: bool = True

    @property
    def export_arn(self) -> str | None:
        """The summary's ``exportArn``."""
        value = self.summary.get("exportArn")
        return value if isinstance(value, str) else None

    @property
    def export_time(self) -> str | None:
        """The summary's ``exportTime`` (the point in time the data is from)."""
        value = self.summary.get("exportTime")
        return value if isinstance(value, str) else None


def _relative_key(listed: str) -> str:
    """A ``dataFileS3Key`` relative to the export folder: the part after
    ``AWSDynamoDB/<ExportId>/`` (with or without the export prefix before it), else as is."""
    parts = listed.strip("/").split("/")
    for index in range(len(parts) - 2, -1, -1):
        if parts[index] == EXPORTS_FOLDER and index + 2 < len(parts):
            return "/".join(parts[index + 2 :])
    return "/".join(parts)


def _locate(source: ExportSource) -> ExportSource:
    """The export folder: ``source`` itself when it holds a manifest, else the only export
    under ``source/AWSDynamoDB/`` (an error lists them when there are several)."""
    if source.read_bytes(SUMMARY) is not None or source.read_bytes(FILES) is not None:
        return source
    exports = source.folders(EXPORTS_FOLDER)
    if len(exports) == 1:
        return source.child(f"{EXPORTS_FOLDER}/{exports[0]}")
    if len(exports) > 1:
        raise ExportError(
            f"{source.describe(EXPORTS_FOLDER)} holds {len(exports)} exports "
            f"({', '.join(exports)}): name the one to read "
            f"({source.describe(EXPORTS_FOLDER + '/' + exports[-1])})"
        )
    return source


def _json_object(data: bytes, where: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise ExportError(f"{where} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ExportError(f"{where} is not a JSON object")
    return value


def open_export(
    location: str | Path | ExportSource,
    *,
    s3_client: Any = None,
    require_manifest: bool = True,
) -> tuple[ExportSource, ExportManifest]:
    """Find an export folder and read its manifests.

    ``location``: the export folder (``.../AWSDynamoDB/<ExportId>``), a manifest file in it,
    the export prefix above ``AWSDynamoDB`` when it holds one export, as a local path or an
    ``s3://bucket/key`` URL. Without ``manifest-files.json`` the folder is refused, unless
    ``require_manifest`` is False: then every file under ``data/`` is read, unverified.
    """
    source = _locate(source_for(location, s3_client))
    where = source.describe()
    raw_summary = source.read_bytes(SUMMARY)
    summary = _json_object(raw_summary, source.describe(SUMMARY)) if raw_summary else {}
    if summary.get("exportType") == "INCREMENTAL_EXPORT":
        raise ExportError(
            f"{where} is an incremental export (NewImage/OldImage change records); only full "
            "exports (ExportType FULL_EXPORT) are read as items"
        )
    output_format = str(summary.get("outputFormat") or "DYNAMODB_JSON").upper()
    if output_format not in ("DYNAMODB_JSON", "ION"):
        raise ExportError(f"{where}: unknown outputFormat {output_format!r}")
    raw_files = source.read_bytes(FILES)
    files: list[DataFile] = []
    if raw_files is not None:
        for number, line in enumerate(raw_files.decode("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            entry = _json_object(line.encode(), f"{source.describe(FILES)} line {number}")
            listed = entry.get("dataFileS3Key")
            if not isinstance(listed, str) or not listed:
                raise ExportError(f"{source.describe(FILES)} line {number} has no dataFileS3Key")
            count = entry.get("itemCount")
            files.append(
                DataFile(
                    key=_relative_key(listed),
                    listed_key=listed,
                    item_count=count if isinstance(count, int) else None,
                    md5=entry.get("md5Checksum")
                    if isinstance(entry.get("md5Checksum"), str)
                    else None,
                    etag=entry.get("etag") if isinstance(entry.get("etag"), str) else None,
                )
            )
    elif require_manifest:
        raise ExportError(
            f"no {FILES} at {where}: not an export folder (give the folder "
            f"AWSDynamoDB/<ExportId> that holds {SUMMARY} and {FILES}), or pass "
            "require_manifest=False (--no-manifest) to read its data/ files unverified"
        )
    else:
        files = [DataFile(key=k, listed_key=k) for k in source.files("data")]
        if not files:
            raise ExportError(f"no manifest and no data files under {source.describe('data')}")
    if output_format == "DYNAMODB_JSON" and files and all(".ion" in f.key for f in files):
        output_format = "ION"
    count = summary.get("itemCount")
    manifest = ExportManifest(
        location=where,
        summary=summary,
        files=files,
        output_format="ION" if output_format == "ION" else "DYNAMODB_JSON",
        item_count=count if isinstance(count, int) else None,
        has_manifest=raw_files is not None,
    )
    return source, manifest


# -- one line -> one item ---------------------------------------------------------------------


def _binary(value: Any) -> bytes:
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValidationError(f"binary value is not base64: {value[:40]!r}") from exc
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    raise ValidationError(f"binary value must be base64 text, got {type(value).__name__}")


def _attribute(value: Any, depth: int = 0) -> dict[str, Any]:
    """A JSON AttributeValue with binary values as bytes, its shape checked."""
    if not isinstance(value, dict) or len(value) != 1:
        raise ValidationError(f"not an AttributeValue (one type tag and its value): {value!r:.80}")
    if depth > 40:
        raise ValidationError("AttributeValue nested too deeply")
    ((tag, inner),) = value.items()
    if tag in ("S", "N"):
        if not isinstance(inner, str):
            raise ValidationError(f"{tag} value must be a string, got {inner!r:.40}")
        return {tag: inner}
    if tag == "B":
        return {"B": _binary(inner)}
    if tag in ("SS", "NS", "BS"):
        if not isinstance(inner, list):
            raise ValidationError(f"{tag} value must be a list")
        if tag == "BS":
            return {"BS": [_binary(v) for v in inner]}
        if not all(isinstance(v, str) for v in inner):
            raise ValidationError(f"{tag} values must be strings")
        return {tag: list(inner)}
    if tag == "M":
        if not isinstance(inner, dict):
            raise ValidationError("M value must be an object")
        return {"M": {str(k): _attribute(v, depth + 1) for k, v in inner.items()}}
    if tag == "L":
        if not isinstance(inner, list):
            raise ValidationError("L value must be a list")
        return {"L": [_attribute(v, depth + 1) for v in inner]}
    if tag in ("BOOL", "NULL"):
        if not isinstance(inner, bool):
            raise ValidationError(f"{tag} value must be true or false")
        return {tag: inner}
    raise ValidationError(f"unknown AttributeValue type {tag!r}")


def item_from_json(text: str | bytes) -> Item:
    """One DynamoDB JSON line (``{"Item": {...}}``) -> an item (binary values as bytes)."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ValidationError(f"not JSON: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("Item"), dict):
        if isinstance(document, dict) and ("NewImage" in document or "Keys" in document):
            raise ValidationError("an incremental export record (NewImage/Keys), not an Item")
        raise ValidationError('not an item line: expected {"Item": {...}}')
    return {str(name): _attribute(value) for name, value in document["Item"].items()}


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"cannot write {type(value).__name__} as DynamoDB JSON")


def item_to_json(item: Mapping[str, Any]) -> str:
    """An item -> its DynamoDB JSON line (``{"Item": {...}}``, binary values as base64),
    without the newline."""
    return json.dumps(
        {"Item": item}, ensure_ascii=False, separators=(",", ":"), default=_json_default
    )


def _number_text(value: Any) -> str:
    number = Decimal(value) if not isinstance(value, Decimal) else value
    if not number.is_finite():
        raise ValidationError(f"not a DynamoDB number: {value!r}")
    if number == number.to_integral_value() and number.as_tuple().exponent >= 0:  # type: ignore[operator]
        return str(int(number))  # 6d2 -> "600"
    return str(number)


def _ion_attribute(value: Any, depth: int = 0) -> dict[str, Any]:
    """An Ion value (from ``amazon.ion.simpleion``) -> an AttributeValue, per the documented
    mapping: string, bool, decimal, blob, list, struct, and lists annotated
    ``$dynamodb_SS``/``$dynamodb_NS``/``$dynamodb_BS`` for sets."""
    from amazon.ion.core import IonType

    if depth > 40:
        raise ValidationError("Ion value nested too deeply")
    kind = getattr(value, "ion_type", None)
    annotations = [getattr(a, "text", a) for a in getattr(value, "ion_annotations", ()) or ()]
    if value is None or kind is IonType.NULL or getattr(value, "is_null", False) is True:
        return {"NULL": True}
    if kind is IonType.BOOL or isinstance(value, bool):
        return {"BOOL": bool(value)}
    if kind in (IonType.STRING, IonType.SYMBOL) or isinstance(value, str):
        return {"S": str(value)}
    if kind in (IonType.DECIMAL, IonType.INT) or isinstance(value, int | Decimal):
        return {"N": _number_text(value)}
    if kind is IonType.FLOAT or isinstance(value, float):
        return {"N": _number_text(Decimal(repr(float(value))))}
    if kind in (IonType.BLOB, IonType.CLOB) or isinstance(value, bytes):
        return {"B": bytes(value)}
    if kind is IonType.STRUCT or isinstance(value, Mapping):
        return {"M": {str(k): _ion_attribute(v, depth + 1) for k, v in value.items()}}
    if kind in (IonType.LIST, IonType.SEXP) or isinstance(value, list):
        if "$dynamodb_SS" in annotations:
            return {"SS": [str(v) for v in value]}
        if "$dynamodb_NS" in annotations:
            return {"NS": [_number_text(v) for v in value]}
        if "$dynamodb_BS" in annotations:
            return {"BS": [bytes(v) for v in value]}
        return {"L": [_ion_attribute(v, depth + 1) for v in value]}
    raise ValidationError(f"Ion value of type {kind} has no DynamoDB equivalent")


def _ion_module() -> Any:
    try:
        from amazon.ion import simpleion
    except ModuleNotFoundError as exc:
        raise ExportError(
            "this export is in Amazon Ion format, read with the amazon.ion package: "
            "pip install 'dynamodel[ion]' (or export as DYNAMODB_JSON, the default of "
            "export_table and `dynamodel export start`)"
        ) from exc
    return simpleion


def item_from_ion(text: str, simpleion: Any) -> Item:
    """One Ion export line (``$ion_1_0 {Item:{...}}``) -> an item."""
    try:
        values = simpleion.loads(text, single_value=False)
    except Exception as exc:
        raise ValidationError(f"not Ion: {exc}") from exc
    documents = [v for v in values if isinstance(v, Mapping)]
    if len(documents) != 1 or not isinstance(documents[0].get("Item"), Mapping):
        raise ValidationError("not an item line: expected {Item:{...}}")
    return {str(k): _ion_attribute(v) for k, v in documents[0]["Item"].items()}


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


# -- the API: start and follow an export --------------------------------------------------------


def _endpoint(connection: Connection) -> str | None:
    if connection.endpoint_url:
        return connection.endpoint_url
    return None


def _export_flow(
    table: Table,
    params: dict[str, Any],
    endpoint: str | None,
) -> Flow[dict[str, Any]]:
    try:
        described = yield from table._describe_flow()
        request = {"TableArn": described["TableArn"], **params}
        response = yield from call(Request("export_table_to_point_in_time", request, control=True))
    except DynamodelError as error:
        explained = explain_error(error, "ExportTableToPointInTime", endpoint)
        if explained is error:
            raise
        raise explained from error
    description: dict[str, Any] = response["ExportDescription"]
    return description


def export_request(
    *,
    bucket: str,
    prefix: str | None = None,
    export_time: dt.datetime | None = None,
    export_format: ExportFormat = "DYNAMODB_JSON",
    bucket_owner: str | None = None,
    client_token: str | None = None,
) -> dict[str, Any]:
    """The ``ExportTableToPointInTime`` parameters besides ``TableArn`` (a full export)."""
    if export_format not in ("DYNAMODB_JSON", "ION"):
        raise ValidationError(f"export_format must be DYNAMODB_JSON or ION, got {export_format!r}")
    params: dict[str, Any] = {
        "S3Bucket": bucket,
        "ExportFormat": export_format,
        "ExportType": "FULL_EXPORT",
    }
    if prefix:
        params["S3Prefix"] = prefix.strip("/")
    if export_time is not None:
        if export_time.utcoffset() is None:
            raise ValidationError(
                f"export_time {export_time.isoformat()} has no time zone: give an aware "
                "datetime (datetime(..., tzinfo=UTC))"
            )
        params["ExportTime"] = export_time
    if bucket_owner:
        params["S3BucketOwner"] = bucket_owner
    if client_token:
        params["ClientToken"] = client_token
    return params


def _token() -> str:
    import uuid

    return uuid.uuid4().hex


def export_table(
    table: Table,
    *,
    bucket: str,
    prefix: str | None = None,
    export_time: dt.datetime | None = None,
    export_format: ExportFormat = "DYNAMODB_JSON",
    bucket_owner: str | None = None,
    client_token: str | None = None,
    connection: Connection | None = None,
) -> dict[str, Any]:
    """Start a full export of the table to S3 (``ExportTableToPointInTime``); returns its
    ``ExportDescription`` (``ExportArn``, ``ExportStatus``...).

    The table needs point-in-time recovery (``Table(point_in_time_recovery=True)``). The
    export reads no capacity. ``export_time``: the point in time to export (aware datetime,
    within the PITR window; default: now). ``client_token`` makes retries idempotent (one is
    drawn when not given). An endpoint without the API raises `UnsupportedOperation`.
    """
    from dynamodel.io.executors import run

    params = export_request(
        bucket=bucket,
        prefix=prefix,
        export_time=export_time,
        export_format=export_format,
        bucket_owner=bucket_owner,
        client_token=client_token or _token(),
    )
    resolved = table._resolve(connection)
    return run(_export_flow(table, params, _endpoint(resolved)), resolved)


async def aexport_table(
    table: Table,
    *,
    bucket: str,
    prefix: str | None = None,
    export_time: dt.datetime | None = None,
    export_format: ExportFormat = "DYNAMODB_JSON",
    bucket_owner: str | None = None,
    client_token: str | None = None,
    connection: Connection | None = None,
) -> dict[str, Any]:
    """Async `export_table`."""
    from dynamodel.io.executors import arun

    params = export_request(
        bucket=bucket,
        prefix=prefix,
        export_time=export_time,
        export_format=export_format,
        bucket_owner=bucket_owner,
        client_token=client_token or _token(),
    )
    resolved = table._resolve(connection)
    return await arun(_export_flow(table, params, _endpoint(resolved)), resolved)


def _describe_flow(
    op: str, arn_name: str, arn: str, key: str, endpoint: str | None
) -> Flow[dict[str, Any]]:
    api = "".join(p.capitalize() for p in op.split("_"))
    try:
        response = yield from call(Request(op, {arn_name: arn}, control=True))
    except DynamodelError as error:
        explained = explain_error(error, api, endpoint)
        if explained is error:
            raise
        raise explained from error
    description: dict[str, Any] = response[key]
    return description


def wait_flow(
    op: str,
    arn_name: str,
    arn: str,
    key: str,
    status_key: str,
    timeout: float,
    poll: float,
    endpoint: str | None,
) -> Flow[dict[str, Any]]:
    """Describe until the status is no longer in progress; raise on failure or timeout."""
    clock = (yield from connection_inputs()).clock
    deadline = clock() + timeout
    while True:
        description = yield from _describe_flow(op, arn_name, arn, key, endpoint)
        status = description.get(status_key)
        if status == "COMPLETED":
            return description
        if status in ("FAILED", "CANCELLED"):
            raise DynamodelError(
                f"{arn}: {status}: {description.get('FailureCode')}: "
                f"{description.get('FailureMessage')}",
                code=str(description.get("FailureCode") or status),
            )
        if clock() >= deadline:
            raise DynamodelError(f"{arn} still {status} after {timeout:.0f}s")
        yield Sleep(poll)


def _connection(connection: Connection | None, table: Table | None = None) -> Connection:
    """``connection``, else the scoped one, else ``table``'s, else the default one."""
    from dynamodel.io.scope import resolve_connection

    return resolve_connection(table, connection)


def describe_export(
    arn: str, *, table: Table | None = None, connection: Connection | None = None
) -> dict[str, Any]:
    """The ``ExportDescription`` of an export (``DescribeExport``): status, item count,
    ``ExportManifest`` (the S3 key of its ``manifest-summary.json``)..."""
    from dynamodel.io.executors import run

    resolved = _connection(connection, table)
    flow = _describe_flow(
        "describe_export", "ExportArn", arn, "ExportDescription", _endpoint(resolved)
    )
    return run(flow, resolved)


async def adescribe_export(
    arn: str, *, table: Table | None = None, connection: Connection | None = None
) -> dict[str, Any]:
    """Async `describe_export`."""
    from dynamodel.io.executors import arun

    resolved = _connection(connection, table)
    flow = _describe_flow(
        "describe_export", "ExportArn", arn, "ExportDescription", _endpoint(resolved)
    )
    return await arun(flow, resolved)


def wait_export(
    arn: str,
    *,
    timeout: float = 3600.0,
    poll: float = 10.0,
    table: Table | None = None,
    connection: Connection | None = None,
) -> dict[str, Any]:
    """Wait until the export is COMPLETED and return its description; a FAILED export raises
    `DynamodelError` with its ``FailureCode`` and ``FailureMessage``."""
    from dynamodel.io.executors import run

    resolved = _connection(connection, table)
    flow = wait_flow(
        "describe_export",
        "ExportArn",
        arn,
        "ExportDescription",
        "ExportStatus",
        timeout,
        poll,
        _endpoint(resolved),
    )
    return run(flow, resolved)


async def await_export(
    arn: str,
    *,
    timeout: float = 3600.0,
    poll: float = 10.0,
    table: Table | None = None,
    connection: Connection | None = None,
) -> dict[str, Any]:
    """Async `wait_export`."""
    from dynamodel.io.executors import arun

    resolved = _connection(connection, table)
    flow = wait_flow(
        "describe_export",
        "ExportArn",
        arn,
        "ExportDescription",
        "ExportStatus",
        timeout,
        poll,
        _endpoint(resolved),
    )
    return await arun(flow, resolved)


def export_location(description: Mapping[str, Any]) -> str | None:
    """The ``s3://`` URL of a completed export's folder (from ``ExportManifest``, the key of
    its ``manifest-summary.json``), or None when the description does not say."""
    bucket = description.get("S3Bucket")
    manifest = description.get("ExportManifest")
    if not isinstance(bucket, str) or not isinstance(manifest, str):
        return None
    folder = manifest.rsplit("/", 1)[0] if "/" in manifest else ""
    return f"s3://{bucket}/{folder}"
