"""Where a lean client sends requests and as whom, resolved with boto3's own conventions.

Region: the explicit argument, else botocore's configuration (``AWS_DEFAULT_REGION``, the
profile). Endpoint: the explicit argument, else a configured endpoint
(``AWS_ENDPOINT_URL_DYNAMODB``, ``AWS_ENDPOINT_URL``, the config file's ``endpoint_url``, unless
``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS``), else the endpoint botocore's rules give for the region.
Credentials: explicit keys, else botocore's credential chain (env, profiles, SSO, container and
instance roles; refreshable credentials are refreshed per request). TLS trust: ``verify``, else
``AWS_CA_BUNDLE`` / ``ca_bundle``, else botocore's bundle. Proxies: ``Config(proxies=...)``,
else the ``HTTP(S)_PROXY`` / ``NO_PROXY`` environment. Timeouts, pool size and connection
retries come from a ``botocore.config.Config`` when one is given.
"""

from __future__ import annotations

import platform
import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from dynamodel.io.lean.net import Proxy, Target

#: connection-level retries when the config does not say (botocore's standard mode: 3 attempts)
DEFAULT_CONNECTION_RETRIES = 2


@dataclass(frozen=True)
class Resolved:
    """Everything a lean client needs to send requests."""

    endpoint_url: str
    region: str
    host_header: str  # the Host header, as SigV4 signs it
    canonical_path: str  # the path as SigV4 signs it
    request_target: str  # the request line's target
    target: Target
    credentials: Any  # botocore credentials (or None: requests raise NoCredentialsError)
    connection_retries: int
    user_agent: str
    session: Any = field(repr=False)  # the botocore session (for control-plane calls)
    control_kwargs: dict[str, Any] = field(repr=False, default_factory=dict)


def host_header(url: str) -> str:
    """The ``Host`` value SigV4 signs: lower-case host, the port unless it is the default."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != {"http": 80, "https": 443}.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


def _check_endpoint(url: str) -> Any:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"Invalid endpoint: {url}")
    if parts.query or parts.fragment:
        raise ValueError(f"Invalid endpoint: {url} (the lean transport takes no query or fragment)")
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ValueError(f"Invalid endpoint: {url}") from None
    return parts


def _connection_retries(config: Any) -> int:
    retries = getattr(config, "retries", None) or {}
    if "total_max_attempts" in retries:
        return max(0, int(retries["total_max_attempts"]) - 1)
    if "max_attempts" in retries:
        return max(0, int(retries["max_attempts"]))
    return DEFAULT_CONNECTION_RETRIES


def _ssl_context(session: Any, verify: bool | str | None) -> ssl.SSLContext:
    from botocore.httpsession import get_cert_path

    if verify is None:
        verify = session.get_config_variable("ca_bundle")
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=get_cert_path(True if verify is None else verify))


def _credentials(
    session: Any, access_key: str | None, secret_key: str | None, token: str | None
) -> Any:
    from botocore.credentials import Credentials
    from botocore.exceptions import PartialCredentialsError

    if access_key is not None and secret_key is not None:
        return Credentials(access_key, secret_key, token)
    if access_key is not None or secret_key is not None:
        missing = "aws_secret_access_key" if secret_key is None else "aws_access_key_id"
        raise PartialCredentialsError(provider="explicit", cred_var=missing)
    return session.get_credentials()


def resolve(
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
) -> Resolved:
    """Resolve endpoint, region, credentials, TLS, proxy and limits (see the module doc)."""
    import botocore
    import botocore.session
    from botocore.config import Config
    from botocore.configprovider import ConfiguredEndpointProvider
    from botocore.exceptions import NoRegionError
    from botocore.utils import get_environ_proxies, normalize_url_path

    session = botocore_session or botocore.session.Session(profile=profile_name)
    config = config if config is not None else Config()
    region = region_name or session.get_config_variable("region")
    if not region:
        raise NoRegionError()
    control_kwargs: dict[str, Any] = {
        "region_name": region,
        "aws_access_key_id": aws_access_key_id,
        "aws_secret_access_key": aws_secret_access_key,
        "aws_session_token": aws_session_token,
        "config": config,
        "verify": verify,
    }
    if endpoint_url is None and not (
        getattr(config, "ignore_configured_endpoint_urls", None)
        or session.get_config_variable("ignore_configured_endpoint_urls")
    ):
        endpoint_url = ConfiguredEndpointProvider(
            full_config=session.full_config,
            scoped_config=session.get_scoped_config(),
            client_name="dynamodb",
        ).provide()
    if endpoint_url is None:  # botocore's endpoint rules for the region (FIPS, partitions...)
        endpoint_url = str(session.create_client("dynamodb", **control_kwargs).meta.endpoint_url)
    control_kwargs["endpoint_url"] = endpoint_url
    parts = _check_endpoint(endpoint_url)
    tls = parts.scheme == "https"
    proxies = getattr(config, "proxies", None) or get_environ_proxies(endpoint_url)
    proxy_url = proxies.get(parts.scheme)
    proxy = Proxy.parse(proxy_url) if proxy_url else None
    target = Target(
        host=parts.hostname,
        port=parts.port or (443 if tls else 80),
        ssl_context=_ssl_context(session, verify) if tls else None,
        proxy=proxy,
        connect_timeout=float(config.connect_timeout),
        read_timeout=float(config.read_timeout),
        max_idle=int(config.max_pool_connections),
    )
    path = parts.path or "/"
    canonical_path = quote(normalize_url_path(path), safe="/~")
    request_target = path
    if proxy is not None and not tls:
        request_target = f"{parts.scheme}://{parts.netloc}{path}"
    from dynamodel._version import VERSION as __version__

    user_agent = (
        f"dynamodel/{__version__} (lean) Python/{platform.python_version()} "
        f"botocore/{botocore.__version__}"
    )
    if getattr(config, "user_agent_extra", None):
        user_agent += f" {config.user_agent_extra}"
    return Resolved(
        endpoint_url=endpoint_url,
        region=region,
        host_header=host_header(endpoint_url),
        canonical_path=canonical_path,
        request_target=request_target,
        target=target,
        credentials=_credentials(
            session, aws_access_key_id, aws_secret_access_key, aws_session_token
        ),
        connection_retries=_connection_retries(config),
        user_agent=user_agent,
        session=session,
        control_kwargs=control_kwargs,
    )
