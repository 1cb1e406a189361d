"""Tenant IAM policies from the models (dynamodel.schema.policy): golden documents, whole-segment
matching under IAM's wildcard rules, every refusal, and the policies pass parliament and
cfn-lint. Pure: no server."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st
from policy_models import Basket, Comment, Event, Item, Metric, Note, Ticket, notes as notes_table

from dynamodel import Model, PolicyRefused, Shards, Table, ValidationError
from dynamodel.ops.shard_guard import registry_key
from dynamodel.schema import (
    TenantPolicy,
    build_tenant_policy,
    tenant_policy,
    tenant_policy_cloudformation,
)
from dynamodel.schema.policy import (
    COGNITO_IDENTITY,
    MANAGED_POLICY_LIMIT,
    SHARD_RECORDS,
    iam_literal,
    identity_variable,
    policy_size,
    stored_attributes,
)

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
sys.path.insert(0, str(ROOT))
from examples.fastapi_app.models import (  # noqa: E402
    Customer,
    Order,
    OrderItem,
    Product,
    View,
)

TENANT = "${aws:PrincipalTag/tenant}"


def golden(name: str, document: dict[str, Any]) -> None:
    """Compare with tests/golden/NAME.json (DYNAMODEL_UPDATE_GOLDEN=1 rewrites it)."""
    path = GOLDEN / f"{name}.json"
    text = json.dumps(document, indent=2) + "\n"
    if os.environ.get("DYNAMODEL_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"{path} missing: run with DYNAMODEL_UPDATE_GOLDEN=1"
    assert json.loads(path.read_text()) == document, f"{path} differs from the generated policy"


# -- IAM's StringLike, for the tests ---------------------------------------------------------


def iam_like(pattern: str, value: str, variables: dict[str, str]) -> bool:
    """IAM StringLike: ``*`` any run, ``?`` one character, ``${*}``/``${?}``/``${$}`` literal,
    ``${var}`` the variable's value (literal: wildcards in it do not count)."""
    out = []
    position = 0
    for found in re.finditer(r"\$\{([^}]*)\}|[*?]", pattern):
        out.append(re.escape(pattern[position : found.start()]))
        token = found.group()
        if token == "*":
            out.append(".*")
        elif token == "?":
            out.append(".")
        elif found.group(1) in ("*", "?", "$"):
            out.append(re.escape(found.group(1)))
        else:
            out.append(re.escape(variables[token]))
        position = found.end()
    out.append(re.escape(pattern[position:]))
    return re.fullmatch("".join(out), value, re.DOTALL) is not None


def allowed(values: list[str], key: str, identity: str, variable: str = COGNITO_IDENTITY) -> bool:
    return any(iam_like(v, key, {variable: identity}) for v in values)


def statement(document: dict[str, Any], sid: str) -> dict[str, Any]:
    return next(s for s in document["Statement"] if s["Sid"] == sid)


