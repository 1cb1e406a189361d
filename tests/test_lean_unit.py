"""The lean transport without a server: its API tables, signatures, bodies and errors are the
ones botocore produces for the same input (checked against botocore itself), its HTTP/1.1
parser frames responses correctly, and configuration follows boto3's conventions."""

from __future__ import annotations

import base64
import datetime as dt
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore import xform_name
from botocore.awsrequest import AWSRequest
from botocore.exceptions import (
    ClientError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
)
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from dynamodel.core.errors import map_client_error
from dynamodel.io.lean import TRANSPORT_ENV, transport_from_env
from dynamodel.io.lean.config import host_header, resolve
from dynamodel.io.lean.errors import lean_exceptions
from dynamodel.io.lean.http11 import (
    IncompleteResponse,
    ProtocolError,
    Response,
    ResponseParser,
    request_head,
)
from dynamodel.io.lean.net import Proxy
from dynamodel.io.lean.protocol import ChecksumMismatch, Protocol, check_params
from dynamodel.io.lean.sigv4 import Credentials, Signer
from dynamodel.io.lean.spec import DATA_OPERATIONS, ERRORS, OPERATIONS
from dynamodel.io.lean.wire import decode_body, encode_body

ROOT = Path(__file__).resolve().parent.parent
MODEL = botocore.session.get_session().get_service_model("dynamodb")
FIXED = dt.datetime(2026, 3, 4, 5, 6, 7)
FIXED_DATE = "20260304T050607Z"
CREDS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
TEMP = Credentials("ASIAEXAMPLE", "secret/with+chars", "IQoJb3JpZ2luX2VjEXAMPLETOKEN==")


# -- the API tables match botocore's service model -------------------------------------------


def test_operations_table_matches_the_service_model() -> None:
    expected = {xform_name(name): name for name in MODEL.operation_names}
    assert expected == OPERATIONS


def test_data_operations_accept_and_require_what_botocore_does() -> None:
    assert len(DATA_OPERATIONS) == 10
    for method, (accepted, required) in DATA_OPERATIONS.items():
        shape = MODEL.operation_model(OPERATIONS[method]).input_shape
        assert accepted == set(shape.members), method
        assert required == set(shape.required_members), method
        assert all(not m.serialization for m in shape.members.values())  # no renamed members


def test_error_table_matches_the_service_model() -> None:
    expected = {
        shape.name: (shape.error_code, tuple(shape.members)) for shape in MODEL.error_shapes
    }
    assert expected == ERRORS


def test_exceptions_are_client_errors_looked_up_by_code() -> None:
    exceptions = lean_exceptions()
    assert exceptions.from_code("ConditionalCheckFailedException") is (
        exceptions.ConditionalCheckFailedException
    )
    assert issubclass(exceptions.TransactionCanceledException, ClientError)
    assert exceptions.from_code("NoSuchCode") is ClientError
    assert lean_exceptions() is exceptions  # built once


# -- SigV4: the same signature as botocore's SigV4Auth ---------------------------------------


def botocore_authorization(
    monkeypatch: pytest.MonkeyPatch,
    creds: Credentials,
    url: str,
    region: str,
    target: str,
    body: bytes,
) -> str:
    import botocore.auth
    from botocore.credentials import Credentials as BotoCredentials

    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: FIXED)
    request = AWSRequest(
        "POST",
        url,
        data=body,
        headers={"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.0"},
    )
    signer = botocore.auth.SigV4Auth(
        BotoCredentials(creds.access_key, creds.secret_key, creds.token), "dynamodb", region
    )
    signer.add_auth(request)
    assert request.headers["X-Amz-Date"] == FIXED_DATE
    return str(request.headers["Authorization"])


@pytest.mark.parametrize("creds", [CREDS, TEMP], ids=["static", "session-token"])
@pytest.mark.parametrize(
    "url",
    [
        "https://dynamodb.us-east-1.amazonaws.com",
        "https://dynamodb.eu-west-1.amazonaws.com:443/",
        "http://127.0.0.1:8000",
        "http://LocalHost:80/",
        "http://[::1]:4566",
        "https://proxy.example.com/dynamo/a/../v1",
    ],
)
def test_signature_equals_botocore_sigv4auth(
    monkeypatch: pytest.MonkeyPatch, creds: Credentials, url: str
) -> None:
    region = "eu-west-1"
    body = encode_body({"TableName": "t", "Key": {"pk": {"S": "ü €"}}})
    target = "DynamoDB_20120810.GetItem"
    resolved = resolve(
        endpoint_url=url, region_name=region, aws_access_key_id="a", aws_secret_access_key="b"
    )
    signer = Signer(region, resolved.host_header, resolved.canonical_path)
    ours = signer.authorization(creds, FIXED_DATE, target, body)
    theirs = botocore_authorization(monkeypatch, creds, url, region, target, body)
    assert ours == theirs


