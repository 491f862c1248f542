"""Kafka administration: broker readiness and topics (transport layer, beside the flow).

The only place besides ``transport/kafka.py`` that imports aiokafka. Used by the local
broker manager (is the broker up?), ``streamrules topics`` (create topics, add partitions,
update configs, describe; ACLs with ``--acls``) and the integration-test fixtures
(private topics per test).

aiokafka's admin client returns raw protocol responses whose shape varies with the
negotiated API version; this module turns them into :class:`streamrules.topics.TopicState`
and raises :class:`TransportError` naming the topic and Kafka's error instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, for_code
from aiokafka.helpers import create_ssl_context
from aiokafka.protocol.admin import CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest

from streamrules.acls import Acl
from streamrules.config import Settings
from streamrules.errors import TransportError
from streamrules.topics import TopicPlan, TopicSpec, TopicState
from streamrules.transport import kafka_errors

log = logging.getLogger(__name__)

# DescribeConfigs v1+ `config_source`: 1 = DYNAMIC_TOPIC_CONFIG (set on the topic itself).
_SOURCE_DYNAMIC_TOPIC = 1
_ERROR_TOPIC_ALREADY_EXISTS = 36
_ERROR_UNKNOWN_TOPIC = 3
_ERROR_TOPIC_AUTHORIZATION = 29
# Topic, group, cluster, transactional id authorization failed: the principal lacks an ACL.
_AUTHORIZATION_CODES = {29, 30, 31, 53}


@dataclass(frozen=True, slots=True)
class SslFiles:
    """CA bundle, client certificate and key for SSL / SASL_SSL clusters."""

    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None


def settings_options(settings: Settings) -> tuple[str, dict[str, Any]]:
    """(bootstrap servers, options for the functions here) from the service's settings."""
    options = settings.kafka_options()
    bootstrap: str = options.pop("bootstrap_servers")
    cafile, certfile, keyfile = settings.ssl_files()
    if settings.security_protocol in ("SSL", "SASL_SSL") or any((cafile, certfile, keyfile)):
        # TLS without files verifies against the system's CA bundle.
        options["ssl"] = SslFiles(cafile, certfile, keyfile)
    return bootstrap, options


