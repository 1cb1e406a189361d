"""ExportTableToPointInTime and ImportTable through dynamodel against the local backend.

moto implements both (its export writes one gzip data file without manifests into its
in-process S3, its import reads DynamoDB JSON objects under a prefix); dynoxide implements
neither, which must read as "the endpoint does not support it"."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from backends import Backend
from export_models import Customer, Order, customers, orders, shop

from dynamodel.ops import exports, imports
from dynamodel.ops.exports import UnsupportedOperation, read_export

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/exports-shop/export/01700000000000-a1b2c3d4"


@pytest.fixture
def pitr_shop(fresh_db: Backend) -> Iterator[Any]:
    table = shop.replace(point_in_time_recovery=True)
    table.create(poll=0.01)
    # the models are declared on `shop`: bind nothing, same physical name
    yield table


@pytest.fixture
def s3(fresh_db: Backend, backend_name: str) -> Any:
    if backend_name != "moto":
        pytest.skip("S3 is moto's (dynoxide has no S3)")
    import boto3

    client = boto3.client("s3", endpoint_url=fresh_db.endpoint_url)
    client.create_bucket(Bucket="exports")
    return client


def _orders() -> list[Order]:
    # no escaped characters in strings: moto's import parser (py_partiql_parser) mangles them
    return [o.model_copy(update={"lines": [{"sku": "AB", "qty": 2}]}) for o in orders(4)]


def _fill() -> list[Any]:
    items = [*customers(3), *_orders()]
    for item in items:
        item.save()
    return items


def test_an_export_is_started_followed_and_read_back(
    pitr_shop: Any, s3: Any, tmp_path: Path
) -> None:
    items = _fill()
    started = exports.export_table(pitr_shop, bucket="exports", prefix="daily")
    assert started["ExportArn"] and started["ExportStatus"] in ("IN_PROGRESS", "COMPLETED")
    done = exports.wait_export(started["ExportArn"], poll=0.05, timeout=30)
    assert done["ExportStatus"] == "COMPLETED"
    assert exports.describe_export(started["ExportArn"])["ExportStatus"] == "COMPLETED"
    # moto writes the data file only (no manifests): read it unverified
    reader = read_export("s3://exports/daily", table=shop, s3_client=s3, require_manifest=False)
    got = list(reader)
    assert sorted(got, key=repr) == sorted(items, key=repr)
    kinds = {u.kind for u in reader.unrouted}
    assert kinds <= {"internal"}  # the unique guards and the shard-layout records
    assert reader.report.unrouted["internal"] >= 3  # one guard per customer email

    # and back into a new table, through import-ready files. Without the guard items: moto's
    # import parses JSON with py_partiql_parser, which mangles escaped characters (the guards'
    # keys hold a JSON array with quotes); DynamoDB reads them as JSON
    files = imports.write_import_files(tmp_path / "imp", got, unique_guards=False)
    imports.upload_import_files(files, bucket="exports", prefix="imports/one", s3_client=s3)
    request = files.import_request(bucket="exports", prefix="imports/one")
    assert request["S3BucketSource"]["S3KeyPrefix"] == "imports/one/data/"
    started = imports.import_table(
        shop, bucket="exports", prefix="imports/one/data/", table_name="exports-shop-copy"
    )
    done = imports.wait_import(started["ImportArn"], poll=0.05, timeout=30)
    assert done["ImportStatus"] == "COMPLETED"
    assert done["ImportedItemCount"] == files.item_count == 7
    copy = shop.replace(name="exports-shop-copy")
    description = copy.describe()
    assert description["KeySchema"] == shop.create_table_request()["KeySchema"]
    shop.bind(name="exports-shop-copy")
    try:
        assert Order.get(customer_id="c1", order_id=3) == _orders()[3]
        assert Customer.get(customer_id="c2") == customers(3)[2]
    finally:
        shop.unbind()


async def test_async_export_and_describe(pitr_shop: Any, s3: Any) -> None:
    started = await exports.aexport_table(pitr_shop, bucket="exports", prefix="async")
    done = await exports.await_export(started["ExportArn"], poll=0.05, timeout=30)
    assert done["ExportStatus"] == "COMPLETED"
    assert (await exports.adescribe_export(done["ExportArn"]))["ExportArn"] == done["ExportArn"]


def test_an_export_without_pitr_says_how_to_enable_it(fresh_db: Backend, backend_name: str) -> None:
    if backend_name != "moto":
        pytest.skip("dynoxide has no export API (tested below)")
    shop.create(poll=0.01)
    with pytest.raises(Exception, match="point_in_time_recovery=True"):
        exports.export_table(shop, bucket="exports", prefix="p")  # moto needs a prefix


def test_an_import_into_an_existing_table_says_so(fresh_db: Backend, s3: Any) -> None:
    shop.create(poll=0.01)
    with pytest.raises(Exception, match=r"ImportTable creates a new table|already exists"):
        started = imports.import_table(shop, bucket="exports", prefix="nothing/")
        imports.wait_import(started["ImportArn"], poll=0.05, timeout=30)


def test_an_endpoint_without_the_api_says_it_does_not_support_it(
    fresh_db: Backend, backend_name: str
) -> None:
    if backend_name == "moto":
        pytest.skip("moto implements exports and imports (tested above)")
    shop.create(poll=0.01)
    with pytest.raises(UnsupportedOperation, match="does not support ExportTableToPointInTime"):
        exports.export_table(shop, bucket="exports")
    with pytest.raises(UnsupportedOperation, match="does not support DescribeExport"):
        exports.describe_export(ARN)
    with pytest.raises(UnsupportedOperation, match="does not support ImportTable"):
        imports.import_table(shop, bucket="exports", prefix="p/", table_name="exports-new")
