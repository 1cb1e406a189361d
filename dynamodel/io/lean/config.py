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

import os
import platform
import re
import ssl
import sys
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
    session: Any = field(repr=False)  # the botocore session (None: created on first use)
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


@dataclass(frozen=True)
class DeferredConfig:
    """A ``botocore.config.Config`` built on first use (by ``factory``).

    Its connection settings must be botocore's defaults, with ``total_max_attempts`` of
    ``retries`` (the connection resends) given here; the control-plane client gets the built
    config. `dynamodel.Connection` passes one so a lean client need not import botocore.
    """

    factory: Any = field(repr=False)
    total_max_attempts: int = DEFAULT_CONNECTION_RETRIES + 1

    def build(self) -> Any:
        """The botocore ``Config``."""
        return self.factory()


def built_config(config: Any) -> Any:
    """``config``, with a `DeferredConfig` built."""
    return config.build() if isinstance(config, DeferredConfig) else config


@dataclass(frozen=True)
class StaticCredentials:
    """Fixed credentials resolved without botocore (the attributes sigv4 and boto3 use)."""

    access_key: str
    secret_key: str
    token: str | None = None
    method: str = "env"

    def get_frozen_credentials(self) -> Any:
        from dynamodel.io.lean.sigv4 import Credentials

        return Credentials(self.access_key, self.secret_key, self.token)


#: regions of the standard ``aws`` partition (botocore's partitions.json ``regionRegex``)
_AWS_REGION = re.compile(r"^(us|eu|ap|sa|ca|me|af|il|mx)\-\w+\-\d+$")
#: settings the fast path does not reproduce: any of them set means botocore decides
_FALLBACK_ENV = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
    "AWS_ACCOUNT_ID",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE",
    "AWS_DATA_PATH",
)
#: botocore's defaults for ``Config()``
_CONNECT_TIMEOUT = 60.0
_READ_TIMEOUT = 60.0
_MAX_POOL_CONNECTIONS = 10


def _botocore_dir() -> str | None:
    import importlib.util

    spec = importlib.util.find_spec("botocore")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    return locations[0] if locations else None


def _botocore_version(directory: str) -> str | None:
    try:
        with open(os.path.join(directory, "__init__.py"), encoding="utf-8") as f:
            match = re.search(r"^__version__ = ['\"]([^'\"]+)['\"]", f.read(), re.MULTILINE)
    except OSError:
        return None
    return match.group(1) if match else None


def _default_cafile(directory: str) -> str | None:
    """What ``botocore.httpsession.get_cert_path(True)`` gives: certifi's, else botocore's."""
    import importlib.util

    if importlib.util.find_spec("certifi") is not None:
        import certifi

        return str(certifi.where())
    path = os.path.join(directory, "cacert.pem")
    return path if os.path.isfile(path) else None


def _has_proxy_env(env: Any) -> bool:
    return any(name.lower().endswith("_proxy") for name in env)


