"""(a) CPU per item: model -> PutItem parameters, and GetItem response item -> model.

No server: each peer's own conversion step only, measured with ``time.process_time`` over
``codec_items`` items per round, peers interleaved (order rotated) over ``codec_rounds`` rounds;
the figure is the median round's CPU per item.

What each peer's steps are:

* floor: ``floor_put_params(model)`` / ``floor_parse(item)`` (hand-written, see peers.py).
* pydantic+TypeSerializer: ``model_dump`` + ``TypeSerializer`` / ``TypeDeserializer`` +
  ``model_validate``.
* PynamoDB: ``_get_save_args()`` + ``Connection.get_operation_kwargs(...)`` (what ``save()``
  does before dispatching) / ``Model.from_raw_data(item)`` (what ``get()`` does).
* pydynox: ``to_dict()`` + its Rust ``item_to_dynamo`` / Rust ``item_from_dynamo`` +
  ``from_dict()``. Its client converts inside Rust, so this only approximates its real path.
* dynamodel: ``requests.put_request(model)`` / ``Model.from_item(item)`` (what ``save()`` and
  ``get()`` run; the sync and async APIs share them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import peers
from .harness import (
    FLOOR,
    Row,
    Settings,
    Target,
    cpu_per_call,
    find,
    median,
    rotate,
    settled_heap,
    with_ratios,
)

BUILD = "build put request"
PARSE = "parse get response"
DYNAMODEL = "dynamodel"
TYPESER = "pydantic + TypeSerializer"
PYNAMODB = "PynamoDB"
PYDYNOX = "pydynox"


class Peer:
    def __init__(
        self,
        name: str,
        build: Callable[[Any], Any],
        parse: Callable[[Any], Any],
        models: list[Any],
    ) -> None:
        self.name = name
        self.build = build
        self.parse = parse
        self.models = models
        self.items = [build(m) for m in models]  # each peer parses what it wrote itself


def _peers(count: int) -> tuple[list[Peer], dict[str, str]]:
    from dynamodel.ops.items import put_request

    plain = [peers.UserFields(**peers.values(i)) for i in range(count)]
    out = [
        Peer(FLOOR, peers.floor_put_params, lambda p: peers.floor_parse(p["Item"]), plain),
    ]
    ts = peers.TypeSerializerPeer()
    out.append(Peer(TYPESER, ts.put_params, lambda p: ts.parse(p["Item"]), plain))

    missing: dict[str, str] = {}
    pyn = peers.pynamodb_models(None)
    if pyn is None:
        missing[PYNAMODB] = "not installed"
    else:
        from pynamodb.constants import ITEM

        model_class, make = pyn
        connection = model_class._get_connection().connection

        def pynamodb_build(m: Any) -> Any:
            args, kwargs = m._get_save_args()
            return connection.get_operation_kwargs(
                peers.TABLE,
                args[0],
                range_key=kwargs.get("range_key"),
                key=ITEM,
                attributes=kwargs.get("attributes"),
                condition=kwargs.get("condition"),
            )

        out.append(
            Peer(
                PYNAMODB,
                pynamodb_build,
                lambda p: model_class.from_raw_data(p["Item"]),
                [make(i) for i in range(count)],
            )
        )

    pdx = peers.pydynox_models(None)
    if pdx is None:
        missing[PYDYNOX] = "not installed"
    else:
        from pydynox import pydynox_core
        from pydynox._internal._decimal import NumberSchema

        x_class, x_make = pdx
        schema = NumberSchema(
            fields=x_class._decimal_fields,
            variants={},
            fallback_fields=x_class._declared_decimal_fields,
        )
        to_dynamo = pydynox_core.item_to_dynamo
        from_dynamo = pydynox_core.item_from_dynamo
        out.append(
            Peer(
                PYDYNOX,
                lambda m: {"TableName": peers.TABLE, "Item": to_dynamo(m.to_dict())},
                lambda p: x_class.from_dict(from_dynamo(p["Item"], _number_schema=schema)),
                [x_make(i) for i in range(count)],
            )
        )

    out.append(
        Peer(
            DYNAMODEL,
            lambda m: put_request(m).params,
            lambda p: peers.DUser.from_item(p["Item"]),
            [peers.DUser(**peers.values(i)) for i in range(count)],
        )
    )
    return out, missing


def run(settings: Settings, log: Callable[[str], None]) -> tuple[list[Row], list[Target]]:
    peer_list, missing = _peers(settings.codec_items)
    samples: dict[tuple[str, str], list[float]] = {}
    with settled_heap():
        for round_number in range(settings.codec_rounds):
            for peer in rotate(peer_list, round_number):
                models, items = peer.models, peer.items
                build, parse = peer.build, peer.parse
                it = iter(models)
                samples.setdefault((BUILD, peer.name), []).append(
                    cpu_per_call(lambda: build(next(it)), len(models))  # noqa: B023
                )
                it2 = iter(items)
                samples.setdefault((PARSE, peer.name), []).append(
                    cpu_per_call(lambda: parse(next(it2)), len(items))  # noqa: B023
                )
            log(f"  (a) round {round_number + 1}/{settings.codec_rounds}")

    rows: list[Row] = []
    for op in (BUILD, PARSE):
        for peer in peer_list:
            rows.append(Row("a", op, peer.name, median(samples[(op, peer.name)]) * 1e6, "µs/item"))
        for name, why in missing.items():
            rows.append(Row("a", op, name, None, "µs/item", note=why))
    with_ratios(rows, lambda r: find(rows, r.op, FLOOR))
    return rows, targets(rows)


def targets(rows: list[Row]) -> list[Target]:
    out: list[Target] = []
    for op in (BUILD, PARSE):
        ours = find(rows, op, DYNAMODEL)
        ours_value = ours.value if ours is not None else None
        ratio = ours.ratio if ours is not None else None
        out.append(Target("a", f"{op}: dynamodel / floor", ratio, 2.0, "max"))
        for peer, limit in ((PYNAMODB, 3.0), (TYPESER, 2.0)):
            other = find(rows, op, peer)
            value = (
                other.value / ours_value
                if other is not None and other.value is not None and ours_value
                else None
            )
            note = other.note if other is not None and other.value is None else ""
            out.append(Target("a", f"{op}: {peer} / dynamodel", value, limit, "min", note))
    return out
