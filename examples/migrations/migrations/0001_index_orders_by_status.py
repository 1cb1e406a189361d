"""Backfill gsi2 (orders by status) keys on orders written before the index existed."""

from __future__ import annotations

from dynamodel import Attr
from dynamodel.migrations import MigrationContext


def up(ctx: MigrationContext) -> None:
    """Write every order without gsi2 keys back: a put renders all of its index keys.

    Idempotent: an order that already has its keys is filtered out by the scan, and writing
    an order back unchanged again would change nothing.
    """
    order = ctx.model("Order")
    result = ctx.backfill(
        order,
        lambda o: o,  # the model renders gsi2pk/gsi2sk from status and placed_at
        filter=Attr("gsi2pk", raw=True).not_exists(),
    )
    ctx.echo(f"indexed {result.written} orders by status")


def down(ctx: MigrationContext) -> None:
    """Nothing to undo in the data.

    The keys are harmless without the index (DynamoDB ignores attributes no index uses);
    removing the index itself is the table declaration's business (`dynamodel table sync`).
    """