def resolve_fast(
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
) -> Resolved | None:
    """`resolve` without botocore when the answer is unambiguous, else None (see the docs)."""
    env = os.environ
    if botocore_session is not None or profile_name is not None:
        return None
    if config is not None and not isinstance(config, DeferredConfig):
        return None
    if sys.platform in ("darwin", "win32") or _has_proxy_env(env):
        return None  # system proxy settings: botocore (urllib) decides
    if any(name in env for name in _FALLBACK_ENV):
        return None
    home = os.path.expanduser("~")
    if os.path.exists(os.path.join(home, ".aws", "config")) or os.path.exists(
        os.path.join(home, ".aws", "credentials")
    ):
        return None
    if aws_access_key_id is not None or aws_secret_access_key is not None:
        if not aws_access_key_id or not aws_secret_access_key:
            return None
        credentials = StaticCredentials(
            aws_access_key_id, aws_secret_access_key, aws_session_token, "explicit"
        )
    else:
        access_key = env.get("AWS_ACCESS_KEY_ID")
        secret_key = env.get("AWS_SECRET_ACCESS_KEY")
        token = env.get("AWS_SESSION_TOKEN")
        if not access_key or not secret_key or token == "":
            return None
        credentials = StaticCredentials(access_key, secret_key, token, "env")
    region = region_name or env.get("AWS_DEFAULT_REGION")
    if not region:
        return None  # botocore raises NoRegionError (or finds one elsewhere)
    if endpoint_url is None:
        ignore = env.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        if ignore is not None and ignore.lower() not in ("true", "false"):
            return None
        if ignore is None or ignore.lower() == "false":
            configured = [env.get("AWS_ENDPOINT_URL_DYNAMODB"), env.get("AWS_ENDPOINT_URL")]
            if "" in configured:
                return None
            endpoint_url = configured[0] or configured[1]
    if endpoint_url is None:
        if not _AWS_REGION.match(region):
            return None
        endpoint_url = f"https://dynamodb.{region}.amazonaws.com"
    parts = _check_endpoint(endpoint_url)
    if parts.path not in ("", "/"):
        return None  # botocore normalizes other paths
    directory = _botocore_dir()
    if directory is None:
        return None
    version = _botocore_version(directory)
    if version is None:
        return None
    tls = parts.scheme == "https"
    ssl_context = None
    if tls:
        if verify is False:
            ssl_context = ssl.create_default_context()
            ssl_context.check_hostname = False
            ssl_context.verify_mode = ssl.CERT_NONE
        else:
            cafile = verify if isinstance(verify, str) else env.get("AWS_CA_BUNDLE")
            if cafile == "":
                return None
            if cafile is None:
                cafile = _default_cafile(directory)
                if cafile is None:
                    return None
            ssl_context = ssl.create_default_context(cafile=cafile)
    target = Target(
        host=parts.hostname,
        port=parts.port or (443 if tls else 80),
        ssl_context=ssl_context,
        proxy=None,
        connect_timeout=_CONNECT_TIMEOUT,
        read_timeout=_READ_TIMEOUT,
        max_idle=_MAX_POOL_CONNECTIONS,
    )
    control_kwargs: dict[str, Any] = {
        "region_name": region,
        "aws_access_key_id": aws_access_key_id,
        "aws_secret_access_key": aws_secret_access_key,
        "aws_session_token": aws_session_token,
        "config": config,
        "verify": verify,
        "endpoint_url": endpoint_url,
    }
    return Resolved(
        endpoint_url=endpoint_url,
        region=region,
        host_header=host_header(endpoint_url),
        canonical_path="/",
        request_target=parts.path or "/",
        target=target,
        credentials=credentials,
        connection_retries=(
            max(0, config.total_max_attempts - 1)
            if config is not None
            else DEFAULT_CONNECTION_RETRIES
        ),
        user_agent=_user_agent(version, None),
        session=None,
        control_kwargs=control_kwargs,
    )


def _user_agent(botocore_version: str, extra: str | None) -> str:
    from dynamodel._version import VERSION

    user_agent = (
        f"dynamodel/{VERSION} (lean) Python/{platform.python_version()} botocore/{botocore_version}"
    )
    if extra:
        user_agent += f" {extra}"
    return user_agent


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
    """Resolve endpoint, region, credentials, TLS, proxy and limits (see the module doc).

    Without botocore (`resolve_fast`) when the answer is unambiguous, else with its session.
    """
    options: dict[str, Any] = {
        "endpoint_url": endpoint_url,
        "region_name": region_name,
        "aws_access_key_id": aws_access_key_id,
        "aws_secret_access_key": aws_secret_access_key,
        "aws_session_token": aws_session_token,
        "profile_name": profile_name,
        "botocore_session": botocore_session,
        "config": config,
        "verify": verify,
    }
    return resolve_fast(**options) or resolve_slow(**options)


def resolve_slow(
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
    """The resolution through a botocore session (see the module doc)."""
    import botocore
    import botocore.session
    from botocore.config import Config
    from botocore.configprovider import ConfiguredEndpointProvider
    from botocore.exceptions import NoRegionError
    from botocore.utils import get_environ_proxies, normalize_url_path

    session = botocore_session or botocore.session.Session(profile=profile_name)
    config = built_config(config) if config is not None else Config()
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
    user_agent = _user_agent(botocore.__version__, getattr(config, "user_agent_extra", None))
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
