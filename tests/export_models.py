"""Models and a writer of export folders in the documented layout, for the export tests.

``write_export`` lays out what ExportTableToPointInTime writes (the developer guide's "DynamoDB
table export output format"): ``<root>/AWSDynamoDB/<ExportId>/manifest-summary.json``,
``manifest-files.json`` (JSON lines: itemCount, md5Checksum, etag, dataFileS3Key with the
``AWSDynamoDB/<ExportId>/data/`` path) and ``data/<name>.json.gz`` (gzip, one
``{"Item": {...}}`` per line, binary values base64).
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import json
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from dynamodel import GSI, Model, Table
from dynamodel.ops.exports import item_to_json

EXPORT_ID = "01700000000000-a1b2c3d4"

shop = Table("exports-shop", indexes=[GSI("gsi1", pk="gsi1pk", sk="gsi1sk")])
TABLE_ARN = f"arn:aws:dynamodb:us-east-1:123456789012:table/{shop.name}"


class Customer(Model):
    class Meta:
        table = shop
        pk = "CUSTOMER#{customer_id}"
        sk = "PROFILE"
        unique = ("email",)

    customer_id: str
    email: str
    avatar: bytes = b""
    tags: set[str] = set()
    lucky: set[int] = set()


class Order(Model):
    class Meta:
        table = shop
        pk = "CUSTOMER#{customer_id}"
        sk = "ORDER#{order_id}"
        indexes = {"gsi1": ("STATUS#{status}", "{order_id}")}

    customer_id: str
    order_id: int
    status: str = "open"
    total: Decimal
    placed: dt.datetime
    lines: list[dict[str, Any]] = []
    attachments: set[bytes] = set()
    ratio: float = 0.5


def customers(count: int = 3) -> list[Customer]:
    return [
        Customer(
            customer_id=f"c{i}",
            email=f"c{i}@example.com",
            avatar=bytes([i, 0, 255, 10]),  # not UTF-8, with a newline byte
            tags={"vip", f"t{i}"},
            lucky={7, i},
        )
        for i in range(count)
    ]


def orders(count: int = 4) -> list[Order]:
    return [
        Order(
            customer_id=f"c{i % 2}",
            order_id=i,
            total=Decimal("1234567890.123456789012345678901234567"),
            placed=dt.datetime(2024, 2, 29, 23, 59, 59, 123456, tzinfo=dt.UTC),
            lines=[{"sku": "A\nB", "qty": 2, "price": Decimal("9.99"), "meta": {"gift": True}}],
            attachments={b"\x00\x01", b"\xff"},
            ratio=0.1 + i,
        )
        for i in range(count)
    ]


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def write_export(
    root: Path,
    files: Sequence[Sequence[dict[str, Any] | str]],
    *,
    export_id: str = EXPORT_ID,
    counts: Sequence[int | None] | None = None,
    summary: dict[str, Any] | None = None,
    compress: bool = True,
    ion: bool = False,
    multipart: bool = False,
) -> Path:
    """An export folder under ``root`` (the export prefix); returns the export folder.

    ``files``: per data file, its items (AttributeValue maps, binary values as bytes) or raw
    lines (str, written as they are). ``counts`` overrides the itemCount of each file;
    ``multipart`` lists multipart-upload ETags (not an MD5: not checked on local files).
    """
    folder = root / "AWSDynamoDB" / export_id
    (folder / "data").mkdir(parents=True)
    (folder / "_started").write_text("")
    entries = []
    total = 0
    for number, lines in enumerate(files):
        text = "".join(
            (line if isinstance(line, str) else item_to_json(line)) + "\n" for line in lines
        )
        raw = text.encode()
        body = gzip.compress(raw, mtime=0) if compress else raw
        name = f"file{number:02d}abcdefghij.{'ion' if ion else 'json'}.gz"
        (folder / "data" / name).write_bytes(body)
        count = len(lines) if counts is None else counts[number]
        total += len(lines)
        entry: dict[str, Any] = {
            "itemCount": count,
            "md5Checksum": md5_b64(body),
            # what S3 gives a single-part upload (the object's MD5), or a multipart ETag
            "etag": hashlib.md5(body).hexdigest() + ("-2" if multipart else ""),
            "dataFileS3Key": f"AWSDynamoDB/{export_id}/data/{name}",
        }
        entries.append(json.dumps(entry))
    (folder / "manifest-files.json").write_text("\n".join(entries) + "\n")
    document = {
        "version": "2020-06-30",
        "exportArn": f"{TABLE_ARN}/export/{export_id}",
        "startTime": "2024-03-01T10:00:00.000Z",
        "endTime": "2024-03-01T10:05:00.000Z",
        "tableArn": TABLE_ARN,
        "tableId": "12345a12-abcd-123a-ab12-1234abc12345",
        "exportTime": "2024-03-01T10:00:00.000Z",
        "s3Bucket": "bucket",
        "s3Prefix": root.name,
        "s3SseAlgorithm": "AES256",
        "s3SseKmsKeyId": None,
        "manifestFilesS3Key": f"AWSDynamoDB/{export_id}/manifest-files.json",
        "billedSizeBytes": 0,
        "itemCount": total,
        "outputFormat": "ION" if ion else "DYNAMODB_JSON",
        **(summary or {}),
    }
    (folder / "manifest-summary.json").write_text(json.dumps(document, indent=3))
    return folder
