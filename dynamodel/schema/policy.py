"""Least-privilege IAM policies from the data model: ``dynamodb:LeadingKeys`` tied to an identity.

```python
document = tenant_policy([Customer, Order], field="customer_id", identity="cognito")
template = tenant_policy_cloudformation([Customer, Order], field="customer_id")
```

DynamoDB's fine-grained access control lets an IAM policy confine a caller to the items whose
**partition key** matches a policy variable (``${cognito-identity.amazonaws.com:sub}``,
``${aws:PrincipalTag/tenant}``). Hand-written policies get the key shape wrong; here every value
comes from the models' key templates, so it matches **whole key segments only**:

* ``CUSTOMER#{customer_id}`` gives the exact value ``CUSTOMER#${var}``;
* ``CUSTOMER#{customer_id}#ORDER#{order_id}`` gives ``CUSTOMER#${var}#ORDER#*``: the field is
  followed by a separator (a character no stored value of the field can contain), so tenant
  ``t1`` never covers ``t10``. ``CUSTOMER#${var}*`` is never emitted.
* ``Shards(n)`` on an exact key gives the ``n`` physical keys ``CUSTOMER#${var}.0`` ...

Models whose partition key cannot be tied to the identity are refused (`PolicyRefused`, one
sentence per model): see docs/tenancy.md for each reason. Pure: no I/O, no AWS access.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field as dataclass_field
from typing import TYPE_CHECKING, Any, Literal

from dynamodel.core.errors import PolicyRefused, ValidationError
from dynamodel.core.keys import RESERVED_PREFIX
from dynamodel.modelling.table import GSI, LSI, Table
from dynamodel.schema.policy_keys import (
    KeyShape,
    LeadingKey,
    field_type_reason,
    iam_literal,
    overlap_reason,
    template_values,
)

if TYPE_CHECKING:
    from dynamodel.modelling.base import ModelBase
    from dynamodel.modelling.spec import ModelSpec

#: IAM's size limit of a customer managed policy, in characters, whitespace not counted
MANAGED_POLICY_LIMIT = 6144

#: ``identity="cognito"``: the caller's Cognito identity pool identity id
COGNITO_IDENTITY = "${cognito-identity.amazonaws.com:sub}"

Access = Literal["read-only", "read-write"]
ACCESS_LEVELS: tuple[str, ...] = ("read-only", "read-write")

#: where dynamodel's shard layout records live (`dynamodel.ops.shard_guard.REGISTRY_PK`; not
#: imported: the policy module stays pure and below the operations it describes)
SHARD_RECORDS = f"{RESERVED_PREFIX}#shards"

# Item actions. IAM has no TransactGetItems/TransactWriteItems actions: a transaction is
# authorised item by item with GetItem, PutItem, UpdateItem, DeleteItem and ConditionCheckItem
# (which exists only inside TransactWriteItems), and dynamodb:EnclosingOperation names it
# (AWS's DynamoDB developer guide, "Using IAM with DynamoDB transactions", example 3, denies
# transactions exactly this way).
READ_ACTIONS = ("dynamodb:GetItem", "dynamodb:Query")
WRITE_ACTIONS = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
#: denied inside transactions unless ``transactions=True`` (ConditionCheckItem needs no denial:
#: it exists only inside TransactWriteItems and is granted only with ``transactions=True``)
ENCLOSED_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
)
TRANSACTIONS = ("TransactGetItems", "TransactWriteItems")

#: Denied on the table and everything under it, whatever other policy the role has: reads
#: without leading keys (Scan, PartiQL: ``ForAllValues`` over an empty key set is true),
#: the table's stream (every tenant's changes), and table-level operations (schema, TTL,
#: backups, restores, exports, imports, replicas, resource policies, tags). DescribeTable is
#: denied too: its ItemCount and TableSizeBytes describe every tenant's data.
DENIED_ACTIONS = (
    "dynamodb:Scan",
    "dynamodb:PartiQLSelect",
    "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:DescribeStream",
    "dynamodb:CreateTable",
    "dynamodb:DeleteTable",
    "dynamodb:UpdateTable",
    "dynamodb:DescribeTable",
    "dynamodb:UpdateTimeToLive",
    "dynamodb:CreateBackup",
    "dynamodb:DeleteBackup",
    "dynamodb:RestoreTableFromBackup",
    "dynamodb:RestoreTableToPointInTime",
    "dynamodb:RestoreTableFromAwsBackup",
    "dynamodb:StartAwsBackupJob",
    "dynamodb:UpdateContinuousBackups",
    "dynamodb:ExportTableToPointInTime",
    "dynamodb:ImportTable",
    "dynamodb:CreateTableReplica",
    "dynamodb:DeleteTableReplica",
    "dynamodb:EnableKinesisStreamingDestination",
    "dynamodb:PutResourcePolicy",
    "dynamodb:DeleteResourcePolicy",
    "dynamodb:TagResource",
    "dynamodb:UntagResource",
)

#: sub-resources of a table the Deny statement covers
DENIED_SUBRESOURCES = ("/index/*", "/stream/*", "/backup/*", "/export/*", "/import/*")

_TAG_NAME = re.compile(r"^[\w+=,.@:/-]{1,128}$")
_VARIABLE = re.compile(r"^\$\{[A-Za-z0-9_.:/+=,@-]+\}$")
#: the ARN a size estimate assumes: the longest partition and region names, a real account
_SIZE_ARN = "arn:aws-us-gov:dynamodb:ap-southeast-3:123456789012:table/"


def identity_variable(identity: str) -> str:
    """The IAM policy variable for ``identity``: ``"cognito"`` (the Cognito identity pool
    identity id), ``"tag:NAME"`` (the principal tag ``NAME``) or a raw ``${...}`` variable."""
    if identity == "cognito":
        return COGNITO_IDENTITY
    if identity.startswith("tag:"):
        name = identity[4:]
        if not _TAG_NAME.match(name):
            raise ValidationError(f"identity {identity!r}: {name!r} is not a valid tag key")
        return "${aws:PrincipalTag/" + name + "}"
    if _VARIABLE.match(identity):
        return identity
    raise ValidationError(
        f"identity {identity!r}: give 'cognito', 'tag:NAME' or a policy variable such as "
        "'${aws:PrincipalTag/tenant}'"
    )


def policy_size(document: Mapping[str, Any]) -> int:
    """The size IAM counts for a policy document: its JSON characters, whitespace excluded."""
    return sum(1 for c in json.dumps(document, separators=(",", ":")) if not c.isspace())


# -- the policy ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TenantPolicy:
    """A generated tenant policy and how it was derived.

    Attributes:
        document: the IAM policy document. table: the table's physical name.
        leading_keys: the ``dynamodb:LeadingKeys`` values of the table's items.
        index_keys: the values of the GSIs the tenant may query, by index name.
        public_keys: the values of the ``public`` models (read-only).
        denied_indexes: every index the policy denies, with the reason.
        size: the document's size as IAM counts it (whitespace excluded, with the longest
            region and partition names in its ARNs).
    """

    document: dict[str, Any]
    table: str
    leading_keys: tuple[str, ...]
    index_keys: dict[str, tuple[str, ...]] = dataclass_field(default_factory=dict)
    public_keys: tuple[str, ...] = ()
    denied_indexes: dict[str, str] = dataclass_field(default_factory=dict)
    size: int = 0


def _table_of(models: Sequence[type[ModelBase]]) -> Table:
    tables = {id(m._spec().table): m._spec().table for m in models}
    if len(tables) != 1:
        names = sorted({m._spec().table.physical_name for m in models})
        raise ValidationError(f"a tenant policy covers one table; the models use {names}")
    return next(iter(tables.values()))


def _key_space(table: Table, index: str | None, extra: Iterable[type[ModelBase]]) -> list[KeyShape]:
    """Every partition key template that puts items into the table (``index=None``) or a
    GSI, with dynamodel's own records for the table."""
    shapes: list[KeyShape] = []
    models = {id(m): m for m in [*table.entities.values(), *extra]}
    for model in models.values():
        spec = model._spec()
        if index is None:
            template, shards = spec.pk, spec.shards
        else:
            found = spec.indexes.get(index)
            if found is None or found.pk is None:
                continue
            template, shards = found.pk, found.shards
        exact = shards is not None and len(template.parts) == 1 and bool(template.fields)
        shapes.append(KeyShape(model.__name__, template, template.text, exact))
    if index is None:
        shapes.append(KeyShape("dynamodel's own records", None, RESERVED_PREFIX))
    return shapes


