"""Reading DynamoDB exports (the documented S3 layout) into models, and writing import-ready
files: routing, unrouted items, count and checksum checks, streaming, S3, Ion, round trips.
No DynamoDB server: the files are made here (see export_models.py)."""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from export_models import (
    EXPORT_ID,
    Customer,
    Order,
    customers,
    orders,
    shop,
    write_export,
)

from dynamodel import GSI, LSI, Model, Table
from dynamodel.core.errors import ValidationError
from dynamodel.ops import exports, imports
from dynamodel.ops.exports import (
    ExportError,
    ExportItem,
    ExportVerificationError,
    LocalSource,
    UnroutedItem,
    read_export,
)
from dynamodel.ops.imports import ImportWriter, write_import_files


def mixed_files() -> list[list[Any]]:
    """Two data files: customers and orders mixed, an unknown entity, a unique guard."""
    cs, os_ = customers(3), orders(4)
    guard = {
        "pk": {"S": '_dynamodel#unique#["Customer","email","c0@example.com"]'},
        "sk": {"S": "_dynamodel#unique"},
        "_type": {"S": "_dynamodel:unique"},
    }
    unknown = {"pk": {"S": "INVOICE#1"}, "sk": {"S": "X"}, "_type": {"S": "Invoice"}}
    return [
        [cs[0].to_item(), os_[0].to_item(), unknown, cs[1].to_item()],
        [os_[1].to_item(), guard, os_[2].to_item(), cs[2].to_item(), os_[3].to_item()],
    ]


# -- reading the documented layout -----------------------------------------------------------


def test_items_of_several_entities_are_routed_to_their_models(tmp_path: Path) -> None:
    folder = write_export(tmp_path / "exports", mixed_files())
    reader = read_export(folder, table=shop)
    assert reader.manifest.item_count == 9
    assert reader.manifest.export_arn and EXPORT_ID in reader.manifest.export_arn
    assert [f.key for f in reader.manifest.files] == [
        "data/file00abcdefghij.json.gz",
        "data/file01abcdefghij.json.gz",
    ]
    got = list(reader)
    cs, os_ = customers(3), orders(4)
    assert got == [cs[0], os_[0], cs[1], os_[1], os_[2], cs[2], os_[3]]
    assert [type(x) for x in got].count(Order) == 4
    assert {(u.kind, u.entity, u.file[-23:], u.line) for u in reader.unrouted} == {
        ("unknown_entity", "Invoice", "file00abcdefghij.json.gz"[-23:], 3),
        ("internal", "_dynamodel:unique", "file01abcdefghij.json.gz"[-23:], 2),
    }
    report = reader.report
    assert report.ok and report.items == 9
    assert report.by_model == {"Customer": 3, "Order": 4}
    assert report.unrouted == {"unknown_entity": 1, "internal": 1}
    assert [(f.lines, f.routed, f.unrouted, f.md5) for f in report.files] == [
        (4, 3, 1, "ok"),
        (5, 4, 1, "ok"),
    ]


def test_records_keep_file_order_with_the_raw_items(tmp_path: Path) -> None:
    folder = write_export(tmp_path, mixed_files())
    records = list(read_export(folder, models=[Customer, Order]).records())
    assert len(records) == 9
    first = records[0]
    assert isinstance(first, ExportItem) and first.model is Customer and first.line == 1
    assert first.raw["avatar"] == {"B": bytes([0, 0, 255, 10])}
    unknown = records[2]
    assert isinstance(unknown, UnroutedItem) and unknown.raw is not None
    assert unknown.raw["_type"] == {"S": "Invoice"}


def test_only_the_models_given_are_routed(tmp_path: Path) -> None:
    folder = write_export(tmp_path, mixed_files())
    reader = read_export(folder, models=[Order])
    assert [type(x) for x in reader] == [Order] * 4
    assert reader.report.unrouted == {"unknown_entity": 4, "internal": 1}


