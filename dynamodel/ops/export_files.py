"""Where an export's files are (a local folder or S3) and its manifests (see
`dynamodel.ops.exports`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from dynamodel.core.errors import ValidationError
from dynamodel.ops.export_errors import (
    EXPORTS_FOLDER,
    FILES,
    SUMMARY,
    ExportError,
    ExportFormat,
)

if TYPE_CHECKING:
    pass


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