def _check_overlaps(
    keys: Sequence[LeadingKey], field: str, separators: str, space: Sequence[KeyShape]
) -> str | None:
    for key in keys:
        for other in space:
            reason = overlap_reason(key, field, separators, other)
            if reason is not None:
                return reason
    return None


def _arns(table: Table, table_arn: str | None, partition: str, region: str, account: str) -> str:
    if table_arn is not None:
        if not table_arn.startswith("arn:") or ":table/" not in table_arn:
            raise ValidationError(f"table_arn {table_arn!r} is not a DynamoDB table ARN")
        return table_arn
    return f"arn:{partition}:dynamodb:{region}:{account}:table/{table.physical_name}"


def _condition(values: Sequence[str], attributes: Sequence[str] | None) -> dict[str, Any]:
    condition: dict[str, Any] = {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": list(values)},
        # ForAllValues over an empty set is true: demand that the request names its keys
        "Null": {"dynamodb:LeadingKeys": "false"},
    }
    if attributes is not None:
        condition["ForAllValues:StringEquals"] = {"dynamodb:Attributes": list(attributes)}
    return condition


def stored_attributes(models: Iterable[type[ModelBase]]) -> list[str]:
    """Every attribute dynamodel writes for these models: key and type attributes, the index
    key attributes they declare, their fields' stored names (version and timestamps
    included) and the table's TTL attribute. Sorted."""
    names: set[str] = set()
    for model in models:
        spec = model._spec()
        names |= spec.own_attributes
        for multi in spec.multi_indexes.values():
            names.update(multi.pk_attrs + multi.sk_attrs)
        if spec.table.ttl:
            names.add(spec.table.ttl)
    return sorted(names)


