"""Import-ready files written from models, and ``ImportTable``: a new table loaded from S3.

``ImportTable`` (docs/exports.md) creates a new table and fills it from S3 objects without
consuming write capacity. `ImportWriter` writes the objects from model instances::

    <folder>/data/part-00000.json.gz     gzip, JSON lines {"Item": {...}} (DynamoDB JSON)
    <folder>/manifest-files.json         one line per data file: itemCount, md5Checksum, etag
    <folder>/manifest-summary.json       itemCount, and the ImportTable parameters

Upload the folder to ``s3://bucket/prefix/`` and import with ``S3KeyPrefix=prefix/data/``:
ImportTable reads every object under the prefix, so only data files live under ``data/``.
The manifests have the layout of an export's, so `dynamodel.ops.exports.read_export` reads
the folder back (checking counts and checksums).

```python
with ImportWriter("out", table=shop) as writer:
    for order in orders:
        writer.write(order)
files = writer.result                     # ImportFiles: the data files, counts, parameters
request = files.import_request(bucket="b", prefix="imports/shop")   # ImportTable parameters
```
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from dynamodel.core.codec import Item, check_item_size
from dynamodel.core.errors import ValidationError
from dynamodel.core.flows import Flow, Request, call
from dynamodel.modelling.table import LSI
from dynamodel.ops.export_errors import FILES, SUMMARY, explained
from dynamodel.ops.export_items import item_to_json
from dynamodel.ops.export_jobs import _connection, _describe_flow, _endpoint, _token, wait_flow

if TYPE_CHECKING:
    from dynamodel.io.clients import Connection
    from dynamodel.modelling.base import ModelBase
    from dynamodel.modelling.table import Table

__all__ = [
    "ImportFiles",
    "ImportWriter",
    "adescribe_import",
    "aimport_table",
    "await_import",
    "describe_import",
    "import_follow_ups",
    "import_request",
    "import_table",
    "table_creation_parameters",
    "upload_import_files",
    "wait_import",
    "write_import_files",
]

Compression = Literal["GZIP", "NONE"]
DATA_FOLDER = "data"
#: the most S3 objects one ImportTable reads (the developer guide's import quotas)
MAX_IMPORT_OBJECTS = 50_000
#: default bound of one data file, before compression
DEFAULT_MAX_FILE_BYTES = 128 * 1024 * 1024
#: what ImportTable's TableCreationParameters accept (botocore's service model)
CREATION_KEYS = (
    "TableName",
    "AttributeDefinitions",
    "KeySchema",
    "BillingMode",
    "ProvisionedThroughput",
    "OnDemandThroughput",
    "SSESpecification",
    "GlobalSecondaryIndexes",
)


# -- the table ImportTable creates ------------------------------------------------------------


def table_creation_parameters(table: Table, table_name: str | None = None) -> dict[str, Any]:
    """ImportTable's ``TableCreationParameters`` from the table's declaration.

    ImportTable creates the table with its keys, billing and GSIs only: LSIs cannot be
    created by an import (nor added later), so a table that declares any is refused. Stream,
    TTL, point-in-time recovery, table class, deletion protection and tags are applied after
    the import (`import_follow_ups`; ``dynamodel table sync``).
    """
    lsis = [index.name for index in table.indexes if isinstance(index, LSI)]
    if lsis:
        raise ValidationError(
            f"table {table.name!r} declares LSIs {lsis}: ImportTable cannot create local "
            "secondary indexes (and they cannot be added to an existing table). Create the "
            "table (`dynamodel table create`) and load it with batch writes instead"
        )
    request = table.create_table_request()
    params = {key: request[key] for key in CREATION_KEYS if key in request}
    if table_name is not None:
        params["TableName"] = table_name
    return params


def import_follow_ups(table: Table) -> list[str]:
    """The declared settings ImportTable does not apply: run ``dynamodel table sync`` (or
    `dynamodel.schema.apply`) on the new table once the import completed."""
    out = []
    if table.stream:
        out.append(f"stream ({table.stream})")
    if table.ttl:
        out.append(f"TTL on {table.ttl!r}")
    if table.point_in_time_recovery:
        out.append("point-in-time recovery")
    if table.table_class != "STANDARD":
        out.append(f"table class {table.table_class}")
    if table.deletion_protection:
        out.append("deletion protection")
    if table.tags:
        out.append("tags")
    return out


def import_request(
    table: Table,
    *,
    bucket: str,
    prefix: str,
    table_name: str | None = None,
    compression: Literal["GZIP", "ZSTD", "NONE"] = "GZIP",
    bucket_owner: str | None = None,
    client_token: str | None = None,
) -> dict[str, Any]:
    """The ``ImportTable`` parameters: DynamoDB JSON objects under ``s3://bucket/prefix``,
    into a new table declared as ``table`` (named ``table_name`` or its physical name).

    ``prefix`` is the key prefix of the data objects themselves (``<folder>/data/`` for the
    files `ImportWriter` writes; ``<export prefix>/AWSDynamoDB/<ExportId>/data/`` to import an
    export directly): every object under it is imported.
    """
    if compression not in ("GZIP", "ZSTD", "NONE"):
        raise ValidationError(f"compression must be GZIP, ZSTD or NONE, got {compression!r}")
    source: dict[str, Any] = {"S3Bucket": bucket, "S3KeyPrefix": prefix.lstrip("/")}
    if bucket_owner:
        source["S3BucketOwner"] = bucket_owner
    params: dict[str, Any] = {
        "S3BucketSource": source,
        "InputFormat": "DYNAMODB_JSON",
        "InputCompressionType": compression,
        "TableCreationParameters": table_creation_parameters(table, table_name),
    }
    if client_token:
        params["ClientToken"] = client_token
    return params


# -- writing --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WrittenFile:
    """One data file written.

    Attributes:
        key: its key relative to the folder (``data/part-00000.json.gz``).
        path: where it is.
        item_count: the items in it.
        size: its size in bytes (as stored).
        md5: base64 MD5 of the stored bytes (``md5Checksum`` in ``manifest-files.json``).
        etag: hex MD5 of the stored bytes: the ETag of a single-part S3 upload.
    """

    key: str
    path: Path
    item_count: int
    size: int
    md5: str
    etag: str


@dataclass
class ImportFiles:
    """The folder `ImportWriter` wrote.

    Attributes:
        folder: the folder.
        files: the data files, in order.
        item_count: the items written in all (model items, their unique-constraint guards and
            raw items).
        by_model: model class name -> instances written.
        guards: unique-constraint guard items written.
        raw_items: items written as they were (`ImportWriter.write_item`).
        compression: ``GZIP`` or ``NONE``.
        table: the table the items belong to.
    """

    folder: Path
    files: list[WrittenFile] = field(default_factory=list)
    item_count: int = 0
    by_model: dict[str, int] = field(default_factory=dict)
    guards: int = 0
    raw_items: int = 0
    compression: Compression = "GZIP"
    table: Table | None = None

    def import_request(
        self,
        *,
        bucket: str,
        prefix: str,
        table_name: str | None = None,
        client_token: str | None = None,
    ) -> dict[str, Any]:
        """The ImportTable parameters once the folder is uploaded to ``s3://bucket/prefix/``
        (its data objects are then under ``prefix/data/``)."""
        if self.table is None:
            raise ValidationError("no table known for these files: nothing was written")
        return import_request(
            self.table,
            bucket=bucket,
            prefix=data_prefix(prefix),
            table_name=table_name,
            compression=self.compression,
            client_token=client_token,
        )


def data_prefix(prefix: str) -> str:
    """The key prefix of the data objects of a folder uploaded to ``prefix``."""
    prefix = prefix.strip("/")
    return f"{prefix}/{DATA_FOLDER}/" if prefix else f"{DATA_FOLDER}/"


class ImportWriter:
    """Writes model instances (and raw items) as import-ready DynamoDB JSON files.

    Args:
        folder: where to write; created if needed, and must not hold data files already.
        table: the table of the items (default: the first model's).
        max_file_bytes: bound of one data file before compression; a new file is started
            when the next item would cross it (an item is never split). At most
            `MAX_IMPORT_OBJECTS` files are written, the most one ImportTable reads.
        compression: ``GZIP`` (default) or ``NONE``.
        unique_guards: also write the guard item of each unique value
            (``Meta.unique``, docs/unique.md), so that the imported table enforces the
            constraints; two items with the same unique value raise `ValidationError`.
        check_duplicate_keys: refuse two items with the same primary key (ImportTable would
            keep one of them at random, silently). Keeps 16 bytes per item in memory; False
            turns the check off for very large imports.

    Use it as a context manager (the manifests are written when it closes without an
    error), or call `close`. ``result`` holds the `ImportFiles` once closed.
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        table: Table | None = None,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        compression: Compression = "GZIP",
        unique_guards: bool = True,
        check_duplicate_keys: bool = True,
    ) -> None:
        if compression not in ("GZIP", "NONE"):
            raise ValidationError(f"compression must be GZIP or NONE, got {compression!r}")
        if max_file_bytes < 1024:
            raise ValidationError("max_file_bytes must be at least 1024")
        self.folder = Path(folder)
        data = self.folder / DATA_FOLDER
        if data.is_dir() and any(data.iterdir()):
            raise ValidationError(
                f"{data} already holds files: write import files into an empty folder (an "
                "import reads every object under its prefix)"
            )
        data.mkdir(parents=True, exist_ok=True)
        self.table = table
        self.max_file_bytes = max_file_bytes
        self.compression: Compression = compression
        self.unique_guards = unique_guards
        self._keys: set[bytes] | None = set() if check_duplicate_keys else None
        self._files = ImportFiles(folder=self.folder, compression=compression, table=table)
        self._handle: Any = None
        self._path: Path | None = None
        self._count = 0
        self._bytes = 0
        self._closed = False
        self.result: ImportFiles | None = None

    # -- context manager ----------------------------------------------------------------------

    def __enter__(self) -> ImportWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is None:
            self.close()
        else:
            self._finish_file()  # close the handle; no manifests: the folder is incomplete
            self._closed = True

    # -- writing ------------------------------------------------------------------------------

    def _table_of(self, model: type[ModelBase]) -> Table:
        spec = model._spec()
        if self.table is None:
            self.table = self._files.table = spec.table
        elif spec.table is not self.table:
            raise ValidationError(
                f"{model.__name__} belongs to table {spec.table.name!r}, not "
                f"{self.table.name!r}: write each table's items into its own folder"
            )
        return self.table

    def write(self, instance: ModelBase) -> None:
        """Write one model instance (``to_item()``: its fields, keys and entity type), and
        the guards of its unique values."""
        model = type(instance)
        table = self._table_of(model)
        item = instance.to_item()
        self._write(item, table)
        name = model.__name__
        self._files.by_model[name] = self._files.by_model.get(name, 0) + 1
        spec = model._spec()
        if self.unique_guards and spec.unique:
            for guard in _guard_items(instance, item):
                self._write(guard, table, unique=True)
                self._files.guards += 1

    def write_item(self, item: Mapping[str, Any]) -> None:
        """Write one item as it is (AttributeValues; binary values as bytes): an unknown
        entity's item, dynamodel's own records read from an export..."""
        if self.table is None:
            raise ValidationError("write_item needs the table: ImportWriter(..., table=...)")
        check_item_size(item, "raw item")
        self._write(dict(item), self.table)
        self._files.raw_items += 1

    def write_all(self, instances: Iterable[ModelBase]) -> None:
        """`write` each instance."""
        for instance in instances:
            self.write(instance)

    def _write(self, item: Item, table: Table, unique: bool = False) -> None:
        if self._closed:
            raise ValidationError("this ImportWriter is closed")
        missing = [a for a in table.key_attributes() if a not in item]
        if missing:
            raise ValidationError(f"item without its key attributes {missing}: {item!r:.200}")
        if self._keys is not None:
            key = [next(iter(item[a].items())) for a in table.key_attributes()]
            digest = hashlib.blake2b(
                json.dumps(key, default=_key_default, sort_keys=True).encode(), digest_size=16
            ).digest()
            if digest in self._keys:
                plain = {a: next(iter(item[a].values())) for a in table.key_attributes()}
                if unique:
                    raise ValidationError(
                        f"two items hold the same unique value (guard {plain}): the imported "
                        "table would not enforce the constraint"
                    )
                raise ValidationError(
                    f"two items have the primary key {plain}: ImportTable would keep one of "
                    "them at random"
                )
            self._keys.add(digest)
        line = (item_to_json(item) + "\n").encode("utf-8")
        if self._handle is not None and self._bytes + len(line) > self.max_file_bytes:
            self._finish_file()
        if self._handle is None:
            self._start_file()
        self._handle.write(line)
        self._bytes += len(line)
        self._count += 1
        self._files.item_count += 1

    def _start_file(self) -> None:
        number = len(self._files.files)
        if number >= MAX_IMPORT_OBJECTS:
            raise ValidationError(
                f"more than {MAX_IMPORT_OBJECTS:,} data files: one ImportTable reads at most "
                f"that many objects; raise max_file_bytes (now {self.max_file_bytes:,})"
            )
        suffix = ".json.gz" if self.compression == "GZIP" else ".json"
        self._path = self.folder / DATA_FOLDER / f"part-{number:05d}{suffix}"
        if self.compression == "GZIP":
            # mtime 0: the same items give the same bytes (and checksums)
            self._handle = gzip.GzipFile(filename=str(self._path), mode="wb", mtime=0)
        else:
            self._handle = self._path.open("wb")
        self._count = 0
        self._bytes = 0

    def _finish_file(self) -> None:
        if self._handle is None or self._path is None:
            return
        self._handle.close()
        self._handle = None
        digest = hashlib.md5(usedforsecurity=False)
        size = 0
        with self._path.open("rb") as stored:
            while chunk := stored.read(1 << 16):
                digest.update(chunk)
                size += len(chunk)
        self._files.files.append(
            WrittenFile(
                key=f"{DATA_FOLDER}/{self._path.name}",
                path=self._path,
                item_count=self._count,
                size=size,
                md5=base64.b64encode(digest.digest()).decode("ascii"),
                etag=digest.hexdigest(),
            )
        )
        self._path = None

    def close(self) -> ImportFiles:
        """Finish the last file and write the manifests; returns the `ImportFiles`."""
        if self.result is not None:
            return self.result
        self._finish_file()
        self._closed = True
        files = self._files
        lines = [
            json.dumps(
                {
                    "itemCount": f.item_count,
                    "md5Checksum": f.md5,
                    "etag": f.etag,
                    "dataFileS3Key": f.key,
                },
                separators=(",", ":"),
            )
            for f in files.files
        ]
        (self.folder / FILES).write_text("".join(line + "\n" for line in lines))
        summary: dict[str, Any] = {
            "version": "2020-06-30",
            "writer": "dynamodel",
            "itemCount": files.item_count,
            "outputFormat": "DYNAMODB_JSON",
            "manifestFilesS3Key": FILES,
            "dataPrefix": f"{DATA_FOLDER}/",
            "inputCompressionType": files.compression,
        }
        if files.table is not None:
            summary["tableName"] = files.table.physical_name
            try:
                summary["tableCreationParameters"] = table_creation_parameters(files.table)
            except ValidationError as error:  # LSIs: the files are still readable
                summary["tableCreationParameters"] = None
                summary["importRefused"] = str(error)
        (self.folder / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")
        self.result = files
        return files


def _key_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(type(value).__name__)


def _guard_items(instance: ModelBase, item: Item) -> list[Item]:
    """The guard items a write of ``instance`` claims (docs/unique.md)."""
    from dynamodel.ops.unique import (
        ENTITY,
        FIELD,
        GUARD_TYPE,
        OWNER,
        VALUE,
        guard_key,
        owner_text,
        value_text,
    )

    model = type(instance)
    spec = model._spec()
    table = spec.table
    owner = owner_text({a: item[a] for a in table.key_attributes()})
    guards = []
    for name in spec.unique:
        text = value_text(model, name, instance.__dict__.get(name))
        if text is None:
            continue
        guards.append(
            {
                **guard_key(model, name, text),
                table.type_attribute: {"S": GUARD_TYPE},
                ENTITY: {"S": spec.entity},
                FIELD: {"S": spec.stored_names[name]},
                VALUE: {"S": text},
                OWNER: {"S": owner},
            }
        )
    return guards


def write_import_files(
    folder: str | Path,
    instances: Iterable[ModelBase],
    *,
    table: Table | None = None,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    compression: Compression = "GZIP",
    unique_guards: bool = True,
    check_duplicate_keys: bool = True,
) -> ImportFiles:
    """Write ``instances`` as import-ready files into ``folder`` (see `ImportWriter`)."""
    with ImportWriter(
        folder,
        table=table,
        max_file_bytes=max_file_bytes,
        compression=compression,
        unique_guards=unique_guards,
        check_duplicate_keys=check_duplicate_keys,
    ) as writer:
        writer.write_all(instances)
    assert writer.result is not None
    return writer.result


def upload_import_files(
    folder: str | Path | ImportFiles,
    *,
    bucket: str,
    prefix: str,
    s3_client: Any = None,
) -> list[str]:
    """Upload a folder `ImportWriter` wrote to ``s3://bucket/prefix/`` (data files under
    ``prefix/data/``, manifests beside it); returns the keys written.

    ``s3_client``: a boto3 S3 client (default: ``boto3.client("s3")``).
    """
    root = folder.folder if isinstance(folder, ImportFiles) else Path(folder)
    if not (root / FILES).is_file():
        raise ValidationError(f"{root} has no {FILES}: not a finished import folder")
    if s3_client is None:
        import boto3

        s3_client = boto3.client("s3")
    base = prefix.strip("/")
    keys = []
    names = [p for p in sorted((root / DATA_FOLDER).iterdir()) if p.is_file()]
    for path in [*names, root / FILES, root / SUMMARY]:
        relative = path.relative_to(root).as_posix()
        key = f"{base}/{relative}" if base else relative
        s3_client.upload_file(str(path), bucket, key)
        keys.append(key)
    return keys


# -- the API ----------------------------------------------------------------------------------


def _import_flow(params: dict[str, Any], endpoint: str | None) -> Flow[dict[str, Any]]:
    from dynamodel.modelling.tenancy import refuse_in_tenant_scope

    name = params["TableCreationParameters"]["TableName"]
    refuse_in_tenant_scope(f"importing into a new table {name!r}")
    request = Request("import_table", params, control=True)
    response = yield from explained(call(request), "ImportTable", endpoint)
    description: dict[str, Any] = response["ImportTableDescription"]
    return description


def import_table(
    table: Table,
    *,
    bucket: str,
    prefix: str,
    table_name: str | None = None,
    compression: Literal["GZIP", "ZSTD", "NONE"] = "GZIP",
    bucket_owner: str | None = None,
    client_token: str | None = None,
    connection: Connection | None = None,
) -> dict[str, Any]:
    """Start an import (``ImportTable``): a new table declared as ``table`` (named
    ``table_name``, default its physical name), loaded from the DynamoDB JSON objects under
    ``s3://bucket/prefix``; returns the ``ImportTableDescription`` (``ImportArn``...).

    See `import_request` for ``prefix``. The import consumes no write capacity. Settings
    ImportTable does not apply are listed by `import_follow_ups`. An endpoint without the API
    raises `dynamodel.ops.exports.UnsupportedOperation`.
    """
    from dynamodel.io.executors import run

    params = import_request(
        table,
        bucket=bucket,
        prefix=prefix,
        table_name=table_name,
        compression=compression,
        bucket_owner=bucket_owner,
        client_token=client_token or _token(),
    )
    resolved = table._resolve(connection)
    return run(_import_flow(params, _endpoint(resolved)), resolved)


async def aimport_table(
    table: Table,
    *,
    bucket: str,
    prefix: str,
    table_name: str | None = None,
    compression: Literal["GZIP", "ZSTD", "NONE"] = "GZIP",
    bucket_owner: str | None = None,
    client_token: str | None = None,
    connection: Connection | None = None,
) -> dict[str, Any]:
    """Async `import_table`."""
    from dynamodel.io.executors import arun

    params = import_request(
        table,
        bucket=bucket,
        prefix=prefix,
        table_name=table_name,
        compression=compression,
        bucket_owner=bucket_owner,
        client_token=client_token or _token(),
    )
    resolved = table._resolve(connection)
    return await arun(_import_flow(params, _endpoint(resolved)), resolved)


def describe_import(
    arn: str, *, table: Table | None = None, connection: Connection | None = None
) -> dict[str, Any]:
    """The ``ImportTableDescription`` of an import (``DescribeImport``): status, processed,
    imported and error counts..."""
    from dynamodel.io.executors import run

    resolved = _connection(connection, table)
    flow = _describe_flow(
        "describe_import", "ImportArn", arn, "ImportTableDescription", _endpoint(resolved)
    )
    return run(flow, resolved)


async def adescribe_import(
    arn: str, *, table: Table | None = None, connection: Connection | None = None
) -> dict[str, Any]:
    """Async `describe_import`."""
    from dynamodel.io.executors import arun

    resolved = _connection(connection, table)
    flow = _describe_flow(
        "describe_import", "ImportArn", arn, "ImportTableDescription", _endpoint(resolved)
    )
    return await arun(flow, resolved)


def wait_import(
    arn: str,
    *,
    timeout: float = 3600.0,
    poll: float = 10.0,
    table: Table | None = None,
    connection: Connection | None = None,
) -> dict[str, Any]:
    """Wait until the import is COMPLETED and return its description; a FAILED or CANCELLED
    import raises `DynamodelError` with its ``FailureCode`` and ``FailureMessage``. A
    completed import may still report ``ErrorCount`` (items it could not load)."""
    from dynamodel.io.executors import run

    resolved = _connection(connection, table)
    flow = wait_flow(
        "describe_import",
        "ImportArn",
        arn,
        "ImportTableDescription",
        "ImportStatus",
        timeout,
        poll,
        _endpoint(resolved),
    )
    return run(flow, resolved)


async def await_import(
    arn: str,
    *,
    timeout: float = 3600.0,
    poll: float = 10.0,
    table: Table | None = None,
    connection: Connection | None = None,
) -> dict[str, Any]:
    """Async `wait_import`."""
    from dynamodel.io.executors import arun

    resolved = _connection(connection, table)
    flow = wait_flow(
        "describe_import",
        "ImportArn",
        arn,
        "ImportTableDescription",
        "ImportStatus",
        timeout,
        poll,
        _endpoint(resolved),
    )
    return await arun(flow, resolved)