def test_an_item_that_does_not_fit_its_model_and_a_corrupt_line_are_reported(
    tmp_path: Path,
) -> None:
    bad_order = orders(1)[0].to_item()
    bad_order["total"] = {"S": "not a number"}
    no_type = {"pk": {"S": "LEGACY#1"}, "sk": {"S": "x"}}
    lines = [
        customers(1)[0].to_item(),
        '{"Item": {"pk": {"S": "CUSTOMER#c9"}, "sk": ',  # cut short
        bad_order,
        '{"Item": {"pk": {"Q": "?"}}}',
        '{"NewImage": {}}',
        no_type,
        orders(2)[1].to_item(),
    ]
    folder = write_export(tmp_path, [lines])
    seen: list[UnroutedItem] = []
    reader = read_export(folder, table=shop, on_unrouted=seen.append)
    assert list(reader) == [customers(1)[0], orders(2)[1]]
    assert reader.unrouted == []  # they went to the function
    assert [(u.kind, u.line) for u in seen] == [
        ("invalid_line", 2),
        ("invalid_item", 3),
        ("invalid_line", 4),
        ("invalid_line", 5),
        ("no_entity_type", 6),
    ]
    assert seen[0].text is not None and seen[0].text.startswith('{"Item"')
    assert seen[0].raw is None and "not JSON" in seen[0].reason
    assert "does not fit Order" in seen[1].reason and seen[1].error is not None
    assert "unknown AttributeValue type 'Q'" in seen[2].reason
    assert "incremental" in seen[3].reason
    assert reader.report.ok  # seven lines, seven listed: the file itself is whole


def test_a_count_mismatch_raises_after_the_files_items_when_strict(tmp_path: Path) -> None:
    cs = customers(3)
    folder = write_export(
        tmp_path, [[c.to_item() for c in cs[:2]], [cs[2].to_item()]], counts=[3, 1]
    )
    reader = read_export(folder, table=shop)
    got: list[Any] = []
    with pytest.raises(ExportVerificationError) as caught:
        for item in reader:
            got.append(item)
    assert got == cs[:2]  # the file's items came first; the next file was not read
    assert caught.value.problems == [
        "data/file00abcdefghij.json.gz: itemCount is 3 but 2 items were read"
    ]
    loose = read_export(folder, table=shop, strict=False)
    assert list(loose) == cs
    assert not loose.report.ok
    assert loose.report.problems == caught.value.problems
    assert [f.problems for f in loose.report.files][1] == []
    unchecked = read_export(folder, table=shop, verify=False)
    assert list(unchecked) == cs and unchecked.report.ok


def test_the_summary_count_and_checksums_are_checked(tmp_path: Path) -> None:
    folder = write_export(tmp_path, [[c.to_item() for c in customers(2)]], summary={"itemCount": 5})
    with pytest.raises(ExportVerificationError, match=r"manifest-summary\.json: itemCount is 5"):
        list(read_export(folder, table=shop))

    other = write_export(tmp_path / "b", [[c.to_item() for c in customers(2)]])
    data = next((other / "data").iterdir())
    body = gzip.decompress(data.read_bytes())
    data.write_bytes(gzip.compress(body.replace(b"c1@example.com", b"c1@example.org"), mtime=0))
    reader = read_export(other, table=shop, strict=False)
    assert len(list(reader)) == 2
    assert reader.report.files[0].md5 == "mismatch"
    assert reader.report.problems == [
        f"data/{data.name}: md5Checksum does not match",
        f"data/{data.name}: etag does not match",  # a single-part ETag is the object's MD5
    ]


def test_the_checksum_of_the_decompressed_content_is_accepted_too(tmp_path: Path) -> None:
    folder = write_export(tmp_path, [[c.to_item() for c in customers(2)]])
    data = next((folder / "data").iterdir())
    entry = json.loads((folder / "manifest-files.json").read_text())
    entry["md5Checksum"] = base64.b64encode(
        __import__("hashlib").md5(gzip.decompress(data.read_bytes())).digest()
    ).decode()
    (folder / "manifest-files.json").write_text(json.dumps(entry) + "\n")
    reader = read_export(folder, table=shop)
    assert len(list(reader)) == 2 and reader.report.files[0].md5 == "ok"