def _public_values(
    models: Sequence[type[ModelBase]], table: Table, refused: dict[str, str]
) -> list[str]:
    values: list[str] = []
    for model in models:
        spec = model._spec()
        literal, first = spec.pk.parts[0][0], spec.pk.parts[0][1]
        if first is None or not literal or literal[-1] not in spec.pk.separators:
            refused[model.__name__] = (
                f"public: its partition key {spec.pk.text!r} does not start with literal text "
                "ending in a separator (such as 'PRODUCT#'), so a prefix could not be confined "
                "to this model's keys"
            )
            continue
        for other in _key_space(table, None, ()):
            if other.owner == model.__name__ or other.template is None:
                continue
            other_literal = other.template.parts[0][0] if other.template.parts else other.text
            if other_literal.startswith(literal) or (
                literal.startswith(other_literal)
                and other.template.fields
                and not any(c in other.template.separators for c in literal[len(other_literal) :])
            ):
                refused[model.__name__] = (
                    f"public: {other.owner}'s partition key {other.text!r} can start with "
                    f"{literal!r}, so a public prefix would expose its items"
                )
                break
        else:
            values.append(iam_literal(literal) + "*")
    return sorted(set(values))


def _model_keys(
    model: type[ModelBase], spec: ModelSpec, field: str, variable: str
) -> tuple[list[LeadingKey], str | None]:
    if spec.unique:
        return [], (
            f"Meta.unique {list(spec.unique)}: its guard items live in the reserved "
            f"'{RESERVED_PREFIX}#unique#...' partitions, outside every tenant's keys, so a "
            "tenant could not write them (and may not be let into them)"
        )
    reason = field_type_reason(model, field)
    if reason is not None:
        return [], reason
    count = spec.shards.count if spec.shards is not None else None
    return template_values(spec.pk, field, variable, count, "partition key")


