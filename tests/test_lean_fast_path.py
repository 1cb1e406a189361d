"""The lean transport's configuration without botocore (`config.resolve_fast`).

When credentials, region and endpoint are unambiguous (explicit or from the environment, no
profiles, no shared files, no FIPS/dual-stack/proxy settings), the lean client resolves them
without importing botocore; otherwise it falls back to botocore's session, unchanged. Where
both apply they must agree.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dynamodel.io.lean.config import Resolved, resolve, resolve_fast, resolve_slow

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No AWS settings, no proxies, an empty home: only what a test sets."""
    for name in list(os.environ):
        if name.startswith("AWS_") or name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    return monkeypatch


def same(fast: Resolved, slow: Resolved) -> None:
    assert fast.session is None and slow.session is not None
    for name in (
        "endpoint_url",
        "region",
        "host_header",
        "canonical_path",
        "request_target",
        "connection_retries",
        "user_agent",
    ):
        assert getattr(fast, name) == getattr(slow, name), name
    frozen = slow.credentials.get_frozen_credentials()
    assert tuple(fast.credentials.get_frozen_credentials()) == (
        frozen.access_key,
        frozen.secret_key,
        frozen.token,
    )
    for name in ("host", "port", "proxy", "connect_timeout", "read_timeout", "max_idle"):
        assert getattr(fast.target, name) == getattr(slow.target, name), name
    if slow.target.ssl_context is None:
        assert fast.target.ssl_context is None
    else:
        assert fast.target.ssl_context is not None
        assert fast.target.ssl_context.verify_mode == slow.target.ssl_context.verify_mode
        assert fast.target.ssl_context.check_hostname == slow.target.ssl_context.check_hostname
        assert fast.target.ssl_context.get_ca_certs() == slow.target.ssl_context.get_ca_certs()


CASES: list[tuple[dict[str, str], dict[str, Any]]] = [
    ({"AWS_DEFAULT_REGION": "us-east-1"}, {}),
    ({"AWS_DEFAULT_REGION": "eu-west-3", "AWS_SESSION_TOKEN": "tok"}, {}),
    ({"AWS_DEFAULT_REGION": "ap-southeast-2", "AWS_ENDPOINT_URL": "http://127.0.0.1:9/"}, {}),
    (
        {
            "AWS_DEFAULT_REGION": "us-west-2",
            "AWS_ENDPOINT_URL": "http://other:1",
            "AWS_ENDPOINT_URL_DYNAMODB": "https://localhost:8443",
        },
        {},
    ),
    (
        {
            "AWS_DEFAULT_REGION": "us-west-2",
            "AWS_ENDPOINT_URL_DYNAMODB": "http://localhost:8000",
            "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true",
        },
        {},
    ),
    ({"AWS_REGION": "eu-west-1"}, {"region_name": "sa-east-1"}),
    ({"AWS_DEFAULT_REGION": "us-east-1"}, {"endpoint_url": "http://[::1]:8000"}),
    (
        {"AWS_DEFAULT_REGION": "ca-central-1"},
        {"aws_access_key_id": "AK2", "aws_secret_access_key": "SK2", "aws_session_token": "T2"},
    ),
    ({"AWS_DEFAULT_REGION": "us-east-1"}, {"verify": False}),
]


@pytest.mark.parametrize(("env", "kwargs"), CASES)
def test_fast_and_botocore_agree(
    clean_env: pytest.MonkeyPatch, env: dict[str, str], kwargs: dict[str, Any]
) -> None:
    clean_env.setenv("AWS_ACCESS_KEY_ID", "AKID")
    clean_env.setenv("AWS_SECRET_ACCESS_KEY", "SECRET")
    for name, value in env.items():
        clean_env.setenv(name, value)
    fast = resolve_fast(**kwargs)
    assert fast is not None
    same(fast, resolve_slow(**kwargs))
    assert resolve(**kwargs) == fast or resolve(**kwargs).session is None