def leading_keys(document: dict[str, Any], sid: str = "TenantRead") -> list[str]:
    condition = statement(document, sid)["Condition"]
    return list(condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"])


# -- golden documents --------------------------------------------------------------------------


def test_single_tenant_model() -> None:
    document = tenant_policy([Note], field="tenant", identity="tag:tenant")
    golden("policy_single", document)
    assert leading_keys(document) == [f"TENANT#{TENANT}"]
    assert statement(document, "TenantWrite")["Action"] == [
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
    ]


def test_shop_with_public_catalogue() -> None:
    built = build_tenant_policy(
        [Customer, Order, OrderItem], field="customer_id", identity="cognito", public=[Product]
    )
    golden("policy_shop", built.document)
    assert built.leading_keys == (
        f"CUSTOMER#{COGNITO_IDENTITY}",
        f"CUSTOMER#{COGNITO_IDENTITY}#ORDER#*",
    )
    assert built.public_keys == ("PRODUCT#*",)
    assert "gsi1" in built.denied_indexes  # e-mails and statuses are nobody's identity
    deny = statement(built.document, "DenyOtherIndexes")
    assert deny["Resource"] == ["arn:aws:dynamodb:*:*:table/fastapi-shop/index/gsi1"]
    # counted with the longest partition and region names in its ARNs
    assert policy_size(built.document) < built.size < MANAGED_POLICY_LIMIT


def test_indexes_allowed_and_denied() -> None:
    built = build_tenant_policy([Ticket, Comment], field="tenant", identity="tag:tenant")
    golden("policy_indexes", built.document)
    assert built.index_keys == {"byowner": (f"OWNER#{TENANT}",)}
    assert "does not contain {tenant}" in built.denied_indexes["bystatus"]
    query = statement(built.document, "TenantIndexQuery")
    assert query["Resource"] == ["arn:aws:dynamodb:*:*:table/policy-tracked/index/byowner"]
    # the local index shares the table's partition key, so the table's condition covers it
    read = statement(built.document, "TenantRead")
    assert read["Resource"][1] == "arn:aws:dynamodb:*:*:table/policy-tracked/index/bydate"


def test_sharded_keys() -> None:
    document = tenant_policy([Event, Metric], field="tenant", identity="tag:tenant")
    golden("policy_sharded", document)
    keys = leading_keys(document)
    assert [k for k in keys if k.startswith("FEED#")] == [f"FEED#{TENANT}.{n}" for n in range(4)]
    assert f"METRIC#{TENANT}#*" in keys
    for shard in range(4):
        assert allowed(keys, f"FEED#t1.{shard}", "t1", TENANT)
    assert not allowed(keys, "FEED#t1.4", "t1", TENANT)
    assert not allowed(keys, "FEED#t1", "t1", TENANT)  # an unsharded key is not this model's


def test_options_read_only_batch_transactions_attributes() -> None:
    document = tenant_policy(
        [Note],
        field="tenant",
        identity="${aws:PrincipalTag/tenant}",
        access="read-only",
        batch=True,
        transactions=True,
        attributes=True,
        table_arn="arn:aws:dynamodb:eu-west-1:123456789012:table/policy-notes",
    )
    golden("policy_options", document)
    sids = [s["Sid"] for s in document["Statement"]]
    assert "TenantWrite" not in sids and "DenyTransactions" not in sids
    read = statement(document, "TenantRead")
    assert read["Action"] == ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"]
    names = read["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"]
    assert names == stored_attributes([Note]) == ["_type", "note_id", "pk", "sk", "tenant", "text"]
    assert read["Resource"] == ["arn:aws:dynamodb:eu-west-1:123456789012:table/policy-notes"]

    write = tenant_policy([Note], field="tenant", identity="tag:tenant", transactions=True)
    assert "dynamodb:ConditionCheckItem" in statement(write, "TenantWrite")["Action"]


def test_scan_partiql_and_table_operations_are_denied() -> None:
    document = tenant_policy([Note], field="tenant", identity="tag:tenant")
    deny = statement(document, "DenyWholeTable")
    for action in ("Scan", "PartiQLSelect", "PartiQLInsert", "PartiQLUpdate", "PartiQLDelete"):
        assert f"dynamodb:{action}" in deny["Action"]
    for action in ("DeleteTable", "UpdateTable", "UpdateTimeToLive", "GetRecords"):
        assert f"dynamodb:{action}" in deny["Action"]
    assert "arn:aws:dynamodb:*:*:table/policy-notes/index/*" in deny["Resource"]
    assert "Condition" not in deny  # unconditional: a Scan has no leading keys to test
    for allow in (s for s in document["Statement"] if s["Effect"] == "Allow"):
        assert allow["Condition"]["Null"] == {"dynamodb:LeadingKeys": "false"}
        assert "dynamodb:Scan" not in allow["Action"]


# -- whole segments ----------------------------------------------------------------------------


def test_t1_never_covers_t10() -> None:
    keys = leading_keys(tenant_policy([Customer, Order, OrderItem], field="customer_id"))
    assert "CUSTOMER#" + COGNITO_IDENTITY + "*" not in keys
    own = ["CUSTOMER#t1", "CUSTOMER#t1#ORDER#o1", "CUSTOMER#t1#ORDER#"]
    others = [
        "CUSTOMER#t10",
        "CUSTOMER#t10#ORDER#o1",
        "CUSTOMER#t1x",
        "CUSTOMER#t",
        "CUSTOMER#",
        "CUSTOMER#t1#PROFILE",  # not a key any chosen template renders
        "PRODUCT#t1",
        "_dynamodel#shards",
    ]
    for key in own:
        assert allowed(keys, key, "t1"), key
    for key in others:
        assert not allowed(keys, key, "t1"), key


identities = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(me=identities, other=identities, order=identities)
def test_no_identity_reaches_another_tenants_keys(me: str, other: str, order: str) -> None:
    keys = leading_keys(tenant_policy([Customer, Order, OrderItem], field="customer_id"))
    rendered = [
        Customer.build_key(customer_id=other)["pk"]["S"],
        OrderItem.build_key(customer_id=other, order_id=order, product_id="p")["pk"]["S"],
    ]
    for key in rendered:
        assert allowed(keys, key, me) == (me == other), (me, other, key)


def test_iam_special_characters_in_literal_text_are_escaped() -> None:
    assert iam_literal("A*B?C$D") == "A${*}B${?}C${$}D"
    assert iam_like("A${*}${x}", "A*me", {"${x}": "me"})
    assert not iam_like("A${*}${x}", "AZme", {"${x}": "me"})


def test_identities() -> None:
    assert identity_variable("cognito") == "${cognito-identity.amazonaws.com:sub}"
    assert identity_variable("tag:tenant") == "${aws:PrincipalTag/tenant}"
    assert identity_variable("${aws:username}") == "${aws:username}"
    for bad in ("tag:", "tag:a b", "sub", "${a}*", "${}"):
        with pytest.raises(ValidationError):
            identity_variable(bad)


# -- refusals ----------------------------------------------------------------------------------

refused_table = Table("policy-refused")


class Unrelated(Model):
    class Meta:
        table = refused_table
        pk = "GLOBAL#{name}"
        sk = "X"

    name: str
    tenant: str


class FieldSecond(Model):
    class Meta:
        table = refused_table
        pk = "REGION#{region}#TENANT#{tenant}"
        sk = "X"

    region: str
    tenant: str


class GluedSuffix(Model):
    class Meta:
        table = refused_table
        pk = "GLUED#{tenant}X"
        sk = "X"

    tenant: str


class IntTenant(Model):
    class Meta:
        table = refused_table
        pk = "NUM#{tenant}"
        sk = "X"

    tenant: int


class Escaped(Model):
    class Meta:
        table = refused_table
        pk = "ESC#{tenant}"
        sk = "X"
        escape_keys = True

    tenant: str


class WithUnique(Model):
    class Meta:
        table = refused_table
        pk = "UNIQ#{tenant}"
        sk = "X"
        unique = ("email",)

    tenant: str
    email: str


class Formatted(Model):
    class Meta:
        table = refused_table
        pk = "FMT#{tenant:>8}"
        sk = "X"

    tenant: str


REFUSALS = [
    (Unrelated, "does not contain {tenant}"),
    (FieldSecond, "has {region} before {tenant}"),
    (GluedSuffix, "'X' right after {tenant}, which is not a separator"),
    (IntTenant, "is of type int, not str"),
    (Escaped, "percent-encoded"),
    (WithUnique, "'_dynamodel#unique#...' partitions"),
    (Formatted, "formats {tenant} with '>8'"),
]


@pytest.mark.parametrize(("model", "reason"), REFUSALS, ids=[m.__name__ for m, _ in REFUSALS])
def test_refusals(model: type[Model], reason: str) -> None:
    with pytest.raises(PolicyRefused) as caught:
        tenant_policy([model], field="tenant", identity="tag:tenant")
    assert list(caught.value.reasons) == [model.__name__]
    assert reason in caught.value.reasons[model.__name__]
    assert reason in str(caught.value)


def test_every_refused_model_is_named_at_once() -> None:
    with pytest.raises(PolicyRefused) as caught:
        tenant_policy([m for m, _ in REFUSALS], field="tenant", identity="tag:tenant")
    assert sorted(caught.value.reasons) == sorted(m.__name__ for m, _ in REFUSALS)
    golden("policy_refused", {"reasons": caught.value.reasons})


def test_refused_when_the_model_has_no_such_field() -> None:
    with pytest.raises(PolicyRefused) as caught:
        tenant_policy([Customer, View], field="customer_id")
    assert caught.value.reasons == {"View": "it has no field 'customer_id'"}


overlap_table = Table("policy-overlap")


class Account(Model):
    class Meta:
        table = overlap_table
        pk = "ACCOUNT#{tenant}"
        sk = "X"

    tenant: str


class Alias(Model):  # the same prefix holding another field: its items could be a tenant's
    class Meta:
        table = overlap_table
        pk = "ACCOUNT#{alias}"
        sk = "ALIAS"

    alias: str


dotted_table = Table("policy-dotted")


class Dotted(Model):
    class Meta:
        table = dotted_table
        pk = "D#{tenant}.{part}"
        sk = "X"

    tenant: str
    part: str


class Plain(Model):  # '.' is no separator here: a tenant "t1.x" renders D#t1.x
    class Meta:
        table = dotted_table
        pk = "D#{tenant}"
        sk = "Y"

    tenant: str


def test_refused_when_another_entity_shares_the_prefix() -> None:
    with pytest.raises(PolicyRefused) as caught:
        tenant_policy([Account], field="tenant", identity="tag:tenant")
    assert "Alias's partition key 'ACCOUNT#{alias}'" in caught.value.reasons["Account"]
    with pytest.raises(PolicyRefused) as caught:
        tenant_policy([Dotted], field="tenant", identity="tag:tenant")
    assert "does not treat '.' as a separator" in caught.value.reasons["Dotted"]
    # Plain alone is fine: D#${tenant} is exact, and Dotted's keys hold a '.' after the tenant
    assert leading_keys(tenant_policy([Plain], field="tenant", identity="tag:tenant")) == [
        f"D#{TENANT}"
    ]


def test_refused_over_the_size_limit() -> None:
    big = Table("policy-big")

    class Crowd(Model):
        class Meta:
            table = big
            pk = "CROWD#{tenant}"
            sk = "X"
            shards = Shards(400)

        tenant: str

    with pytest.raises(PolicyRefused) as caught:
        tenant_policy([Crowd], field="tenant", identity="tag:tenant")
    reason = caught.value.reasons["policy"]
    assert "over IAM's 6144-character limit" in reason
    assert re.search(r"the policy is \d{5} characters", reason)


def test_public_needs_its_own_prefix() -> None:
    document = tenant_policy([Basket], field="user", identity="tag:user", public=[Item])
    assert leading_keys(document, "PublicRead") == ["ITEM#*"]
    assert statement(document, "PublicRead")["Action"] == ["dynamodb:GetItem", "dynamodb:Query"]
    with pytest.raises(PolicyRefused) as caught:
        tenant_policy([Plain], field="tenant", identity="tag:tenant", public=[Dotted])
    assert "can start with 'D#'" in caught.value.reasons["Dotted"]


def test_bad_arguments() -> None:
    with pytest.raises(ValidationError, match="one table"):
        tenant_policy([Note, Basket], field="tenant")
    with pytest.raises(ValidationError, match="access must be"):
        tenant_policy([Note], field="tenant", access="admin")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="at least one model"):
        tenant_policy([], field="tenant")
    with pytest.raises(ValidationError, match="not a DynamoDB table ARN"):
        tenant_policy([Note], field="tenant", table_arn="notes")