def test_a_missing_or_truncated_data_file_is_a_problem(tmp_path: Path) -> None:
    folder = write_export(tmp_path, [[customers(1)[0].to_item()], [orders(1)[0].to_item()]])
    first, second = sorted((folder / "data").iterdir())
    second.unlink()
    with pytest.raises(ExportVerificationError, match="missing"):
        list(read_export(folder, table=shop))
    reader = read_export(folder, table=shop, strict=False)
    assert list(reader) == customers(1)
    assert "listed in manifest-files.json but missing" in reader.report.problems[0]

    first.write_bytes(first.read_bytes()[:-12])  # the gzip trailer is gone
    reader = read_export(folder, table=shop, strict=False)
    list(reader)
    assert "cannot be read to its end" in reader.report.problems[0]
    assert reader.report.files[0].complete is False


def test_locations_the_prefix_a_manifest_or_the_folder(tmp_path: Path) -> None:
    folder = write_export(tmp_path / "prefix", [[customers(1)[0].to_item()]])
    for location in (
        folder,
        str(folder),
        tmp_path / "prefix",  # the prefix holds one export
        folder / "manifest-summary.json",
        folder / "manifest-files.json",
        LocalSource(folder),
    ):
        assert list(read_export(location, table=shop)) == customers(1), location
    write_export(tmp_path / "prefix", [[]], export_id="01700000000001-ffffffff")
    with pytest.raises(ExportError, match="holds 2 exports"):
        read_export(tmp_path / "prefix", table=shop)
    with pytest.raises(ExportError, match=r"no manifest-files\.json"):
        read_export(tmp_path / "nowhere", table=shop)


def test_a_folder_without_manifest_is_read_only_when_asked(tmp_path: Path) -> None:
    folder = write_export(tmp_path, [[customers(1)[0].to_item()], [orders(1)[0].to_item()]])
    (folder / "manifest-files.json").unlink()
    (folder / "manifest-summary.json").unlink()
    with pytest.raises(ExportError, match="require_manifest=False"):
        read_export(folder, table=shop)
    reader = read_export(folder, table=shop, require_manifest=False)
    assert not reader.manifest.has_manifest
    assert list(reader) == [customers(1)[0], orders(1)[0]]
    assert {f.md5 for f in reader.report.files} == {"not_listed"}


def test_plain_uncompressed_data_files_are_read(tmp_path: Path) -> None:
    folder = write_export(tmp_path, [[c.to_item() for c in customers(2)]], compress=False)
    assert list(read_export(folder, table=shop)) == customers(2)


def test_incremental_exports_and_unknown_formats_are_refused(tmp_path: Path) -> None:
    folder = write_export(tmp_path / "a", [[]], summary={"exportType": "INCREMENTAL_EXPORT"})
    with pytest.raises(ExportError, match="incremental export"):
        read_export(folder, table=shop)
    folder = write_export(tmp_path / "b", [[]], summary={"outputFormat": "PARQUET"})
    with pytest.raises(ExportError, match="unknown outputFormat"):
        read_export(folder, table=shop)


def test_the_reader_needs_models_of_one_table(tmp_path: Path) -> None:
    folder = write_export(tmp_path, [[]])
    with pytest.raises(ValidationError, match=r"table=\.\.\. or models"):
        read_export(folder)
    other = Table("exports-other")

    class Elsewhere(Model):
        class Meta:
            table = other
            pk = "E#{id}"
            sk = "E"

        id: str

    with pytest.raises(ValidationError, match="different tables"):
        read_export(folder, table=shop, models=[Elsewhere])


# -- streaming -----------------------------------------------------------------------------------