def test_signing_key_is_cached_per_day_and_secret() -> None:
    signer = Signer("us-east-1", "h", "/")
    key = signer.signing_key("s1", "20260304")
    assert signer.signing_key("s1", "20260304") is key
    assert signer.signing_key("s1", "20260305") != key
    assert signer.signing_key("s2", "20260305") != signer.signing_key("s1", "20260305")


def test_host_header_is_botocores() -> None:
    from botocore.auth import _host_from_url

    for url in [
        "http://127.0.0.1:8000",
        "https://Example.COM:443",
        "https://example.com:8443/x",
        "http://[::1]:80/",
        "http://user:pw@example.com:81",
    ]:
        assert host_header(url) == _host_from_url(url), url


def parse_request(data: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    assert int(headers["Content-Length"]) == len(body)
    return lines[0], headers, body


def make_protocol(creds: Credentials = CREDS, host: str = "127.0.0.1:8000") -> Protocol:
    return Protocol(Signer("us-east-1", host, "/"), "/", host, "ua/1", lambda: creds)


@pytest.mark.parametrize("creds", [CREDS, TEMP], ids=["static", "session-token"])
def test_request_bytes_are_a_signed_json_post(
    monkeypatch: pytest.MonkeyPatch, creds: Credentials
) -> None:
    import dynamodel.io.lean.protocol as protocol_module

    monkeypatch.setattr(protocol_module, "amz_date", lambda: FIXED_DATE)
    params = {"TableName": "t", "Key": {"pk": {"S": "a"}}, "ConsistentRead": True}
    line, headers, body = parse_request(make_protocol(creds).request("get_item", params))
    assert line == "POST / HTTP/1.1"
    assert headers["Host"] == "127.0.0.1:8000"
    assert headers["X-Amz-Target"] == "DynamoDB_20120810.GetItem"
    assert headers["Content-Type"] == "application/x-amz-json-1.0"
    assert headers["X-Amz-Date"] == FIXED_DATE
    assert headers.get("X-Amz-Security-Token") == creds.token
    assert json.loads(body) == params
    expected = botocore_authorization(
        monkeypatch,
        creds,
        "http://127.0.0.1:8000",
        "us-east-1",
        "DynamoDB_20120810.GetItem",
        body,
    )
    assert headers["Authorization"] == expected


# -- parameters: checked before sending, bodies as botocore serialises them ------------------


def botocore_body(method: str, params: dict[str, Any]) -> Any:
    serializer = create_serializer("json")
    request = serializer.serialize_to_request(params, MODEL.operation_model(OPERATIONS[method]))
    return json.loads(request["body"])


BLOB_PARAMS: dict[str, dict[str, Any]] = {
    "put_item": {
        "TableName": "t",
        "Item": {
            "pk": {"B": b"\x00\xffkey"},
            "B": {"S": "an attribute called B"},
            "BS": {"BS": [b"a", bytearray(b"b"), "text is encoded as UTF-8: \u00e9"]},
            "nested": {"M": {"B": {"B": "str"}, "l": {"L": [{"B": b"\x01"}, {"N": "1"}]}}},
            "s": {"S": '"B":"not a blob"'},
        },
        "ExpressionAttributeNames": {"#B": "B"},
        "ConditionExpression": "attribute_not_exists(#B)",
    },
    "batch_write_item": {
        "RequestItems": {
            "t": [
                {"PutRequest": {"Item": {"pk": {"B": b"1"}, "set": {"BS": [b"x"]}}}},
                {"DeleteRequest": {"Key": {"pk": {"B": b"2"}}}},
            ]
        }
    },
    "query": {
        "TableName": "t",
        "KeyConditionExpression": "pk = :p",
        "ExpressionAttributeValues": {":p": {"B": b"\x00"}},
        "ExclusiveStartKey": {"pk": {"B": b"\x00"}, "sk": {"S": "x"}},
        "Limit": 5,
    },
    "get_item": {"TableName": "t", "Key": {"pk": {"S": "plain"}}},
}


@pytest.mark.parametrize("method", list(BLOB_PARAMS))
def test_request_body_equals_botocores(method: str) -> None:
    params = BLOB_PARAMS[method]
    assert json.loads(encode_body(params)) == botocore_body(method, params)


def test_unknown_and_missing_parameters_are_refused_before_sending() -> None:
    with pytest.raises(ParamValidationError) as info:
        check_params("get_item", {"TableName": "t", "Key": {}, "ConsistentReed": True})
    assert 'Unknown parameter in input: "ConsistentReed"' in str(info.value)
    assert "ConsistentRead" in str(info.value)  # the valid names are listed
    with pytest.raises(ParamValidationError, match='Missing required parameter in input: "Key"'):
        make_protocol().request("get_item", {"TableName": "t"})
    with pytest.raises(ParamValidationError, match="parameter ExclusiveStartKey, value: None"):
        check_params("query", {"TableName": "t", "ExclusiveStartKey": None})


def test_values_that_cannot_be_sent_name_their_path() -> None:
    protocol = make_protocol()
    with pytest.raises(ParamValidationError, match=r"Item\.price\.N.*Decimal"):
        protocol.request("put_item", {"TableName": "t", "Item": {"price": {"N": Decimal("1")}}})
    with pytest.raises(ParamValidationError, match=r"Item\.name\.S.*only valid as the value of B"):
        protocol.request("put_item", {"TableName": "t", "Item": {"name": {"S": b"x"}}})
    with pytest.raises(ParamValidationError, match=r"Item\.b\.B.*int"):
        protocol.request("put_item", {"TableName": "t", "Item": {"b": {"B": 5}}})


# -- responses: what botocore's parser returns -----------------------------------------------


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


RESPONSES: dict[str, dict[str, Any]] = {
    "get_item": {
        "Item": {
            "pk": {"B": b64(b"\x00\x01")},
            "B": {"S": "B"},
            "BS": {"BS": [b64(b"x"), b64(b"\xff")]},
            "m": {"M": {"B": {"B": b64(b"n")}, "l": {"L": [{"B": b64(b"q")}]}}},
        },
        "ConsumedCapacity": {"TableName": "t", "CapacityUnits": 0.5},
    },
    "query": {
        "Items": [{"pk": {"S": "a"}, "n": {"N": "12345678901234567890123456789012345678"}}],
        "Count": 1,
        "ScannedCount": 3,
        "LastEvaluatedKey": {"pk": {"B": b64(b"k")}},
    },
    "batch_write_item": {
        "UnprocessedItems": {
            "t": [{"PutRequest": {"Item": {"pk": {"B": b64(b"1")}, "s": {"SS": ["B"]}}}}]
        },
        "ConsumedCapacity": [{"TableName": "t", "CapacityUnits": 1.0}],
    },
    "batch_get_item": {
        "Responses": {"t": [{"pk": {"S": "a"}}]},
        "UnprocessedKeys": {"t": {"Keys": [{"pk": {"B": b64(b"2")}}], "ConsistentRead": True}},
    },
    "transact_get_items": {"Responses": [{"Item": {"b": {"B": b64(b"z")}}}, {}]},
    "put_item": {},
}


def botocore_parse(method: str, raw: bytes, status: int = 200) -> Any:
    parser = create_parser("json")
    operation = MODEL.operation_model(OPERATIONS[method])
    response = {"status_code": status, "headers": {"x-amzn-requestid": "r1"}, "body": raw}
    parsed = parser.parse(response, operation.output_shape)
    if status >= 300:  # what botocore's endpoint adds for modeled errors
        shape = MODEL.shape_for_error_code(parsed["Error"]["Code"])
        if shape is not None:
            parsed.update(parser.parse(response, shape))
    return parsed


def lean_response(method: str, raw: bytes, status: int = 200, retries: int = 0) -> Any:
    headers = {"x-amzn-requestid": "r1", "content-type": "application/x-amz-json-1.0"}
    response = Response(status, "OK", headers, raw, True)
    return make_protocol().response(OPERATIONS[method], response, retries)


@pytest.mark.parametrize("method", list(RESPONSES))
@pytest.mark.parametrize("spaces", [False, True], ids=["compact", "spaced"])
def test_response_equals_botocores(method: str, spaces: bool) -> None:
    raw = json.dumps(RESPONSES[method], separators=None if spaces else (",", ":")).encode()
    ours = lean_response(method, raw, retries=2)
    theirs = botocore_parse(method, raw)
    meta = ours.pop("ResponseMetadata")
    theirs_meta = theirs.pop("ResponseMetadata")
    assert ours == theirs
    assert meta["RequestId"] == theirs_meta["RequestId"] == "r1"
    assert meta["HTTPStatusCode"] == 200 and meta["RetryAttempts"] == 2
    assert meta["HTTPHeaders"]["content-type"] == "application/x-amz-json-1.0"


def test_null_members_are_dropped_as_botocore_does() -> None:
    raw = b'{"Items": [], "Count": 0, "LastEvaluatedKey": null, "ScannedCount": 0}'
    ours = lean_response("query", raw)
    del ours["ResponseMetadata"]
    assert ours == {"Items": [], "Count": 0, "ScannedCount": 0}


def test_a_damaged_body_is_detected_by_its_crc32() -> None:
    raw = b'{"Item": {"pk": {"S": "a"}}}'
    good = Response(200, "OK", {"x-amz-crc32": "1"}, raw, True)
    with pytest.raises(ChecksumMismatch):
        make_protocol().response("GetItem", good, 0)
    import zlib

    ok = Response(200, "OK", {"x-amz-crc32": str(zlib.crc32(raw))}, raw, True)
    assert make_protocol().response("GetItem", ok, 0)["Item"] == {"pk": {"S": "a"}}


def test_a_success_status_with_a_non_json_body_is_an_error_not_an_empty_result() -> None:
    from botocore.parsers import ResponseParserError

    with pytest.raises(ResponseParserError, match="not a JSON object"):
        lean_response("get_item", b"<html>oops</html>")


ERROR_BODIES: list[tuple[str, int, dict[str, Any] | bytes]] = [
    (
        "transact_write_items",
        400,
        {
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "Message": "Transaction cancelled, please refer cancellation reasons for specific "
            "reasons [None, ConditionalCheckFailed]",
            "CancellationReasons": [
                {"Code": "None"},
                {
                    "Code": "ConditionalCheckFailed",
                    "Message": "The conditional request failed",
                    "Item": {"pk": {"S": "a"}, "b": {"B": b64(b"\x01")}, "v": {"N": "3"}},
                },
            ],
        },
    ),
    (
        "put_item",
        400,
        {
            "__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
            "message": "The conditional request failed",
            "Item": {"pk": {"S": "a"}, "bs": {"BS": [b64(b"x")]}},
        },
    ),
    ("get_item", 400, {"__type": "ValidationException", "message": "bad key"}),
    (
        "query",
        400,
        {
            "__type": "com.amazon.coral.service#ProvisionedThroughputExceededException",
            "message": "slow down",
            "ThrottlingReasons": [{"reason": "TableReadProvisionedThroughputExceeded"}],
        },
    ),
    ("scan", 400, {"__type": "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException"}),
    ("scan", 400, {"__type": "SomeNewException:extra", "Message": "upper-case message key"}),
    ("get_item", 500, {"__type": "InternalServerError", "message": "boom"}),
    ("get_item", 503, b"<html><body>Service Unavailable</body></html>"),
    ("get_item", 502, b""),
    ("get_item", 413, b"request entity too large"),
]


@pytest.mark.parametrize(("method", "status", "body"), ERROR_BODIES)
def test_error_responses_equal_botocores(
    method: str, status: int, body: dict[str, Any] | bytes
) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(ClientError) as info:
        lean_response(method, raw, status=status, retries=1)
    error = info.value
    theirs = botocore_parse(method, raw, status)
    ours = dict(error.response)
    meta = ours.pop("ResponseMetadata")
    theirs.pop("ResponseMetadata")
    assert ours == theirs
    assert meta["HTTPStatusCode"] == status and meta["RetryAttempts"] == 1
    code = theirs["Error"]["Code"]
    assert type(error) is lean_exceptions().from_code(code)
    assert error.operation_name == OPERATIONS[method]
    assert str(error).startswith(f"An error occurred ({code}) when calling the")
    # dynamodel maps it exactly as it maps botocore's error
    mapped = map_client_error(error, method)
    assert mapped is not None and mapped.code == code and mapped.status == status
    assert mapped.retry_attempts == 1


def test_cancellation_reasons_reach_dynamodel() -> None:
    raw = json.dumps(ERROR_BODIES[0][2]).encode()
    with pytest.raises(ClientError) as info:
        lean_response("transact_write_items", raw, status=400)
    mapped = map_client_error(info.value, "transact_write_items")
    reasons = mapped.reasons  # type: ignore[union-attr]
    assert [r.code for r in reasons] == [None, "ConditionalCheckFailed"]
    assert reasons[1].item == {"pk": {"S": "a"}, "b": {"B": b"\x01"}, "v": {"N": "3"}}


# -- HTTP/1.1 framing -------------------------------------------------------------------------


def parse_all(data: bytes, *, step: int | None = None) -> tuple[Response, bytes]:
    parser = ResponseParser()
    pieces = [data] if step is None else [data[i : i + step] for i in range(0, len(data), step)]
    done = False
    for piece in pieces:
        done = parser.feed(piece)
    if not done:
        return parser.feed_eof(), parser.extra
    assert parser.response is not None
    return parser.response, parser.extra


@pytest.mark.parametrize("step", [None, 1, 7])
def test_content_length_body(step: int | None) -> None:
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nx-a: 2\r\n\r\nhello"
    response, extra = parse_all(data, step=step)
    assert (response.status, response.reason, response.body) == (200, "OK", b"hello")
    assert response.headers == {"content-length": "5", "x-a": "1, 2"}
    assert response.keep_alive and extra == b""


@pytest.mark.parametrize("step", [None, 1, 3])
def test_chunked_body_with_extensions_and_trailers(step: int | None) -> None:
    data = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n1A\r\n" + b"x" * 26 + b"\r\n0\r\nTrailer: t\r\n\r\n"
    )
    response, extra = parse_all(data, step=step)
    assert response.body == b"hello" + b"x" * 26 and response.keep_alive and extra == b""