def test_ca_bundle_from_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    import certifi

    clean_env.setenv("AWS_ACCESS_KEY_ID", "AKID")
    clean_env.setenv("AWS_SECRET_ACCESS_KEY", "SECRET")
    clean_env.setenv("AWS_DEFAULT_REGION", "us-east-1")
    clean_env.setenv("AWS_CA_BUNDLE", certifi.where())
    fast = resolve_fast()
    assert fast is not None
    same(fast, resolve_slow())


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


FALLBACKS: list[tuple[dict[str, str], dict[str, Any]]] = [
    ({"AWS_PROFILE": "default"}, {}),
    ({"AWS_DEFAULT_PROFILE": "default"}, {}),
    ({"AWS_USE_FIPS_ENDPOINT": "true"}, {}),
    ({"AWS_USE_DUALSTACK_ENDPOINT": "true"}, {}),
    ({"AWS_DEFAULT_REGION": "cn-north-1"}, {}),
    ({"AWS_DEFAULT_REGION": "us-gov-west-1"}, {}),
    ({"AWS_DEFAULT_REGION": "us-iso-east-1"}, {}),
    ({"HTTPS_PROXY": "http://127.0.0.1:3128"}, {}),
    ({"no_proxy": "localhost"}, {}),
    ({"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "yes"}, {}),
    ({"AWS_SESSION_TOKEN": ""}, {}),
    ({"AWS_ENDPOINT_URL": ""}, {}),
    ({"AWS_CA_BUNDLE": ""}, {}),
    ({}, {"profile_name": "default"}),
    ({}, {"config": object()}),
    ({}, {"endpoint_url": "http://localhost:8000/a/../b"}),
    ({}, {"aws_access_key_id": "only-the-key"}),
]


@pytest.mark.parametrize(("env", "kwargs"), FALLBACKS)
def test_falls_back(
    clean_env: pytest.MonkeyPatch, env: dict[str, str], kwargs: dict[str, Any]
) -> None:
    clean_env.setenv("AWS_ACCESS_KEY_ID", "AKID")
    clean_env.setenv("AWS_SECRET_ACCESS_KEY", "SECRET")
    clean_env.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name, value in env.items():
        clean_env.setenv(name, value)
    assert resolve_fast(**kwargs) is None


@pytest.mark.parametrize("name", ["config", "credentials"])
def test_shared_files_fall_back(clean_env: pytest.MonkeyPatch, tmp_path: Path, name: str) -> None:
    clean_env.setenv("AWS_ACCESS_KEY_ID", "AKID")
    clean_env.setenv("AWS_SECRET_ACCESS_KEY", "SECRET")
    clean_env.setenv("AWS_DEFAULT_REGION", "us-east-1")
    assert resolve_fast() is not None
    (tmp_path / ".aws").mkdir()
    write(tmp_path / ".aws" / name, "[default]\nregion = eu-west-1\n")
    assert resolve_fast() is None
    assert resolve().session is not None


@pytest.mark.parametrize("name", ["AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"])
def test_shared_file_variables_fall_back(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    clean_env.setenv("AWS_ACCESS_KEY_ID", "AKID")
    clean_env.setenv("AWS_SECRET_ACCESS_KEY", "SECRET")
    clean_env.setenv("AWS_DEFAULT_REGION", "us-east-1")
    clean_env.setenv(name, str(tmp_path / "missing"))
    assert resolve_fast() is None


def test_no_credentials_in_the_environment_fall_back(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("AWS_DEFAULT_REGION", "us-east-1")
    clean_env.setenv("AWS_ACCESS_KEY_ID", "AKID")
    assert resolve_fast() is None


def test_missing_region_gives_botocores_error(clean_env: pytest.MonkeyPatch) -> None:
    from botocore.exceptions import NoRegionError

    clean_env.setenv("AWS_ACCESS_KEY_ID", "AKID")
    clean_env.setenv("AWS_SECRET_ACCESS_KEY", "SECRET")
    clean_env.setenv("AWS_REGION", "us-east-1")  # botocore does not read AWS_REGION
    assert resolve_fast() is None
    with pytest.raises(NoRegionError):
        resolve()


def test_bad_endpoint_gives_the_same_error(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("AWS_ACCESS_KEY_ID", "AKID")
    clean_env.setenv("AWS_SECRET_ACCESS_KEY", "SECRET")
    clean_env.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with pytest.raises(ValueError, match="Invalid endpoint"):
        resolve_fast(endpoint_url="ftp://x")
    with pytest.raises(ValueError, match="Invalid endpoint"):
        resolve_slow(endpoint_url="ftp://x")


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    import boto3

    from dynamodel.local import LocalDynamoDB

    db = LocalDynamoDB()
    url = db.start()
    try:
        boto3.client(
            "dynamodb",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="k",
            aws_secret_access_key="s",
        ).create_table(
            TableName="fast-path",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield url
    finally:
        db.stop()


SCRIPT = """
import sys
from dynamodel import Connection

connection = Connection(transport="lean")
client = connection.client()
client.put_item(TableName="fast-path", Item={"pk": {"S": "a"}, "v": {"N": "1"}})
item = client.get_item(TableName="fast-path", Key={"pk": {"S": "a"}})["Item"]
assert item == {"pk": {"S": "a"}, "v": {"N": "1"}}, item
print("botocore" in sys.modules)
control = connection.client(control=True)  # control plane: botocore, Connection's config
assert control.describe_table(TableName="fast-path")["Table"]["TableName"] == "fast-path"
assert control.meta.config.retries == {"mode": "standard", "total_max_attempts": 3}
assert control.control_client().meta.config.retries["total_max_attempts"] == 3
"""


#: a cold start through the models and the default connection, as a Lambda handler runs one
MODEL_SCRIPT = """
import sys
from dynamodel import Model, Table

class Thing(Model):
    class Meta:
        table = Table("fast-path", sk=None)
        pk = "THING#{name}"

    name: str
    size: int

LIGHT = ("botocore", "botocore.exceptions")  # what a failed condition needs (ClientError)

def heavy():
    return sorted(
        m for m in sys.modules
        if m.split(".")[0] in ("botocore", "boto3", "aioboto3", "aiohttp", "urllib3", "asyncio")
        and m not in LIGHT and not m.startswith("botocore.vendored")
    )

if sys.argv[1] == "sync":
    Thing(name="s", size=1).save()
    assert Thing.get(name="s").size == 1
    try:
        Thing(name="s", size=3).create()  # a failed condition: an error response
    except Exception as error:
        assert type(error).__name__ == "ConditionFailed", error
    else:
        raise AssertionError("create() overwrote an item")
    print(heavy())
else:
    import asyncio

    async def main():
        await Thing(name="a", size=2).asave()
        assert (await Thing.aget(name="a")).size == 2
        assert [t.name async for t in Thing.aquery(name="a")] == ["a"]
        await Thing.Meta.table.connection.aclose()
    asyncio.run(main())
    print([m for m in heavy() if m.split(".")[0] != "asyncio"])
"""


def run(endpoint: str, home: Path, script: str = SCRIPT, *args: str, **extra: str) -> str:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "PYTHONPATH": str(ROOT),
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
        **extra,
    }
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_first_calls_without_botocore(endpoint: str, tmp_path: Path) -> None:
    assert run(endpoint, tmp_path) == "False"


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_cold_start_on_the_default_transport_imports_no_botocore(
    endpoint: str, tmp_path: Path, mode: str
) -> None:
    """Nothing says which transport: the default (lean) one reads and writes models, sync and
    async, without importing botocore (beyond ``botocore.exceptions``, which a failed
    condition needs: the lean errors are ``ClientError`` subclasses), boto3, aioboto3,
    urllib3 or (sync) asyncio."""
    assert run(endpoint, tmp_path, MODEL_SCRIPT, mode) == "[]"


def test_the_boto3_transport_is_one_variable_away(endpoint: str, tmp_path: Path) -> None:
    out = run(endpoint, tmp_path, MODEL_SCRIPT, "sync", DYNAMODEL_TRANSPORT="boto3")
    assert "botocore" in out and "boto3" in out


def test_fallback_imports_botocore_and_works(endpoint: str, tmp_path: Path) -> None:
    (tmp_path / ".aws").mkdir()
    write(tmp_path / ".aws" / "config", "[default]\n")
    assert run(endpoint, tmp_path) == "True"