def build_tenant_policy(
    models: Iterable[type[ModelBase]],
    *,
    field: str,
    identity: str = "cognito",
    access: Access = "read-write",
    transactions: bool = False,
    batch: bool = False,
    attributes: bool = False,
    public: Iterable[type[ModelBase]] = (),
    table_arn: str | None = None,
    partition: str = "aws",
    region: str = "*",
    account: str = "*",
) -> TenantPolicy:
    """The tenant policy of ``models`` and how it was derived (`TenantPolicy`); see
    `tenant_policy`, which returns just the document."""
    chosen = list(dict.fromkeys(models))
    public_models = list(dict.fromkeys(public))
    if not chosen:
        raise ValidationError("a tenant policy needs at least one model")
    if access not in ACCESS_LEVELS:
        raise ValidationError(f"access must be one of {list(ACCESS_LEVELS)}, got {access!r}")
    variable = identity_variable(identity)
    table = _table_of(chosen + public_models)
    refused: dict[str, str] = {}
    table_keys: list[LeadingKey] = []
    table_space = _key_space(table, None, chosen + public_models)
    for model in chosen:
        spec = model._spec()
        keys, reason = _model_keys(model, spec, field, variable)
        if reason is None:
            reason = _check_overlaps(keys, field, spec.pk.separators, table_space)
        if reason is not None:
            refused[model.__name__] = reason
            continue
        table_keys.extend(keys)
    public_values = _public_values(public_models, table, refused)
    if refused:
        raise PolicyRefused(_refusal_message(refused), reasons=refused)

    index_keys, denied = _index_values(table, chosen, field, variable)
    lsis = [i.name for i in table.indexes if isinstance(i, LSI)]
    values = sorted({k.value for k in table_keys})
    registry = _registry_values(table, chosen, index_keys)
    arn = _arns(table, table_arn, partition, region, account)
    names = stored_attributes(chosen) if attributes else None
    document = _document(
        arn=arn,
        values=values,
        index_keys=index_keys,
        lsis=lsis,
        denied=denied,
        registry=registry,
        public_values=public_values,
        access=access,
        transactions=transactions,
        batch=batch,
        attributes=names,
    )
    size_arn = _SIZE_ARN + table.physical_name
    size = max(policy_size(document), policy_size(_with_arn(document, arn, size_arn)))
    if size > MANAGED_POLICY_LIMIT:
        reason = (
            f"the policy is {size} characters (whitespace excluded), over IAM's "
            f"{MANAGED_POLICY_LIMIT}-character limit for a managed policy: split the models "
            "over several policies or drop options"
        )
        raise PolicyRefused(_refusal_message({"policy": reason}), reasons={"policy": reason})
    return TenantPolicy(
        document=document,
        table=table.physical_name,
        leading_keys=tuple(values),
        index_keys={k: tuple(v) for k, v in index_keys.items()},
        public_keys=tuple(public_values),
        denied_indexes=denied,
        size=size,
    )


def _refusal_message(refused: Mapping[str, str]) -> str:
    lines = [f"  {name}: {reason}" for name, reason in refused.items()]
    return "no tenant policy: IAM cannot confine these to one identity:\n" + "\n".join(lines)


def _index_values(
    table: Table, chosen: Sequence[type[ModelBase]], field: str, variable: str
) -> tuple[dict[str, list[str]], dict[str, str]]:
    allowed: dict[str, list[str]] = {}
    denied: dict[str, str] = {}
    for index in table.indexes:
        if not isinstance(index, GSI):
            continue
        if index.multi:
            denied[index.name] = (
                "a multi-attribute GSI: its partition key is several attributes, which "
                "dynamodb:LeadingKeys does not describe"
            )
            continue
        users = [m for m in chosen if index.name in m._spec().indexes]
        if not users:
            denied[index.name] = "none of the models is in it"
            continue
        space = _key_space(table, index.name, chosen)
        keys: list[LeadingKey] = []
        reason: str | None = None
        for model in users:
            spec = model._spec()
            templates = spec.indexes[index.name]
            assert templates.pk is not None
            count = templates.shards.count if templates.shards is not None else None
            found, reason = template_values(
                templates.pk, field, variable, count, f"{index.name} partition key"
            )
            if reason is None:
                reason = _check_overlaps(found, field, templates.pk.separators, space)
            if reason is not None:
                reason = f"{model.__name__}: {reason}"
                break
            keys.extend(found)
        if reason is not None:
            denied[index.name] = reason
        else:
            allowed[index.name] = sorted({k.value for k in keys})
    return allowed, denied


def _registry_values(
    table: Table, chosen: Sequence[type[ModelBase]], index_keys: Mapping[str, Any]
) -> list[str]:
    """The partition keys of the shard layout records dynamodel reads before a model's first
    read on a connection (`dynamodel.ops.shard_guard`)."""
    if table.sk:
        return [iam_literal(SHARD_RECORDS)]
    values = []
    for model in chosen:
        spec = model._spec()
        for slot, _ in spec.guard_slots():
            name = f"{spec.entity}#{'index#' + slot if slot else 'table'}"
            values.append(iam_literal(f"{SHARD_RECORDS}#{name}"))
    return sorted(set(values))


