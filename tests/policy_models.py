"""Models for the tenant policy tests (tests/test_policy*.py): each group on its own table, so
the overlap checks see only the models meant for them. Nothing here talks to a server."""

from __future__ import annotations

import datetime as dt

from dynamodel import GSI, LSI, Model, Shards, Table

# -- one entity, one tenant per partition ------------------------------------------------------

notes = Table("policy-notes")


class Note(Model):
    class Meta:
        table = notes
        pk = "TENANT#{tenant}"
        sk = "NOTE#{note_id}"

    tenant: str
    note_id: str
    text: str = ""


# -- indexes: one a tenant may query, one it may not, and a local one ---------------------------

tracked = Table(
    "policy-tracked",
    indexes=[
        GSI("byowner", pk="gsi1pk", sk="gsi1sk"),
        GSI("bystatus", pk="gsi2pk", sk="gsi2sk"),
        LSI("bydate", sk="lsi1sk"),
    ],
)


class Ticket(Model):
    class Meta:
        table = tracked
        pk = "TENANT#{tenant}#TICKET#{ticket_id}"
        sk = "TICKET"
        indexes = {
            "byowner": ("OWNER#{tenant}", "{opened}#{ticket_id}"),
            "bystatus": ("STATUS#{status}", "{opened}"),
        }

    tenant: str
    ticket_id: str
    opened: dt.datetime
    status: str = "open"


class Comment(Model):
    class Meta:
        table = tracked
        pk = "TENANT#{tenant}"
        sk = "COMMENT#{comment_id}"
        indexes = {"bydate": "{written}"}

    tenant: str
    comment_id: str
    written: dt.date


# -- sharded keys ------------------------------------------------------------------------------

events = Table("policy-events")


class Event(Model):
    """An exact sharded key: the policy lists each shard's physical key."""

    class Meta:
        table = events
        pk = "FEED#{tenant}"
        sk = "{at}#{event_id}"
        shards = Shards(4)

    tenant: str
    at: dt.datetime
    event_id: str


class Metric(Model):
    """A sharded key with more after the identity: the pattern covers every shard."""

    class Meta:
        table = events
        pk = "METRIC#{tenant}#{name}"
        sk = "{at}"
        shards = Shards(8, by="name")

    tenant: str
    name: str
    at: dt.datetime


# -- a shared catalogue read by every tenant ---------------------------------------------------

store = Table("policy-store")


class Basket(Model):
    class Meta:
        table = store
        pk = "USER#{user}"
        sk = "BASKET"

    user: str
    lines: int = 0


class Item(Model):
    class Meta:
        table = store
        pk = "ITEM#{sku}"
        sk = "ITEM"

    sku: str
    price: int = 0