# -- CloudFormation ----------------------------------------------------------------------------


def test_cloudformation_template() -> None:
    template = tenant_policy_cloudformation(
        [Customer, Order, OrderItem], field="customer_id", public=[Product]
    )
    golden("policy_shop_cloudformation", template)
    (resource,) = template["Resources"].values()
    assert resource["Type"] == "AWS::IAM::ManagedPolicy"
    document = resource["Properties"]["PolicyDocument"]
    read = statement(document, "TenantRead")
    assert read["Resource"] == [
        {
            "Fn::Sub": "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/"
            "fastapi-shop"
        }
    ]
    # the identity variable is a plain string: CloudFormation never substitutes it
    assert leading_keys(document)[0] == f"CUSTOMER#{COGNITO_IDENTITY}"
    text = json.dumps(template)
    for sub in re.findall(r'"Fn::Sub": "([^"]*)"', text):
        assert "cognito" not in sub

    attached = tenant_policy_cloudformation(
        [Ticket, Comment],
        field="tenant",
        identity="tag:tenant",
        table_logical_id="TrackedTable",
        roles=[{"Ref": "TenantRole"}],
    )
    properties = attached["Resources"]["TenantPolicy"]["Properties"]
    assert properties["Roles"] == [{"Ref": "TenantRole"}]
    index = statement(properties["PolicyDocument"], "TenantIndexQuery")["Resource"]
    assert index == [
        {
            "Fn::Sub": [
                "${TableArn}/index/byowner",
                {"TableArn": {"Fn::GetAtt": ["TrackedTable", "Arn"]}},
            ]
        }
    ]