class CountingSource(LocalSource):
    """A local source whose data files count the bytes read from them."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.opened: list[CountingFile] = []

    def open(self, key: str) -> tuple[Any, str | None]:
        handle, etag = super().open(key)
        counting = CountingFile(handle)
        self.opened.append(counting)
        return counting, etag


class CountingFile(io.RawIOBase):
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data: bytes = self.inner.read(size)
        self.read_bytes += len(data)
        return data

    def close(self) -> None:
        self.inner.close()
        super().close()


def test_items_are_yielded_while_the_file_is_still_being_read(tmp_path: Path) -> None:
    big = [
        {
            "pk": {"S": f"CUSTOMER#c{i}"},
            "sk": {"S": "PROFILE"},
            "_type": {"S": "Customer"},
            "customer_id": {"S": f"c{i}"},
            "email": {"S": f"c{i}@example.com"},
            "avatar": {"B": os.urandom(48)},  # does not compress: a large file
        }
        for i in range(40_000)
    ]
    folder = write_export(tmp_path, [big[:20_000], big[20_000:]])
    sizes = [p.stat().st_size for p in sorted((folder / "data").iterdir())]
    assert min(sizes) > 1_000_000
    source = CountingSource(folder)
    reader = read_export(source, table=shop)
    items = iter(reader)
    first = next(items)
    assert first.customer_id == "c0"
    (opened,) = source.opened
    assert opened.read_bytes < 400_000  # a few buffers, not the 1.2 MB file
    for _ in range(19_999):
        next(items)
    assert len(source.opened) == 1 and opened.closed is False
    nxt = next(items)  # the second file: the first one is closed now
    assert nxt.customer_id == "c20000"
    assert opened.closed and opened.read_bytes == sizes[0]
    assert len(source.opened) == 2 and source.opened[1].read_bytes < 400_000
    assert sum(1 for _ in items) == 19_999
    assert reader.report.ok and reader.report.items == 40_000


# -- S3 ------------------------------------------------------------------------------------------


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An in-process S3 (moto's mock_aws) with a bucket ``exports``."""
    moto = pytest.importorskip("moto")
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with moto.mock_aws():
        import boto3

        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="exports")
        yield client


def upload(client: Any, root: Path, prefix: str) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            client.upload_file(str(path), "exports", f"{prefix}/{path.relative_to(root)}")


def test_an_export_is_read_from_s3(tmp_path: Path, s3: Any) -> None:
    write_export(tmp_path / "exp", mixed_files())
    upload(s3, tmp_path / "exp", "backups/2024")
    for location in (
        f"s3://exports/backups/2024/AWSDynamoDB/{EXPORT_ID}",
        f"s3://exports/backups/2024/AWSDynamoDB/{EXPORT_ID}/manifest-summary.json",
        "s3://exports/backups/2024",
    ):
        reader = read_export(location, table=shop, s3_client=s3)
        assert reader.manifest.location == f"s3://exports/backups/2024/AWSDynamoDB/{EXPORT_ID}"
        assert list(reader) == [x for x in read_export(tmp_path / "exp", table=shop)]
        assert reader.report.ok and reader.report.items == 9
        assert [(f.md5, f.etag) for f in reader.report.files] == [("ok", "ok")] * 2
    with pytest.raises(ExportError, match=r"no manifest-files\.json"):
        read_export("s3://exports/elsewhere", table=shop, s3_client=s3)
    with pytest.raises(ExportError, match=r"s3://no-such-bucket/x/.*NoSuchBucket"):
        read_export("s3://no-such-bucket/x", table=shop, s3_client=s3)


def test_an_s3_objects_etag_is_compared_with_the_manifest(tmp_path: Path, s3: Any) -> None:
    folder = write_export(tmp_path / "exp", [[c.to_item() for c in customers(2)]], multipart=True)
    local = read_export(folder, table=shop)
    assert list(local) == customers(2)
    assert local.report.files[0].etag == "not_checked"  # a multipart ETag is not an MD5
    upload(s3, tmp_path / "exp", "p")  # S3 gives the object a single-part ETag
    reader = read_export("s3://exports/p", table=shop, s3_client=s3, strict=False)
    assert list(reader) == customers(2)
    assert reader.report.files[0].etag == "mismatch"
    assert reader.report.problems == ["data/file00abcdefghij.json.gz: etag does not match"]


def test_import_files_are_uploaded_and_read_back_from_s3(tmp_path: Path, s3: Any) -> None:
    items = [*customers(2), *orders(3)]
    files = write_import_files(tmp_path / "imp", items)
    keys = imports.upload_import_files(files, bucket="exports", prefix="imports/shop", s3_client=s3)
    assert keys == [
        "imports/shop/data/part-00000.json.gz",
        "imports/shop/manifest-files.json",
        "imports/shop/manifest-summary.json",
    ]
    reader = read_export("s3://exports/imports/shop", table=shop, s3_client=s3)
    assert list(reader) == items
    assert [(f.md5, f.etag) for f in reader.report.files] == [("ok", "ok")]
    request = files.import_request(bucket="exports", prefix="imports/shop")
    assert request["S3BucketSource"] == {"S3Bucket": "exports", "S3KeyPrefix": "imports/shop/data/"}


