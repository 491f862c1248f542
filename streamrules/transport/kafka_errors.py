"""Kafka failures as one clear line naming the cause (transport layer, beside the flow).

aiokafka reports a failed connection as "Unable to bootstrap from [...]" and an
authorization failure as the bare Kafka error; what an operator needs is the cause and
the fix: a wrong password, a CA file that does not hold the broker's CA, a listener that
speaks another protocol, a missing ACL and the one to add. This module turns those
failures into :class:`TransportError` messages that say so.

Secrets: a message here never contains a password or key material; SASL user names,
file names, addresses and ACLs are named, since they are what needs fixing.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Mapping
from typing import Any

from aiokafka.conn import create_conn
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
    UnsupportedSaslMechanismError,
)

from streamrules.errors import TransportError

__all__ = ["authorization_error", "connect_error", "diagnose", "principal", "refused_topics"]

log = logging.getLogger(__name__)

_ACLS_HINT = "streamrules topics apply --acls {principal} creates the ACLs `run` needs"


def principal(options: Mapping[str, Any]) -> str:
    """The principal the broker sees for these client options (as ACLs name it)."""
    user = options.get("sasl_plain_username")
    if str(options.get("security_protocol", "PLAINTEXT")).startswith("SASL") and user:
        return f"User:{user}"
    return "User:ANONYMOUS"


def _hosts(bootstrap: str) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for part in bootstrap.split(","):
        host, _, port = part.strip().rpartition(":")
        if host and port.isdigit():
            out.append((host.strip("[]"), int(port)))
    return out


def _explain_connect(
    exc: BaseException, host: str, port: int, options: Mapping[str, Any], cafile: str | None
) -> str | None:
    """What a failed connection attempt says about the cause; None when it says nothing."""
    where = f"{host}:{port}"
    protocol = str(options.get("security_protocol", "PLAINTEXT"))
    mechanism = options.get("sasl_mechanism")
    if isinstance(exc, SaslAuthenticationFailed):
        user = options.get("sasl_plain_username")
        return (
            f"SASL authentication failed at {where} for user {user!r} ({mechanism}): wrong "
            "user name or password (sasl_username, sasl_password)"
        )
    if isinstance(exc, UnsupportedSaslMechanismError):
        return f"the broker at {where} does not accept SASL mechanism {mechanism!r}: {exc}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"TLS: the certificate of {where} is not trusted ({exc.verify_message}): "
            + (f"ssl_cafile {cafile}" if cafile else "the system's CA bundle (no ssl_cafile)")
            + " does not hold the CA that signed it, or the certificate does not name this host"
        )
    if isinstance(exc, ssl.SSLError):
        return (
            f"TLS handshake with {where} failed ({exc.reason or exc}): does this listener "
            f"speak TLS? (security_protocol is {protocol})"
        )
    if isinstance(exc, ConnectionRefusedError):
        return f"nothing listens at {where} (connection refused)"
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return f"{where} did not answer in time"
    if isinstance(exc, KafkaError | OSError) and protocol in ("PLAINTEXT", "SASL_PLAINTEXT"):
        return (
            f"the connection to {where} failed ({exc}): if that listener expects TLS, set "
            "security_protocol SSL or SASL_SSL"
        )
    if isinstance(exc, OSError):
        return f"cannot connect to {where}: {exc.strerror or exc}"
    return None


async def diagnose(
    bootstrap: str, options: Mapping[str, Any], cafile: str | None = None
) -> str | None:
    """Connect to each bootstrap server once, as the clients do; the first cause found.

    Called after a client failed to start, to name what the client only logged.
    """
    conn_options = {
        k: v
        for k, v in options.items()
        if k
        in (
            "security_protocol",
            "ssl_context",
            "sasl_mechanism",
            "sasl_plain_username",
            "sasl_plain_password",
        )
    }
    for host, port in _hosts(bootstrap):
        try:
            conn = await create_conn(
                host,
                port,
                client_id="streamrules-diagnose",
                request_timeout_ms=10_000,
                **conn_options,
            )
        except (TimeoutError, KafkaError, OSError) as exc:
            found = _explain_connect(exc, host, port, options, cafile)
            if found is not None:
                return found
            continue
        conn.close()
    return None


async def connect_error(
    bootstrap: str,
    options: Mapping[str, Any],
    exc: BaseException,
    *,
    cafile: str | None = None,
    lead: str = "cannot connect to Kafka",
) -> TransportError:
    """The error for a client that could not start: the diagnosed cause, else ``exc``."""
    if isinstance(exc, KafkaError) and (found := authorization_error(exc, options, "connect")):
        return found
    try:
        cause = await diagnose(bootstrap, options, cafile)
    except Exception:  # the diagnosis is a courtesy: never hide the original failure
        log.debug("diagnosing the connection failed", exc_info=True)
        cause = None
    if cause is not None:
        return TransportError(f"{lead} at {bootstrap}: {cause}")
    return TransportError(f"{lead} at {bootstrap}: {exc}", retriable=True)


def refused_topics(exc: BaseException) -> list[str]:
    """The topic names a TopicAuthorizationFailedError carries (a name or a set of them)."""
    names: list[str] = []
    for arg in exc.args:
        if isinstance(arg, str):
            names.append(arg)
        elif isinstance(arg, set | frozenset | list | tuple):
            names.extend(str(a) for a in arg)
    return sorted(set(names))


def authorization_error(
    exc: BaseException,
    options: Mapping[str, Any] | None,
    doing: str,
    needed: str | None = None,
) -> TransportError | None:
    """A clear error for an authorization failure, naming the principal and the ACL.

    ``doing`` says what was refused ("read topic 'orders'"); ``needed`` the ACL that
    allows it ("READ on topic 'orders'"), when the caller knows. ``options`` (the client's)
    name the principal; None leaves it out. None when ``exc`` is not an authorization
    failure.
    """
    if not isinstance(
        exc,
        TopicAuthorizationFailedError
        | GroupAuthorizationFailedError
        | TransactionalIdAuthorizationFailed
        | ClusterAuthorizationFailedError,
    ):
        return None
    who = principal(options) if options is not None else None
    acl = f": it needs ACL {needed}" if needed else ""
    return TransportError(
        f"not authorized to {doing}" + (f" as {who}" if who else "") + f" ({type(exc).__name__})"
        f"{acl} ({_ACLS_HINT.format(principal=who or 'PRINCIPAL')})"
    )
