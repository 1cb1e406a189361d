"""AWS Signature Version 4 for DynamoDB's JSON requests, computed with hashlib and hmac.

The canonical request is the one botocore's ``SigV4Auth`` builds for the same request: method
``POST``, the endpoint's path, no query, the signed headers ``content-type``, ``host``,
``x-amz-date``, ``x-amz-security-token`` (with temporary credentials) and ``x-amz-target``, and
the SHA-256 of the body. The derived signing key is cached per secret key and day, so a request
costs two SHA-256 digests and one HMAC. ``tests/test_lean_unit.py`` checks the result against
``SigV4Auth`` on fixed credentials and times.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import NamedTuple

from dynamodel.io.lean.spec import CONTENT_TYPE, SERVICE

ALGORITHM = "AWS4-HMAC-SHA256"


class Credentials(NamedTuple):
    """Frozen credentials: what botocore's ``get_frozen_credentials()`` returns."""

    access_key: str
    secret_key: str
    token: str | None = None


def amz_date(now: float | None = None) -> str:
    """The ``X-Amz-Date`` value for ``now`` (seconds since the epoch; default: the clock)."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


class Signer:
    """Signs DynamoDB JSON requests for one region and canonical host and path."""

    __slots__ = ("_cache", "_prefix", "_region_scope")

    def __init__(self, region: str, host: str, path: str) -> None:
        self._region_scope = f"{region}/{SERVICE}/aws4_request"
        self._prefix = f"POST\n{path}\n\ncontent-type:{CONTENT_TYPE}\nhost:{host}\nx-amz-date:"
        self._cache: tuple[str, str, bytes] | None = None

    def signing_key(self, secret_key: str, day: str) -> bytes:
        """The derived key for ``day`` (``YYYYMMDD``), cached until the day or secret changes."""
        cached = self._cache
        if cached is not None and cached[0] == day and cached[1] == secret_key:
            return cached[2]
        key = _hmac(("AWS4" + secret_key).encode("utf-8"), day)
        for part in self._region_scope.split("/"):
            key = _hmac(key, part)
        self._cache = (day, secret_key, key)
        return key

    def authorization(self, credentials: Credentials, date: str, target: str, body: bytes) -> str:
        """The ``Authorization`` header for a request sent at ``date`` (an ``X-Amz-Date``)."""
        token = credentials.token
        if token:
            headers = f"{date}\nx-amz-security-token:{token}\nx-amz-target:{target}\n\n"
            signed = "content-type;host;x-amz-date;x-amz-security-token;x-amz-target"
        else:
            headers = f"{date}\nx-amz-target:{target}\n\n"
            signed = "content-type;host;x-amz-date;x-amz-target"
        canonical = f"{self._prefix}{headers}{signed}\n{hashlib.sha256(body).hexdigest()}"
        day = date[:8]
        scope = f"{day}/{self._region_scope}"
        digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
        to_sign = f"{ALGORITHM}\n{date}\n{scope}\n{digest}"
        key = self.signing_key(credentials.secret_key, day)
        signature = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
        return (
            f"{ALGORITHM} Credential={credentials.access_key}/{scope}, "
            f"SignedHeaders={signed}, Signature={signature}"
        )
