"""Ship a new index for existing data: `dynamodel table sync`, then `dynamodel migrate up`.

Run from this folder against any endpoint boto3 can reach, e.g. the embedded one:

    dynamodel local &            # prints the AWS_* variables to export
    python walkthrough.py

1. The previous release: the table had no gsi2, and 40 orders were written without its keys.
2. This release declares gsi2 (shop.py). `dynamodel table diff` shows it missing; `sync`
   creates it and waits until it is ACTIVE, but it is empty: old orders have no gsi2 keys.
3. `dynamodel migrate up` runs migrations/0001_index_orders_by_status.py, a backfill that
   writes those orders back with their keys (parallel scan, batched writes, checkpoints).
4. Queries on gsi2 now find every order; running `migrate up` again does nothing.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from shop import Customer, Order, table

HERE = Path(__file__).resolve().parent


def dynamodel(*args: str) -> str:
    """Run the dynamodel command line in this folder and echo what it prints."""
    command = [sys.executable, "-m", "dynamodel.cli", *args, "--app", "shop"]
    print(f"$ dynamodel {' '.join(args)} --app shop")
    done = subprocess.run(command, cwd=HERE, capture_output=True, text=True, check=False)
    print(done.stdout + done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"dynamodel {' '.join(args)} failed with exit code {done.returncode}")
    return done.stdout


def previous_release() -> None:
    """The table as the previous release created it, and orders it wrote (no gsi2 keys)."""
    old = table.replace(indexes=[table.indexes[0]])
    old.delete(missing_ok=True)
    old.create()
    client = table.connection.client()
    start = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    for n in range(40):
        order = Order(
            customer_id=f"c{n % 4}",
            order_id=n,
            placed_at=start + dt.timedelta(hours=n),
            status="shipped" if n % 3 else "open",
            total=Decimal(n) + Decimal("0.99"),
        )
        item = order.to_item()
        del item["gsi2pk"], item["gsi2sk"]  # the old code did not know the index
        client.put_item(TableName=table.physical_name, Item=item)
    Customer(customer_id="c0", email="ann@example.com").save()


def main() -> None:
    previous_release()
    dynamodel("table", "diff")
    dynamodel("table", "sync")
    print(
        "open orders in gsi2 before the backfill:",
        len(Order.query(index="gsi2", status="open").all()),
    )
    dynamodel("migrate", "status")
    dynamodel("migrate", "up", "--segments", "2", "--page-size", "10")
    open_orders = Order.query(index="gsi2", status="open").all()
    shipped = Order.query(index="gsi2", status="shipped").all()
    print(f"after the backfill: {len(open_orders)} open, {len(shipped)} shipped")
    assert len(open_orders) + len(shipped) == 40
    again = dynamodel("migrate", "up")
    assert "Nothing to do" in again
    dynamodel("migrate", "status")


if __name__ == "__main__":
    main()