def _document(
    *,
    arn: str,
    values: list[str],
    index_keys: Mapping[str, list[str]],
    lsis: list[str],
    denied: Mapping[str, str],
    registry: list[str],
    public_values: list[str],
    access: str,
    transactions: bool,
    batch: bool,
    attributes: list[str] | None,
) -> dict[str, Any]:
    read = [*READ_ACTIONS, *(["dynamodb:BatchGetItem"] if batch else [])]
    statements: list[dict[str, Any]] = [
        {
            "Sid": "TenantRead",
            "Effect": "Allow",
            "Action": read,
            "Resource": [arn, *(f"{arn}/index/{name}" for name in lsis)],
            "Condition": _condition(values, attributes),
        }
    ]
    if access == "read-write":
        write = [*WRITE_ACTIONS]
        if transactions:
            write.append("dynamodb:ConditionCheckItem")
        if batch:
            write.append("dynamodb:BatchWriteItem")
        statements.append(
            {
                "Sid": "TenantWrite",
                "Effect": "Allow",
                "Action": write,
                "Resource": arn,
                "Condition": _condition(values, attributes),
            }
        )
    if index_keys:
        index_values = sorted({v for found in index_keys.values() for v in found})
        statements.append(
            {
                "Sid": "TenantIndexQuery",
                "Effect": "Allow",
                "Action": "dynamodb:Query",
                "Resource": [f"{arn}/index/{name}" for name in index_keys],
                "Condition": _condition(index_values, attributes),
            }
        )
    if public_values:
        statements.append(
            {
                "Sid": "PublicRead",
                "Effect": "Allow",
                "Action": read,
                "Resource": arn,
                "Condition": _condition(public_values, None),
            }
        )
    statements.append(
        {
            "Sid": "ShardLayoutRecords",
            "Effect": "Allow",
            "Action": "dynamodb:GetItem",
            "Resource": arn,
            "Condition": _condition(registry, None),
        }
    )
    statements.append(
        {
            "Sid": "DenyWholeTable",
            "Effect": "Deny",
            "Action": list(DENIED_ACTIONS),
            "Resource": [arn, *(arn + sub for sub in DENIED_SUBRESOURCES)],
        }
    )
    if denied:
        statements.append(
            {
                "Sid": "DenyOtherIndexes",
                "Effect": "Deny",
                "Action": "dynamodb:Query",
                "Resource": [f"{arn}/index/{name}" for name in denied],
            }
        )
    if not transactions:
        statements.append(
            {
                "Sid": "DenyTransactions",
                "Effect": "Deny",
                "Action": list(ENCLOSED_ACTIONS),
                "Resource": arn,
                "Condition": {
                    "ForAnyValue:StringEquals": {"dynamodb:EnclosingOperation": list(TRANSACTIONS)}
                },
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def _with_arn(document: Any, old: str, new: str) -> Any:
    """``document`` with every resource string's table ARN ``old`` replaced by ``new``."""
    if isinstance(document, str):
        return new + document[len(old) :] if document.startswith(old) else document
    if isinstance(document, list):
        return [_with_arn(v, old, new) for v in document]
    if isinstance(document, dict):
        return {k: _with_arn(v, old, new) for k, v in document.items()}
    return document


def tenant_policy(
    models: Iterable[type[ModelBase]],
    *,
    field: str,
    identity: str = "cognito",
    access: Access = "read-write",
    transactions: bool = False,
    batch: bool = False,
    attributes: bool = False,
    public: Iterable[type[ModelBase]] = (),
    table_arn: str | None = None,
    partition: str = "aws",
    region: str = "*",
    account: str = "*",
) -> dict[str, Any]:
    """An IAM policy document confining the caller to the items of ``models`` whose partition
    key holds their own identity in ``field``.

    Args:
        models: models of one table; each one's partition key must be ``PREFIX{field}`` or
            ``PREFIX{field}SEP...`` (else `PolicyRefused` names the model and the reason).
        field: the key field that holds the identity (a ``str`` field).
        identity: ``"cognito"``, ``"tag:NAME"`` or a raw ``${...}`` policy variable.
        access: ``"read-only"`` (GetItem, Query) or ``"read-write"`` (and PutItem,
            UpdateItem, DeleteItem).
        transactions: allow the item actions inside TransactGetItems/TransactWriteItems (and
            ConditionCheckItem); without it they are denied there.
        batch: allow BatchGetItem (and BatchWriteItem for read-write).
        attributes: restrict the attributes a request may name to the models' stored
            attributes (``dynamodb:Attributes``); whole-item reads stay allowed.
        public: models every caller may read (GetItem, Query) whose keys start with their own
            literal prefix (``PRODUCT#{product_id}``: ``PRODUCT#*``).
        table_arn: the table's ARN; default ``arn:{partition}:dynamodb:{region}:{account}:
            table/NAME`` with ``region`` and ``account`` ``*`` unless given.
    """
    return build_tenant_policy(
        models,
        field=field,
        identity=identity,
        access=access,
        transactions=transactions,
        batch=batch,
        attributes=attributes,
        public=public,
        table_arn=table_arn,
        partition=partition,
        region=region,
        account=account,
    ).document


_ARN_PLACEHOLDER = "arn:dynamodel-table-arn"


def _cfn_resource(text: str, table_ref: Any) -> Any:
    """A resource string of the placeholder ARN as CloudFormation: the table's ARN (``Fn::Sub``
    with the pseudo parameters, or ``Fn::GetAtt`` of a table resource)."""
    suffix = text[len(_ARN_PLACEHOLDER) :]
    if table_ref is None:
        raise AssertionError("unreachable")  # pragma: no cover
    if isinstance(table_ref, str):  # a table name: build the ARN with Fn::Sub
        return {
            "Fn::Sub": "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/"
            + table_ref
            + suffix
        }
    if not suffix:
        return table_ref
    return {"Fn::Sub": ["${TableArn}" + suffix, {"TableArn": table_ref}]}


def tenant_policy_cloudformation(
    models: Iterable[type[ModelBase]],
    *,
    field: str,
    identity: str = "cognito",
    access: Access = "read-write",
    transactions: bool = False,
    batch: bool = False,
    attributes: bool = False,
    public: Iterable[type[ModelBase]] = (),
    logical_id: str = "TenantPolicy",
    table_logical_id: str | None = None,
    roles: Sequence[Any] = (),
    description: str | None = None,
) -> dict[str, Any]:
    """A CloudFormation template with the tenant policy as an ``AWS::IAM::ManagedPolicy``.

    Resources use ``Fn::Sub`` with ``${AWS::Partition}``, ``${AWS::Region}`` and
    ``${AWS::AccountId}`` and the table's physical name, or ``Fn::GetAtt`` of
    ``table_logical_id`` (a table resource in the same template). The LeadingKeys values
    stay plain strings, so CloudFormation never substitutes the identity variable.
    ``roles``: values for the policy's ``Roles`` (names or ``{"Ref": ...}``).
    """
    chosen = list(models)
    built = build_tenant_policy(
        chosen,
        field=field,
        identity=identity,
        access=access,
        transactions=transactions,
        batch=batch,
        attributes=attributes,
        public=public,
        table_arn=_ARN_PLACEHOLDER + ":table/x",
    )
    table_ref: Any = {"Fn::GetAtt": [table_logical_id, "Arn"]} if table_logical_id else built.table
    placeholder = _ARN_PLACEHOLDER + ":table/x"

    def convert(value: Any) -> Any:
        if isinstance(value, str) and value.startswith(placeholder):
            return _cfn_resource(_ARN_PLACEHOLDER + value[len(placeholder) :], table_ref)
        if isinstance(value, list):
            return [convert(v) for v in value]
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        return value

    properties: dict[str, Any] = {
        "Description": description
        or f"Tenant access to {built.table} by {field} (generated by dynamodel)",
        "PolicyDocument": convert(built.document),
    }
    if roles:
        properties["Roles"] = list(roles)
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"Tenant isolation policy for DynamoDB table {built.table} "
        "(generated by dynamodel)",
        "Resources": {logical_id: {"Type": "AWS::IAM::ManagedPolicy", "Properties": properties}},
    }