# -- Ion -------------------------------------------------------------------------------------------


ION_LINES = [
    '$ion_1_0 {Item:{pk:"CUSTOMER#c0",sk:"PROFILE",_type:"Customer",customer_id:"c0",'
    'email:"c0@example.com",avatar:{{AAD/Cg==}},tags:$dynamodb_SS::["vip","t0"],'
    "lucky:$dynamodb_NS::[7.,0.]}}",
    '$ion_1_0 {Item:{pk:"CUSTOMER#c0",sk:"ORDER#0",_type:"Order",customer_id:"c0",'
    'order_id:0.,status:"open",gsi1pk:"STATUS#open",gsi1sk:"0",'
    "total:1234567890.123456789012345678901234567,"
    'placed:"2024-02-29T23:59:59.123456Z",lines:[{sku:"A\\nB",qty:2.,price:9.99,'
    "meta:{gift:true}}],attachments:$dynamodb_BS::[{{AAE=}},{{/w==}}],ratio:1d-1,"
    "nothing:null}}",
    "$ion_1_0 {Item:{pk:",
]


def test_an_ion_export_is_read_with_amazon_ion(tmp_path: Path) -> None:
    pytest.importorskip("amazon.ion")
    folder = write_export(tmp_path, [ION_LINES], ion=True)
    reader = read_export(folder, table=shop, strict=False)
    assert reader.manifest.output_format == "ION"
    got = list(reader)
    expected_order = orders(1)[0].model_copy(update={"ratio": 0.1})
    assert got == [customers(1)[0], expected_order]
    (bad,) = reader.unrouted
    assert bad.kind == "invalid_line" and bad.line == 3 and "not Ion" in bad.reason
    records = list(read_export(folder, table=shop).records())
    assert isinstance(records[1], ExportItem)
    assert records[1].raw["order_id"] == {"N": "0"}
    assert records[1].raw["nothing"] == {"NULL": True}
    assert records[1].raw["attachments"] == {"BS": [b"\x00\x01", b"\xff"]}


def test_without_amazon_ion_an_ion_export_is_refused_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import builtins

    real_import = builtins.__import__

    def no_ion(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("amazon.ion") or name == "amazon":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    folder = write_export(tmp_path, [ION_LINES[:1]], ion=True)
    reader = read_export(folder, table=shop)  # the manifests are read without it
    monkeypatch.setattr(builtins, "__import__", no_ion)
    with pytest.raises(ExportError, match=r"pip install 'dynamodel\[ion\]'.*DYNAMODB_JSON"):
        list(reader)


# -- writing import-ready files and the round trip -------------------------------------------------


def test_models_to_files_to_reader_give_equal_models(tmp_path: Path) -> None:
    items = [*customers(5), *orders(6)]
    files = write_import_files(tmp_path / "out", items, max_file_bytes=2048)
    assert len(files.files) > 2
    assert files.by_model == {"Customer": 5, "Order": 6}
    assert files.guards == 5  # one per unique email
    assert files.item_count == 16
    for written in files.files:
        assert written.path.stat().st_size == written.size
        assert len(gzip.decompress(written.path.read_bytes())) <= 2048
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "data",
        "manifest-files.json",
        "manifest-summary.json",
    ]
    reader = read_export(tmp_path / "out", table=shop)
    back = list(reader)
    assert back == items
    assert reader.report.ok and reader.report.unrouted == {"internal": 5}
    assert {f.md5 for f in reader.report.files} == {"ok"}
    assert {f.etag for f in reader.report.files} == {"ok"}
    order = back[5]
    assert isinstance(order, Order)
    assert order.total == orders(1)[0].total and order.placed == orders(1)[0].placed
    assert order.attachments == {b"\x00\x01", b"\xff"} and order.lines[0]["meta"] == {"gift": True}
    summary = json.loads((tmp_path / "out" / "manifest-summary.json").read_text())
    assert summary["itemCount"] == 16 and summary["inputCompressionType"] == "GZIP"
    assert summary["tableCreationParameters"]["TableName"] == shop.name