@asynccontextmanager
async def admin_client(
    bootstrap_servers: str,
    *,
    request_timeout_ms: int = 30_000,
    ssl: SslFiles | None = None,
    **client_options: Any,
) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client, closed on exit; connection failures become TransportError.

    ``client_options`` go to ``AIOKafkaAdminClient`` (``security_protocol``,
    ``sasl_mechanism``, ``sasl_plain_username`` ... as ``Settings.kafka_options()`` gives them).
    """
    if ssl is not None:
        client_options["ssl_context"] = _ssl_context(ssl)
    client_options.setdefault("client_id", "streamrules-admin")
    client = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        request_timeout_ms=request_timeout_ms,
        **client_options,
    )
    try:
        await client.start()
    except (KafkaError, OSError) as exc:
        await _close_quietly(client)
        raise await kafka_errors.connect_error(
            bootstrap_servers,
            client_options,
            exc,
            cafile=ssl.cafile if ssl else None,
            lead="cannot reach Kafka",
        ) from exc
    try:
        yield client
    finally:
        await _close_quietly(client)


def _ssl_context(files: SslFiles) -> Any:
    try:
        return create_ssl_context(
            cafile=files.cafile, certfile=files.certfile, keyfile=files.keyfile
        )
    except (OSError, ValueError) as exc:
        # e.g. a CA file that holds no certificate: name the files, not the key material.
        raise TransportError(
            f"cannot use the TLS files (ssl_cafile {files.cafile}, ssl_certfile "
            f"{files.certfile}, ssl_keyfile {files.keyfile}): {exc}"
        ) from None


async def topic_visibility(admin: AIOKafkaAdminClient, names: Sequence[str]) -> dict[str, str]:
    """For each topic: "ok", "missing", or "refused" (it does not exist or this principal
    may not describe it: Kafka does not tell unauthorized clients which)."""
    out = dict.fromkeys(names, "missing")
    for topic in await admin.describe_topics(list(names)):
        code = topic.get("error_code", 0) or 0
        if topic["topic"] in out:
            out[topic["topic"]] = (
                "ok"
                if code == 0
                else "refused"
                if code == _ERROR_TOPIC_AUTHORIZATION
                else "missing"
            )
    return out


async def _close_quietly(client: AIOKafkaAdminClient) -> None:
    try:
        await client.close()
    except Exception:  # closing a half-started client may raise; nothing to do about it
        log.debug("closing the admin client failed", exc_info=True)


async def wait_for_broker(
    bootstrap_servers: str, *, timeout_s: float = 30.0, **options: Any
) -> list[int]:
    """Wait until a metadata request lists at least one broker; return the broker ids.

    ``options`` are those of :func:`admin_client` (security settings, ``ssl``).
    """
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            async with admin_client(
                bootstrap_servers, request_timeout_ms=5_000, **options
            ) as admin:
                cluster = await admin.describe_cluster()
                brokers = [int(b["node_id"]) for b in cluster.get("brokers", [])]
                if brokers:
                    return brokers
        except (TimeoutError, TransportError, KafkaError, OSError) as exc:
            last = exc
        await asyncio.sleep(0.25)
    raise TransportError(
        f"Kafka at {bootstrap_servers} did not answer a metadata request within "
        f"{timeout_s:.0f} s" + (f" (last error: {last})" if last else ""),
        retriable=True,
    )


async def describe_topics(
    bootstrap_servers: str, names: Iterable[str] | None = None, **options: Any
) -> dict[str, TopicState]:
    """The current state of the named topics (all non-internal ones when ``names`` is None).

    Topics that do not exist are absent from the result.
    """
    async with admin_client(bootstrap_servers, **options) as admin:
        return await _describe(admin, None if names is None else list(names))


async def _describe(admin: AIOKafkaAdminClient, names: list[str] | None) -> dict[str, TopicState]:
    if names is not None and not names:
        return {}
    existing = set(await admin.list_topics())
    wanted = sorted(existing if names is None else existing.intersection(names))
    wanted = [n for n in wanted if not n.startswith("__")] if names is None else wanted
    if not wanted:
        return {}
    meta = await admin.describe_topics(wanted)
    partitions: dict[str, list[dict[str, Any]]] = {}
    for topic in meta:
        if topic.get("error_code", 0) not in (0, None):
            continue  # deleted meanwhile
        partitions[topic["topic"]] = list(topic.get("partitions", []))
    resources = [ConfigResource(ConfigResourceType.TOPIC, n) for n in partitions]
    responses = await admin.describe_configs(resources) if resources else []
    configs: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
    for response in responses:
        for resource in response.to_object()["resources"]:
            name = resource["resource_name"]
            if resource["error_code"] == _ERROR_UNKNOWN_TOPIC:
                partitions.pop(name, None)  # deleted since it was listed
                continue
            _raise_for(
                resource["error_code"],
                f"describe configs of topic {name!r}",
                resource.get("error_message"),
            )
            effective: dict[str, str] = {}
            dynamic: dict[str, str] = {}
            for entry in resource["config_entries"]:
                key = entry["config_names"]
                value = entry["config_value"]
                if value is None:
                    continue
                effective[key] = value
                source = entry.get("config_source")
                is_dynamic = (
                    source == _SOURCE_DYNAMIC_TOPIC
                    if source is not None
                    else not entry.get("is_default", True)
                )
                if is_dynamic:
                    dynamic[key] = value
            configs[name] = (effective, dynamic)
    result: dict[str, TopicState] = {}
    for name, parts in partitions.items():
        rf = max((len(p.get("replicas", [])) for p in parts), default=0)
        effective, dynamic = configs.get(name, ({}, {}))
        leaders = tuple(
            int(p.get("leader", -1)) for p in sorted(parts, key=lambda p: p["partition"])
        )
        result[name] = TopicState(
            name=name,
            partitions=len(parts),
            replication_factor=rf,
            configs=effective,
            dynamic_configs=dynamic,
            leaders=leaders,
        )
    return result


def _raise_for(code: int, what: str, message: str | None = None) -> None:
    if code:
        error = for_code(code)
        detail = f": {message}" if message else ""
        if code in _AUTHORIZATION_CODES:
            detail += " (the principal lacks the ACL for this: use an administrator's settings)"
        raise TransportError(f"cannot {what}: {error.__name__}{detail}", retriable=error.retriable)


async def create_topics(
    bootstrap_servers: str,
    specs: Sequence[TopicSpec],
    *,
    wait_s: float = 30.0,
    **options: Any,
) -> list[str]:
    """Create the topics that do not exist yet; return the names created.

    Waits until every partition of every created topic has a leader, so that a producer
    started right after does not meet NOT_LEADER errors.
    """
    async with admin_client(bootstrap_servers, **options) as admin:
        created = await _create(admin, specs)
        await _wait_for_leaders(admin, [s.name for s in specs], wait_s)
        return created


async def _create(admin: AIOKafkaAdminClient, specs: Sequence[TopicSpec]) -> list[str]:
    if not specs:
        return []
    new = [
        NewTopic(
            s.name,
            num_partitions=s.partitions,
            replication_factor=s.replication_factor,
            topic_configs=dict(s.configs),
        )
        for s in specs
    ]
    response = await admin.create_topics(new)
    created: list[str] = []
    for entry in response.to_object()["topic_errors"]:
        name, code = entry["topic"], entry["error_code"]
        if code == _ERROR_TOPIC_ALREADY_EXISTS:
            continue
        _raise_for(code, f"create topic {name!r}", entry.get("error_message"))
        created.append(name)
    return created


async def _wait_for_leaders(
    admin: AIOKafkaAdminClient, names: Sequence[str], wait_s: float
) -> None:
    deadline = time.monotonic() + wait_s
    while True:
        state = await _describe(admin, list(names))
        missing = [n for n in names if n not in state]
        leaderless = [n for n, s in state.items() if any(leader < 0 for leader in s.leaders)]
        if not missing and not leaderless:
            return
        if time.monotonic() >= deadline:
            raise TransportError(
                f"topics not ready after {wait_s:.0f} s: "
                f"missing {missing or 'none'}, without leader {leaderless or 'none'}",
                retriable=True,
            )
        await asyncio.sleep(0.1)


async def wait_for_topics(
    bootstrap_servers: str, names: Sequence[str], *, wait_s: float = 30.0, **options: Any
) -> None:
    """Wait until the topics exist and every partition has a leader."""
    async with admin_client(bootstrap_servers, **options) as admin:
        await _wait_for_leaders(admin, names, wait_s)


async def add_partitions(bootstrap_servers: str, totals: Mapping[str, int], **options: Any) -> None:
    """Grow topics to the given total partition counts (Kafka cannot shrink them)."""
    if not totals:
        return
    async with admin_client(bootstrap_servers, **options) as admin:
        await _add_partitions(admin, totals)


async def _add_partitions(admin: AIOKafkaAdminClient, totals: Mapping[str, int]) -> None:
    if totals:
        try:
            await admin.create_partitions(
                {name: NewPartitions(total_count=n) for name, n in totals.items()}
            )
        except KafkaError as exc:
            raise TransportError(f"cannot add partitions ({dict(totals)}): {exc}") from exc
        await _wait_for_leaders(admin, list(totals), 30.0)


async def set_topic_configs(
    bootstrap_servers: str, configs: Mapping[str, Mapping[str, str]], **options: Any
) -> None:
    """Set each topic's complete dynamic configuration.

    AlterConfigs (the only variant aiokafka offers) replaces the whole set: the caller
    passes the current dynamic configs merged with the wanted ones, so nothing a
    operator set by hand is lost.
    """
    async with admin_client(bootstrap_servers, **options) as admin:
        await _set_configs(admin, configs)


async def _set_configs(
    admin: AIOKafkaAdminClient, configs: Mapping[str, Mapping[str, str]]
) -> None:
    if configs:
        resources = [
            ConfigResource(ConfigResourceType.TOPIC, name, dict(values))
            for name, values in configs.items()
        ]
        for response in await admin.alter_configs(resources):
            for resource in response.to_object()["resources"]:
                _raise_for(
                    resource["error_code"],
                    f"update configs of topic {resource['resource_name']!r}",
                    resource.get("error_message"),
                )
        # The controller accepts the change before the brokers apply it; wait, so that
        # whoever describes the topics next sees what was just set.
        deadline = time.monotonic() + 30.0
        while True:
            state = await _describe(admin, list(configs))
            pending = [
                name
                for name, values in configs.items()
                if name in state and any(state[name].configs.get(k) != v for k, v in values.items())
            ]
            if not pending:
                return
            if time.monotonic() >= deadline:
                raise TransportError(f"config changes not visible after 30 s on {pending}")
            await asyncio.sleep(0.1)


async def apply_plan(bootstrap_servers: str, todo: TopicPlan, **options: Any) -> None:
    """Carry out a :func:`streamrules.topics.plan`: create, grow, then set configs."""
    async with admin_client(bootstrap_servers, **options) as admin:
        await _create(admin, todo.create)
        await _add_partitions(admin, todo.add_partitions)
        await _set_configs(admin, todo.set_configs)
        touched = [t.name for t in todo.create] + list(todo.add_partitions)
        if touched:
            await _wait_for_leaders(admin, touched, 30.0)


async def delete_topics(bootstrap_servers: str, names: Sequence[str], **options: Any) -> None:
    """Delete topics; topics that do not exist are ignored."""
    if not names:
        return
    async with admin_client(bootstrap_servers, **options) as admin:
        response = await admin.delete_topics(list(names))
        for entry in response.to_object()["topic_error_codes"]:
            if entry["error_code"] != _ERROR_UNKNOWN_TOPIC:
                _raise_for(entry["error_code"], f"delete topic {entry['topic']!r}")


# -- ACLs -------------------------------------------------------------------------------
# aiokafka has the ACL requests (v1: KIP-896 removed v0 in Kafka 4) but no admin method for
# them; the codes are Kafka's ResourceType, PatternType, AclOperation and AclPermissionType.
_RESOURCE_CODES = {"TOPIC": 2, "GROUP": 3, "CLUSTER": 4, "TRANSACTIONAL_ID": 5}
_PATTERN_CODES = {"LITERAL": 3, "PREFIXED": 4}
_OPERATION_CODES = {
    "ALL": 2,
    "READ": 3,
    "WRITE": 4,
    "CREATE": 5,
    "DELETE": 6,
    "ALTER": 7,
    "DESCRIBE": 8,
    "CLUSTER_ACTION": 9,
    "DESCRIBE_CONFIGS": 10,
    "ALTER_CONFIGS": 11,
    "IDEMPOTENT_WRITE": 12,
}
_ALLOW = 3
_ANY = 1  # resource type, pattern type, operation and permission "ANY" in filters


def _names(codes: Mapping[str, int]) -> dict[int, str]:
    return {v: k for k, v in codes.items()}


async def _acl_request(admin: AIOKafkaAdminClient, request: Any) -> Any:
    # The admin client's own request path (any broker answers ACL requests).
    return await admin._send_request(request)


async def _describe_acls(admin: AIOKafkaAdminClient, principal: str | None) -> list[Acl]:
    response = await _acl_request(
        admin, DescribeAclsRequest(_ANY, None, _ANY, principal, None, _ANY, _ANY)
    )
    obj = response.to_object()
    _raise_for(obj["error_code"], "describe ACLs", obj.get("error_message"))
    types, patterns, ops = (
        _names(_RESOURCE_CODES),
        _names(_PATTERN_CODES),
        _names(_OPERATION_CODES),
    )
    out: list[Acl] = []
    for res in obj["resources"]:
        rtype = types.get(res["resource_type"])
        pattern = patterns.get(res["resource_pattern_type"])
        for a in res["acls"]:
            op = ops.get(a["operation"])
            if rtype is None or pattern is None or op is None or a["permission_type"] != _ALLOW:
                continue  # DENY entries and resource kinds streamrules never creates
            out.append(Acl(a["principal"], rtype, res["resource_name"], op, pattern, a["host"]))
    return sorted(out)


async def describe_acls(
    bootstrap_servers: str, principal: str | None = None, **options: Any
) -> list[Acl]:
    """The ALLOW ACLs of ``principal`` (of everybody when None), sorted."""
    async with admin_client(bootstrap_servers, **options) as admin:
        return await _describe_acls(admin, principal)


async def create_acls(
    bootstrap_servers: str, acls: Sequence[Acl], *, wait_s: float = 30.0, **options: Any
) -> list[Acl]:
    """Create the ACLs that do not exist yet; return those created.

    Returns once the broker's authorizer applies them (the controller accepts a change
    before the broker's copy of the metadata has it), so a client started next is allowed.
    """
    async with admin_client(bootstrap_servers, **options) as admin:
        return await _create_acls(admin, acls, wait_s)


def _binding(a: Acl) -> tuple[Any, ...]:
    """The fields of an ALLOW binding, as create and delete requests both take them."""
    return (
        _RESOURCE_CODES[a.resource_type],
        a.resource_name,
        _PATTERN_CODES[a.pattern],
        a.principal,
        a.host,
        _OPERATION_CODES[a.operation],
        _ALLOW,
    )


async def _create_acls(admin: AIOKafkaAdminClient, acls: Sequence[Acl], wait_s: float) -> list[Acl]:
    principals = sorted({a.principal for a in acls})
    have = {a for p in principals for a in await _describe_acls(admin, p)}
    todo = [a for a in dict.fromkeys(acls) if a not in have]
    for a in todo:
        response = await _acl_request(
            admin,
            CreateAclsRequest(*_binding(a)),
        )
        for entry in response.to_object()["creation_responses"]:
            _raise_for(entry["error_code"], f"create ACL {a}", entry.get("error_message"))
    await _wait_acls(admin, principals, present=set(todo), absent=set(), wait_s=wait_s)
    return todo


async def delete_acls(
    bootstrap_servers: str, acls: Sequence[Acl], *, wait_s: float = 30.0, **options: Any
) -> None:
    """Delete exactly these ACLs (missing ones are ignored); return once they apply."""
    async with admin_client(bootstrap_servers, **options) as admin:
        for a in acls:
            response = await _acl_request(
                admin,
                DeleteAclsRequest(*_binding(a)),
            )
            for entry in response.to_object()["filter_responses"]:
                _raise_for(entry["error_code"], f"delete ACL {a}", entry.get("error_message"))
        principals = sorted({a.principal for a in acls})
        await _wait_acls(admin, principals, present=set(), absent=set(acls), wait_s=wait_s)


async def _wait_acls(
    admin: AIOKafkaAdminClient,
    principals: Sequence[str],
    *,
    present: set[Acl],
    absent: set[Acl],
    wait_s: float,
) -> None:
    deadline = time.monotonic() + wait_s
    while True:
        have = {a for p in principals for a in await _describe_acls(admin, p)}
        if present <= have and not (absent & have):
            return
        if time.monotonic() >= deadline:
            raise TransportError(f"ACL changes not visible after {wait_s:.0f} s")
        await asyncio.sleep(0.1)