def test_interim_responses_are_skipped_and_close_is_honoured() -> None:
    data = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
    )
    response, _ = parse_all(data)
    assert response.status == 400 and response.body == b"{}" and not response.keep_alive


def test_body_delimited_by_close_and_http10_rules() -> None:
    response, _ = parse_all(b"HTTP/1.1 200 OK\r\n\r\nall of it")
    assert response.body == b"all of it" and not response.keep_alive
    response, _ = parse_all(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert not response.keep_alive
    data = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"
    assert parse_all(data)[0].keep_alive
    response, _ = parse_all(b"HTTP/1.1 204 No Content\r\n\r\n")
    assert response.status == 204 and response.body == b"" and response.keep_alive


def test_bytes_after_the_response_are_kept_apart() -> None:
    response, extra = parse_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nabc")
    assert response.body == b"a" and extra == b"bc"


@pytest.mark.parametrize(
    "data",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nContent-Le",
        b"",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
    ],
)
def test_a_truncated_response_is_incomplete(data: bytes) -> None:
    with pytest.raises(IncompleteResponse):
        parse_all(data)


@pytest.mark.parametrize(
    "data",
    [
        b"SPDY/9 200 OK\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\nx",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
        b"HTTP/1.1 200 OK\r\nX: " + b"y" * 70000,
    ],
)
def test_malformed_responses_are_protocol_errors(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_all(data)


def test_request_head() -> None:
    head = request_head("/", [("Host", "h"), ("X-A", "b")], 12)
    assert head == b"POST / HTTP/1.1\r\nHost: h\r\nX-A: b\r\nContent-Length: 12\r\n\r\n"


# -- configuration follows boto3's conventions -----------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in [
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_PROFILE",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
        "NO_PROXY",
        "no_proxy",
    ]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "env-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    return monkeypatch