# -- linters -----------------------------------------------------------------------------------

POLICIES = [
    ("single", lambda: tenant_policy([Note], field="tenant", identity="tag:tenant")),
    (
        "shop",
        lambda: tenant_policy([Customer, Order, OrderItem], field="customer_id", public=[Product]),
    ),
    ("indexes", lambda: tenant_policy([Ticket, Comment], field="tenant", identity="tag:tenant")),
    ("sharded", lambda: tenant_policy([Event, Metric], field="tenant", identity="tag:tenant")),
    (
        "everything",
        lambda: tenant_policy(
            [Note],
            field="tenant",
            identity="tag:tenant",
            batch=True,
            transactions=True,
            attributes=True,
            table_arn="arn:aws:dynamodb:eu-west-1:123456789012:table/policy-notes",
        ),
    ),
]


@pytest.mark.parametrize(("name", "make"), POLICIES, ids=[n for n, _ in POLICIES])
def test_parliament_finds_nothing(name: str, make: Any) -> None:
    parliament = pytest.importorskip("parliament", reason="parliament is not installed")
    policy = parliament.analyze_policy_string(json.dumps(make()), include_community_auditors=True)
    findings = [(f.issue, f.detail, f.location) for f in policy.findings]
    assert findings == [], findings


def test_parliament_would_catch_a_made_up_action() -> None:
    parliament = pytest.importorskip("parliament", reason="parliament is not installed")
    document = tenant_policy([Note], field="tenant", identity="tag:tenant")
    statement(document, "TenantWrite")["Action"].append("dynamodb:TransactWriteItems")
    policy = parliament.analyze_policy_string(json.dumps(document))
    assert "UNKNOWN_ACTION" in {f.issue for f in policy.findings}