def test_every_line_is_one_item_in_dynamodb_json(tmp_path: Path) -> None:
    files = write_import_files(tmp_path / "out", customers(1), compression="NONE")
    (data,) = files.files
    assert data.key == "data/part-00000.json"
    lines = data.path.read_text().splitlines()
    assert len(lines) == 2  # the customer and its email's guard
    item = json.loads(lines[0])["Item"]
    assert item["avatar"] == {"B": base64.b64encode(bytes([0, 0, 255, 10])).decode()}
    assert sorted(item["lucky"]["NS"]) == ["0", "7"] and item["_type"] == {"S": "Customer"}
    guard = json.loads(lines[1])["Item"]
    assert guard["_type"] == {"S": "_dynamodel:unique"}
    assert guard["unique_owner"] == {"S": '{"pk":"CUSTOMER#c0","sk":"PROFILE"}'}


def test_the_writer_refuses_what_an_import_would_lose(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="primary key"):
        write_import_files(tmp_path / "a", [*customers(1), *customers(1)], unique_guards=False)
    twin = customers(2)
    twin[1].email = twin[0].email
    with pytest.raises(ValidationError, match="same unique value"):
        write_import_files(tmp_path / "b", twin)
    write_import_files(tmp_path / "c", twin, unique_guards=False, check_duplicate_keys=False)
    (tmp_path / "d" / "data").mkdir(parents=True)
    (tmp_path / "d" / "data" / "old.json.gz").write_bytes(b"")
    with pytest.raises(ValidationError, match="already holds files"):
        ImportWriter(tmp_path / "d")


def test_raw_items_and_the_file_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with ImportWriter(tmp_path / "raw", table=shop) as writer:
        writer.write_item({"pk": {"S": "INVOICE#1"}, "sk": {"S": "X"}, "_type": {"S": "Invoice"}})
        with pytest.raises(ValidationError, match="key attributes"):
            writer.write_item({"pk": {"S": "x"}})
    assert writer.result is not None and writer.result.raw_items == 1
    monkeypatch.setattr(imports, "MAX_IMPORT_OBJECTS", 2)
    with pytest.raises(ValidationError, match="more than 2 data files"):
        write_import_files(tmp_path / "many", customers(6), max_file_bytes=1024)
    with (
        pytest.raises(ValidationError, match="belongs to table"),
        ImportWriter(tmp_path / "other") as writer,
    ):
        writer.write(customers(1)[0])
        writer.write(_Elsewhere(id="1"))
    assert not (tmp_path / "other" / "manifest-files.json").exists()  # left incomplete


_other = Table("exports-elsewhere")


class _Elsewhere(Model):
    class Meta:
        table = _other
        pk = "E#{id}"
        sk = "E"

    id: str


# -- ImportTable parameters ---------------------------------------------------------------------


def test_the_import_request_carries_the_declared_table() -> None:
    request = imports.import_request(
        shop, bucket="b", prefix="/p/data/", table_name="exports-shop-restored"
    )
    assert request["S3BucketSource"] == {"S3Bucket": "b", "S3KeyPrefix": "p/data/"}
    assert request["InputFormat"] == "DYNAMODB_JSON"
    assert request["InputCompressionType"] == "GZIP"
    created = request["TableCreationParameters"]
    assert created["TableName"] == "exports-shop-restored"
    expected = {k: v for k, v in shop.create_table_request().items() if k in imports.CREATION_KEYS}
    assert {k: v for k, v in created.items() if k != "TableName"} == {
        k: v for k, v in expected.items() if k != "TableName"
    }
    assert created["GlobalSecondaryIndexes"][0]["IndexName"] == "gsi1"
    assert "TableClass" not in created and "StreamSpecification" not in created


