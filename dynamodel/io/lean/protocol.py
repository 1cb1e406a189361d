"""DynamoDB's JSON 1.0 protocol, sans I/O: parameters -> signed request bytes, response -> dict.

`Protocol.request` checks the top-level parameters (unknown or missing ones raise botocore's
``ParamValidationError`` before anything is sent), serialises the body and signs it;
`Protocol.response` returns the dict boto3 returns (body plus ``ResponseMetadata``) or the
``ClientError`` botocore raises for an error response (same ``response`` shape: ``Error``,
``ResponseMetadata`` and the modeled members such as ``CancellationReasons`` or ``Item``).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from typing import Any

from dynamodel.io.lean.errors import lean_exceptions, modeled_members
from dynamodel.io.lean.http11 import Response, request_head
from dynamodel.io.lean.sigv4 import Signer, amz_date
from dynamodel.io.lean.spec import CONTENT_TYPE, DATA_OPERATIONS, OPERATIONS, TARGET_PREFIX
from dynamodel.io.lean.wire import ParameterError, _decode_blobs, decode_body, encode_body


def _reason(status: int) -> str:
    """The reason phrase of an HTTP status (``http.client.responses``, without its import)."""
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


class ChecksumMismatch(Exception):
    """The body does not match the ``x-amz-crc32`` header (it was damaged on the way)."""

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"DynamoDB crc32 checksum does not match: {expected} != {actual}")
        self.expected = expected
        self.actual = actual


def _param_error(report: str) -> Exception:
    from botocore.exceptions import ParamValidationError

    error: Exception = ParamValidationError(report=report)
    return error


def check_params(method: str, params: dict[str, Any]) -> None:
    """Raise ``ParamValidationError`` for unknown, missing or None top-level parameters."""
    accepted, required = DATA_OPERATIONS[method]
    keys = params.keys()
    if keys <= accepted and keys >= required and None not in params.values():
        return
    problems = [
        f'Missing required parameter in input: "{name}"' for name in sorted(required - keys)
    ]
    problems += [
        f"Invalid type for parameter {name}, value: None, type: <class 'NoneType'>"
        for name, value in params.items()
        if value is None
    ]
    problems += [
        f'Unknown parameter in input: "{name}", must be one of: {", ".join(sorted(accepted))}'
        for name in sorted(keys - accepted, key=str)
    ]
    raise _param_error("\n".join(problems))


def request_body(method: str, params: dict[str, Any]) -> bytes:
    """The JSON body of data operation ``method``; bad parameters raise botocore's
    ``ParamValidationError`` (as boto3 does, before anything is sent)."""
    check_params(method, params)
    try:
        return encode_body(params)
    except ParameterError as exc:
        raise _param_error(str(exc)) from None


class ResponseReader:
    """Parses DynamoDB's JSON 1.0 responses into boto3's dicts and ``ClientError`` subclasses.

    Needs no endpoint or credentials: `dynamodel.inprocess` reads the answers of moto's
    in-process handler with it, exactly as the lean clients read a server's.
    """

    @property
    def exceptions(self) -> Any:
        """The modeled ``ClientError`` subclasses (botocore is imported on first use)."""
        return lean_exceptions()

    def response(self, operation: str, response: Response, retries: int) -> dict[str, Any]:
        """The boto3 response dict of a success; raises the ``ClientError`` of an error.

        ``operation`` is the API name (``"GetItem"``); ``retries`` the resends made.
        """
        headers = response.headers
        body = response.body
        crc = headers.get("x-amz-crc32")
        if crc is not None and crc.isdigit() and int(crc) != zlib.crc32(body):
            raise ChecksumMismatch(int(crc), zlib.crc32(body))
        metadata: dict[str, Any] = {}
        request_id = headers.get("x-amzn-requestid")
        if request_id is not None:
            metadata["RequestId"] = request_id
        metadata["HTTPStatusCode"] = response.status
        metadata["HTTPHeaders"] = headers
        metadata["RetryAttempts"] = retries
        if response.status < 300:
            try:
                parsed = decode_body(body)
            except ValueError as exc:
                from botocore.parsers import ResponseParserError

                raise ResponseParserError(
                    f"{operation}: the response body is not a JSON object ({exc}): {body[:200]!r}"
                ) from None
            parsed["ResponseMetadata"] = metadata
            return parsed
        raise self.error(operation, response, metadata)

    def error(self, operation: str, response: Response, metadata: dict[str, Any]) -> Exception:
        """The ``ClientError`` (modeled subclass) for an error response, as botocore builds it."""
        status = response.status
        raw = response.body
        if status >= 500 and (not raw.strip() or raw.strip().startswith(b"<html>")):
            error: dict[str, Any] = {
                "Error": {"Code": str(status), "Message": _reason(status)},
                "ResponseMetadata": metadata,
            }
            generic: Exception = self.exceptions.from_code(str(status))(error, operation)
            return generic
        body = _error_body(raw)
        message = body.get("message", body.get("Message", ""))
        code = body.get("__type", str(status))
        if isinstance(code, str):
            if ":" in code:
                code = code.split(":", 1)[0]
            if "#" in code:
                code = code.rsplit("#", 1)[1]
        error = {"Error": {"Message": message, "Code": code}, "ResponseMetadata": metadata}
        members = modeled_members(code) if isinstance(code, str) else ()
        if members:
            if b'"B"' in raw or b'"BS"' in raw:
                _decode_blobs(body)
            for member in members:
                value = body.get(member)
                if value is not None:
                    error[member] = _drop_none(value)
        exc: Exception = self.exceptions.from_code(code)(error, operation)
        return exc


class Protocol(ResponseReader):
    """Builds and parses the requests of one endpoint and region.

    Args:
        signer: the SigV4 signer of the endpoint and region.
        request_target: the request line's target (the path, or an absolute URL via a proxy).
        host: the ``Host`` header (the signed one).
        user_agent: the ``User-Agent`` header.
        credentials: returns frozen credentials (``access_key``, ``secret_key``, ``token``).
        proxy_authorization: the ``Proxy-Authorization`` header for a plain HTTP proxy.
    """

    def __init__(
        self,
        signer: Signer,
        request_target: str,
        host: str,
        user_agent: str,
        credentials: Callable[[], Any],
        proxy_authorization: str | None = None,
    ) -> None:
        self.signer = signer
        self.request_target = request_target
        self.credentials = credentials
        self._fixed = [
            ("Host", host),
            ("User-Agent", user_agent),
            ("Content-Type", CONTENT_TYPE),
            ("Accept-Encoding", "identity"),
        ]
        if proxy_authorization:
            self._fixed.append(("Proxy-Authorization", proxy_authorization))
        super().__init__()

    def request(self, method: str, params: dict[str, Any]) -> bytes:
        """The signed request bytes for data operation ``method`` (``"get_item"``, ...)."""
        body = request_body(method, params)
        target = f"{TARGET_PREFIX}.{OPERATIONS[method]}"
        credentials = self.credentials()
        date = amz_date()
        headers = [
            *self._fixed,
            ("X-Amz-Target", target),
            ("X-Amz-Date", date),
        ]
        if credentials.token:
            headers.append(("X-Amz-Security-Token", credentials.token))
        headers.append(
            ("Authorization", self.signer.authorization(credentials, date, target, body))
        )
        return request_head(self.request_target, headers, len(body)) + body


def _error_body(raw: bytes) -> dict[str, Any]:
    if not raw:
        return {}
    text = raw.decode("utf-8", "replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        return {"message": text}  # botocore keeps a non-JSON body as the message
    return parsed if isinstance(parsed, dict) else {"message": text}


def _drop_none(value: Any) -> Any:
    """Modeled structures without their null members (botocore's parser skips them)."""
    if isinstance(value, list):
        return [_drop_none(item) for item in value]
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value
