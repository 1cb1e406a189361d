"""What the sync and async lean clients share: settings, signing, errors, the control plane.

Data-plane operations (`dynamodel.io.lean.spec.DATA_OPERATIONS`) are built, signed, sent and parsed
by the lean transport. Every other DynamoDB operation (``create_table``, ``describe_table``,
``update_time_to_live``, ``list_tables``, ...) goes through a botocore client created on first
use with the same session, endpoint, region, credentials and config, so their responses (which
hold timestamps and other typed fields) are exactly boto3's. Their errors are re-raised as the
lean client's own exception classes, so ``client.exceptions.<Code>`` catches errors of both
paths.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any

from dynamodel.io.lean.config import Resolved, built_config, resolve
from dynamodel.io.lean.errors import lean_exceptions
from dynamodel.io.lean.http11 import ProtocolError
from dynamodel.io.lean.net import (
    ConnectFailed,
    ConnectionLost,
    ConnectTimeout,
    ProxyFailed,
    ReadTimeout,
    TLSFailed,
    TransportError,
)
from dynamodel.io.lean.protocol import ChecksumMismatch, Protocol
from dynamodel.io.lean.sigv4 import Signer

#: errors a lean client resends (as botocore's standard retry mode does), up to its budget
RESENDABLE = (TransportError, ProtocolError, ChecksumMismatch)


def resend_delay(retry: int) -> float:
    """Full-jitter wait before resend number ``retry`` after a connection-level failure."""
    return random.uniform(0.0, min(1.0, 0.05 * 2**retry))


class LeanMeta:
    """The subset of boto3's ``client.meta`` a lean client offers."""

    def __init__(self, resolved: Resolved, session: Callable[[], Any]) -> None:
        self.endpoint_url = resolved.endpoint_url
        self.region_name = resolved.region
        self._config = resolved.control_kwargs.get("config")
        self._session = session

    @property
    def config(self) -> Any:
        """The botocore ``Config`` the client was given (built on first use if deferred)."""
        self._config = built_config(self._config)
        return self._config

    @property
    def service_model(self) -> Any:
        """botocore's DynamoDB service model (loaded on first use)."""
        return self._session().get_service_model("dynamodb")

    def __repr__(self) -> str:
        return f"LeanMeta(endpoint_url={self.endpoint_url!r}, region_name={self.region_name!r})"


class LeanBase:
    """Settings, request building and the control-plane client of a lean client.

    Args:
        endpoint_url: where to send requests (default: boto3's resolution, see
            `dynamodel.io.lean.config`).
        region_name: the signing region (default: botocore's configuration).
        aws_access_key_id: explicit credentials (default: botocore's credential chain).
        aws_secret_access_key: explicit credentials.
        aws_session_token: explicit credentials.
        profile_name: the profile of a new botocore session.
        botocore_session: a botocore session to resolve configuration and credentials with.
        config: a ``botocore.config.Config``: timeouts, ``max_pool_connections``, proxies,
            ``retries`` (``total_max_attempts`` bounds resends after connection failures);
            also used by the control-plane client.
        verify: TLS verification: False, or a CA bundle path (default: as boto3).
    """

    def __init__(
        self,
        *,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        profile_name: str | None = None,
        botocore_session: Any = None,
        config: Any = None,
        verify: bool | str | None = None,
    ) -> None:
        resolved = resolve(
            endpoint_url=endpoint_url,
            region_name=region_name,
            aws_access_key_id=aws_access_key_id,
            aws_secret_access_key=aws_secret_access_key,
            aws_session_token=aws_session_token,
            profile_name=profile_name,
            botocore_session=botocore_session,
            config=config,
            verify=verify,
        )
        self._resolved = resolved
        self._session: Any = resolved.session
        self._session_lock = threading.Lock()
        self.meta = LeanMeta(resolved, self._botocore_session)
        proxy = resolved.target.proxy
        self._protocol = Protocol(
            Signer(resolved.region, resolved.host_header, resolved.canonical_path),
            resolved.request_target,
            resolved.host_header,
            resolved.user_agent,
            self._frozen_credentials,
            proxy.authorization if proxy is not None and not resolved.target.tunnel else None,
        )
        self._resends = resolved.connection_retries
        self._control: Any = None
        self._control_lock = threading.Lock()
        self._setup()

    def _setup(self) -> None:
        """Subclasses create their connection pools here."""

    @property
    def exceptions(self) -> Any:
        """The modeled ``ClientError`` subclasses (botocore is imported on first use)."""
        return lean_exceptions()

    def _botocore_session(self) -> Any:
        """The botocore session (created on first use when configuration skipped botocore)."""
        if self._session is None:
            with self._session_lock:
                if self._session is None:
                    import botocore.session

                    self._session = botocore.session.Session()
        return self._session

    def __repr__(self) -> str:
        meta = self.meta
        where = f"endpoint_url={meta.endpoint_url!r}, region={meta.region_name!r}"
        return f"{type(self).__name__}({where})"

    def _frozen_credentials(self) -> Any:
        credentials = self._resolved.credentials
        if credentials is None:
            from botocore.exceptions import NoCredentialsError

            raise NoCredentialsError()
        return credentials.get_frozen_credentials()

    def _transport_error(self, exc: Exception) -> Exception:
        """The botocore exception boto3 raises for a transport failure."""
        from botocore import exceptions as bx

        url = self._resolved.endpoint_url
        error: Exception
        if isinstance(exc, ConnectTimeout):
            error = bx.ConnectTimeoutError(endpoint_url=url, error=str(exc))
        elif isinstance(exc, ReadTimeout):
            error = bx.ReadTimeoutError(endpoint_url=url, error=str(exc))
        elif isinstance(exc, ConnectFailed):
            error = bx.EndpointConnectionError(endpoint_url=url, error=str(exc))
        elif isinstance(exc, ConnectionLost):
            error = bx.ConnectionClosedError(endpoint_url=url, error=str(exc))
        elif isinstance(exc, TLSFailed):
            error = bx.SSLError(endpoint_url=url, error=str(exc))
        elif isinstance(exc, ProxyFailed):
            proxy = self._resolved.target.proxy
            error = bx.ProxyConnectionError(proxy_url=proxy.url if proxy else "", error=str(exc))
        elif isinstance(exc, ChecksumMismatch):
            error = bx.ChecksumError(
                checksum_type="crc32",
                expected_checksum=exc.expected,
                actual_checksum=exc.actual,
            )
        else:
            error = bx.HTTPClientError(error=str(exc))
        return error

    # -- control plane ----------------------------------------------------------------------

    def control_client(self) -> Any:
        """The botocore client used for operations other than the data plane (created once)."""
        if self._control is None:
            with self._control_lock:
                if self._control is None:
                    kwargs = dict(self._resolved.control_kwargs)
                    kwargs["config"] = built_config(kwargs.get("config"))
                    self._control = self._botocore_session().create_client("dynamodb", **kwargs)
        return self._control

    def _call_control(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        try:
            response: dict[str, Any] = getattr(self.control_client(), method)(**params)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            cls = self.exceptions.from_code(code)
            if type(exc) is cls:
                raise
            raise cls(exc.response, exc.operation_name).with_traceback(exc.__traceback__) from None
        return response

    def _close_control(self) -> None:
        control, self._control = self._control, None
        if control is not None:
            control.close()