def test_endpoint_and_region_resolution(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(NoRegionError):
        resolve()
    clean_env.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    resolved = resolve()
    assert resolved.region == "eu-west-1"
    assert resolved.endpoint_url == "https://dynamodb.eu-west-1.amazonaws.com"
    assert resolved.target.ssl_context is not None and resolved.target.port == 443
    assert resolve(region_name="cn-north-1").endpoint_url == (
        "https://dynamodb.cn-north-1.amazonaws.com.cn"
    )
    clean_env.setenv("AWS_ENDPOINT_URL", "http://global:1")
    assert resolve().endpoint_url == "http://global:1"
    clean_env.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000")
    resolved = resolve()
    assert resolved.endpoint_url == "http://127.0.0.1:8000"
    assert (resolved.target.host, resolved.target.port) == ("127.0.0.1", 8000)
    assert resolved.host_header == "127.0.0.1:8000" and resolved.target.ssl_context is None
    assert resolve(endpoint_url="http://explicit:2").endpoint_url == "http://explicit:2"
    clean_env.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    assert resolve().endpoint_url == "https://dynamodb.eu-west-1.amazonaws.com"


def test_profile_settings_are_used(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "config").write_text(
        "[profile dev]\nregion = ap-south-1\nendpoint_url = http://from-profile:9\n"
    )
    resolved = resolve(profile_name="dev")
    assert (resolved.region, resolved.endpoint_url) == ("ap-south-1", "http://from-profile:9")


def test_credentials(clean_env: pytest.MonkeyPatch) -> None:
    resolved = resolve(region_name="us-east-1", endpoint_url="http://h:1")
    assert resolved.credentials.get_frozen_credentials().access_key == "env-key"
    explicit = resolve(
        region_name="us-east-1",
        endpoint_url="http://h:1",
        aws_access_key_id="k",
        aws_secret_access_key="s",
        aws_session_token="t",
    )
    assert tuple(explicit.credentials.get_frozen_credentials())[:3] == ("k", "s", "t")
    with pytest.raises(PartialCredentialsError):
        resolve(region_name="us-east-1", endpoint_url="http://h:1", aws_access_key_id="k")


@pytest.mark.parametrize(
    "url", ["ftp://h", "http://", "http://h:notaport", "http://h/?q=1", "localhost:8000"]
)
def test_invalid_endpoints_are_refused(clean_env: pytest.MonkeyPatch, url: str) -> None:
    with pytest.raises(ValueError, match="Invalid endpoint"):
        resolve(endpoint_url=url, region_name="us-east-1")


def test_config_sets_timeouts_pool_size_and_resends(clean_env: pytest.MonkeyPatch) -> None:
    from botocore.config import Config

    config = Config(
        connect_timeout=2,
        read_timeout=3,
        max_pool_connections=4,
        retries={"mode": "standard", "total_max_attempts": 5},
    )
    resolved = resolve(endpoint_url="http://h:1", region_name="us-east-1", config=config)
    target = resolved.target
    assert (target.connect_timeout, target.read_timeout, target.max_idle) == (2, 3, 4)
    assert resolved.connection_retries == 4
    assert resolve(endpoint_url="http://h:1", region_name="x").connection_retries == 2
    legacy = Config(retries={"max_attempts": 0})
    assert (
        resolve(endpoint_url="http://h:1", region_name="x", config=legacy).connection_retries == 0
    )


def test_proxies_from_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("HTTP_PROXY", "http://user:p%40ss@proxy.local:3128")
    resolved = resolve(endpoint_url="http://db.example:8000/", region_name="us-east-1")
    proxy = resolved.target.proxy
    assert proxy is not None and (proxy.host, proxy.port) == ("proxy.local", 3128)
    assert proxy.authorization == "Basic " + base64.b64encode(b"user:p@ss").decode()
    assert resolved.request_target == "http://db.example:8000/"  # absolute form via a proxy
    clean_env.setenv("NO_PROXY", "db.example")
    resolved = resolve(endpoint_url="http://db.example:8000/", region_name="us-east-1")
    assert resolved.target.proxy is None and resolved.request_target == "/"
    with pytest.raises(ValueError, match="http:// proxies only"):
        Proxy.parse("https://proxy.local:443")


# -- the transport switch and import weight --------------------------------------------------


def test_transport_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TRANSPORT_ENV, raising=False)
    assert transport_from_env() == "lean"  # the default
    monkeypatch.setenv(TRANSPORT_ENV, "")
    assert transport_from_env() == "lean"
    monkeypatch.setenv(TRANSPORT_ENV, " Boto3 ")
    assert transport_from_env() == "boto3"
    assert transport_from_env("lean") == "lean"  # an explicit transport wins over the variable
    monkeypatch.setenv(TRANSPORT_ENV, " Lean ")
    assert transport_from_env() == "lean"
    assert transport_from_env("boto3") == "boto3"
    monkeypatch.setenv(TRANSPORT_ENV, "fast")
    with pytest.raises(ValueError, match="DYNAMODEL_TRANSPORT='fast': choose one of boto3, lean"):
        transport_from_env()
    with pytest.raises(ValueError, match="transport='x'"):
        transport_from_env("x")


def test_importing_the_package_stays_light() -> None:
    code = (
        "import sys, dynamodel.io.lean; dynamodel.io.lean.transport_from_env(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('botocore', 'boto3', 'aiohttp', 'aioboto3', 'urllib3')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_responses_decode_without_shapes_only_where_botocore_would() -> None:
    raw = json.dumps({"Items": [{"S": {"S": "B"}, "x": {"SS": ["BS"]}}], "Count": 1}).encode()
    assert decode_body(raw)["Items"] == [{"S": {"S": "B"}, "x": {"SS": ["BS"]}}]