def test_lsis_are_refused_and_other_settings_are_follow_ups() -> None:
    table = Table(
        "exports-lsi",
        indexes=[GSI("gsi", pk="gpk"), LSI("lsi", sk="lsk")],
        stream="NEW_IMAGE",
        ttl="expires",
        point_in_time_recovery=True,
        tags={"team": "a"},
    )
    with pytest.raises(ValidationError, match="cannot create local secondary indexes"):
        imports.table_creation_parameters(table)
    assert imports.import_follow_ups(table) == [
        "stream (NEW_IMAGE)",
        "TTL on 'expires'",
        "point-in-time recovery",
        "tags",
    ]
    assert imports.import_follow_ups(shop) == []


def test_the_export_request() -> None:
    import datetime as dt

    params = exports.export_request(
        bucket="b", prefix="/daily/", export_time=dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    )
    assert params == {
        "S3Bucket": "b",
        "S3Prefix": "daily",
        "ExportFormat": "DYNAMODB_JSON",
        "ExportType": "FULL_EXPORT",
        "ExportTime": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    }
    with pytest.raises(ValidationError, match="no time zone"):
        exports.export_request(bucket="b", export_time=dt.datetime(2024, 1, 1))
    with pytest.raises(ValidationError, match="DYNAMODB_JSON or ION"):
        exports.export_request(bucket="b", export_format="CSV")  # type: ignore[arg-type]


def test_export_location_from_a_description() -> None:
    described = {
        "S3Bucket": "b",
        "ExportManifest": f"daily/AWSDynamoDB/{EXPORT_ID}/manifest-summary.json",
    }
    assert exports.export_location(described) == f"s3://b/daily/AWSDynamoDB/{EXPORT_ID}"
    assert exports.export_location({}) is None


def test_the_wait_flow_polls_until_done_and_raises_on_failure() -> None:
    import random

    from dynamodel.core.errors import DynamodelError
    from dynamodel.core.flows import CONNECTION_INPUTS, Inputs, Request, Sleep

    now = [1000.0]
    inputs = Inputs(clock=lambda: now[0], random=random.Random(1))

    def drive(statuses: list[dict[str, Any]], timeout: float = 60.0) -> Any:
        flow = exports.wait_flow(
            "describe_export", "ExportArn", "arn:x", "ExportDescription", "ExportStatus",
            timeout, 5.0, None,
        )  # fmt: skip
        step = next(flow)
        assert step is CONNECTION_INPUTS
        step = flow.send(inputs)
        answers = iter(statuses)
        while True:
            assert isinstance(step, Request) and step.op == "describe_export"
            assert step.params == {"ExportArn": "arn:x"} and step.control
            try:
                step = flow.send({"ExportDescription": next(answers)})
            except StopIteration as done:
                return done.value
            assert isinstance(step, Sleep) and step.seconds == 5.0
            now[0] += 5.0
            step = flow.send(None)

    done = drive([{"ExportStatus": "IN_PROGRESS"}, {"ExportStatus": "COMPLETED", "ItemCount": 3}])
    assert done == {"ExportStatus": "COMPLETED", "ItemCount": 3}
    failed = {"ExportStatus": "FAILED", "FailureCode": "S3NoSuchBucket", "FailureMessage": "no"}
    with pytest.raises(DynamodelError, match="FAILED: S3NoSuchBucket: no") as caught:
        drive([{"ExportStatus": "IN_PROGRESS"}, failed])
    assert caught.value.code == "S3NoSuchBucket"
    with pytest.raises(DynamodelError, match="still IN_PROGRESS after 10s"):
        drive([{"ExportStatus": "IN_PROGRESS"}] * 5, timeout=10.0)


def test_unsupported_and_explained_errors() -> None:
    from dynamodel.core.errors import ServiceError

    unknown = ServiceError("x: UnknownOperationException: ", code="UnknownOperationException")
    explained = exports.explain_error(unknown, "ImportTable", "http://localhost:8000")
    assert isinstance(explained, exports.UnsupportedOperation)
    assert str(explained).startswith(
        "the endpoint http://localhost:8000 does not support ImportTable"
    )
    pitr = ServiceError("x", code="PointInTimeRecoveryUnavailableException")
    assert "point_in_time_recovery=True" in str(exports.explain_error(pitr, "E", None))
    other = ServiceError("x", code="SomethingElse")
    assert exports.explain_error(other, "E", None) is other