def _cfn_lint() -> str:
    beside = Path(sys.executable).with_name("cfn-lint")  # the test environment's own first
    found = str(beside) if beside.exists() else shutil.which("cfn-lint")
    if found is None:
        pytest.skip("cfn-lint is not installed")
    return found


def test_cfn_lint_accepts_the_templates(tmp_path: Path) -> None:
    cfn_lint = _cfn_lint()
    from dynamodel.schema import cloudformation

    table = cloudformation(Ticket._spec().table, logical_id="TrackedTable")
    policy = tenant_policy_cloudformation(
        [Ticket, Comment], field="tenant", identity="tag:tenant", table_logical_id="TrackedTable"
    )
    table["Resources"].update(policy["Resources"])
    files = []
    for name, template in (
        (
            "alone.json",
            tenant_policy_cloudformation([Customer, Order, OrderItem], field="customer_id"),
        ),
        ("with-table.json", table),
    ):
        path = tmp_path / name
        path.write_text(json.dumps(template, indent=2))
        files.append(str(path))
    files.append(str(ROOT / "examples" / "tenant_policy" / "template.yaml"))
    done = subprocess.run([cfn_lint, *files], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_tenant_policy_dataclass() -> None:
    built = build_tenant_policy([Note], field="tenant", identity="tag:tenant")
    assert isinstance(built, TenantPolicy)
    assert built.table == "policy-notes" and built.leading_keys == (f"TENANT#{TENANT}",)
    assert built.document == tenant_policy([Note], field="tenant", identity="tag:tenant")


def test_sam_example_copy_is_current() -> None:
    """examples/tenant_policy/template.yaml holds what generate.py makes from the shop models."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "tenant_policy" / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr


def test_docs_show_the_current_shop_policy() -> None:
    """docs/tenancy.md ends with the shop's policy as the command prints it."""
    page = (ROOT / "docs" / "tenancy.md").read_text()
    shown = page.rsplit("```json\n", 1)[1].split("```", 1)[0]
    expected = tenant_policy(
        [Customer, Order, OrderItem], field="customer_id", identity="cognito", public=[Product]
    )
    assert json.loads(shown) == expected


def test_a_bare_identity_key_reaches_everything_and_is_refused() -> None:
    bare = Table("policy-bare")

    class Bare(Model):
        class Meta:
            table = bare
            pk = "{tenant}"
            sk = "X"

        tenant: str

    with pytest.raises(PolicyRefused) as caught:
        tenant_policy([Bare], field="tenant", identity="tag:tenant")
    assert "'_dynamodel'" in caught.value.reasons["Bare"]  # the library's own records


def test_shard_layout_records_on_a_table_without_sort_key() -> None:
    flat = Table("policy-flat", sk=None)

    class Profile(Model):
        class Meta:
            table = flat
            pk = "PROFILE#{tenant}"

        tenant: str

    document = tenant_policy([Profile], field="tenant", identity="tag:tenant")
    records = statement(document, "ShardLayoutRecords")
    assert records["Action"] == "dynamodb:GetItem"
    assert leading_keys(document, "ShardLayoutRecords") == ["_dynamodel#shards#Profile#table"]
    # the keys the shard guard really reads (kept in step with dynamodel.ops.shard_guard)
    assert registry_key(flat, "Profile", None) == {"pk": {"S": "_dynamodel#shards#Profile#table"}}
    assert registry_key(notes_table, "Note", None)["pk"] == {"S": SHARD_RECORDS}
    assert not any(
        s["Effect"] == "Allow" and "dynamodb:PutItem" in s["Action"] and s["Sid"] != "TenantWrite"
        for s in document["Statement"]
    )


@settings(max_examples=200, deadline=None)
@given(me=identities, other=identities, shard=st.integers(0, 3), name=identities)
def test_no_identity_reaches_another_tenants_keys_in_any_shape(
    me: str, other: str, shard: int, name: str
) -> None:
    """Exact keys, longer keys, sharded keys and index keys: a caller reaches a rendered key
    exactly when it is their own."""
    import datetime as dt

    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    table_keys = leading_keys(tenant_policy([Event, Metric], field="tenant", identity="tag:tenant"))
    built = build_tenant_policy([Ticket, Comment], field="tenant", identity="tag:tenant")
    ticket_keys = leading_keys(built.document)
    owner_keys = leading_keys(built.document, "TenantIndexQuery")
    cases = [
        (table_keys, Event.build_key(tenant=other, at=at, event_id="e", shard=shard)["pk"]["S"]),
        (table_keys, Metric.build_key(tenant=other, name=name, at=at)["pk"]["S"]),
        (ticket_keys, Ticket.build_key(tenant=other, ticket_id=name)["pk"]["S"]),
        (ticket_keys, Comment.build_key(tenant=other, comment_id=name)["pk"]["S"]),
        (owner_keys, Ticket(tenant=other, ticket_id=name, opened=at).to_item()["gsi1pk"]["S"]),
    ]
    for values, key in cases:
        assert allowed(values, key, me, TENANT) == (me == other), (me, other, key)
