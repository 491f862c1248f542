"""The Kafka permissions (ACLs) each command needs, and no more (operations, beside the flow).

One place says what ``streamrules run`` (and ``produce``, ``tail``) do on a cluster with
an authorizer, so that ``streamrules topics apply --acls PRINCIPAL`` creates exactly that,
the table in docs/readme/operations-kafka.md shows it, and the tests remove each entry in
turn to prove it is needed. Pure data: no Kafka client here (``transport/kafka_admin.py``
sends them).

What ``run`` does and the permission Kafka checks for it:

- reads ``orders`` and ``incidents`` (Fetch, ListOffsets, OffsetsForTimes, Metadata):
  READ on each topic (READ implies DESCRIBE);
- writes ``decisions`` and ``decisions.dlq`` (Produce; the idempotent producer's
  InitProducerId is allowed by WRITE on any topic since Kafka 3.0): WRITE on each (implies
  DESCRIBE, which the start-up check of the four topics needs);
- is a member of its consumer group (FindCoordinator, JoinGroup, SyncGroup, Heartbeat,
  OffsetFetch, OffsetCommit): READ on the group;
- exactly-once only: one transactional producer per assigned partition set, its id
  ``<group_id>-<hash of the partitions>``: WRITE on transactional ids with the prefix
  ``<group_id>-`` (and the transaction's offset commit: READ on the group, as above).

``produce`` writes the input topics (and the dead-letter topic with ``--dead-letters``);
``tail`` reads ``decisions`` without a consumer group.
"""

from __future__ import annotations

from dataclasses import dataclass

from streamrules.config import Settings
from streamrules.errors import ConfigError

__all__ = [
    "ROLES",
    "Acl",
    "acls_for",
    "normalize_principal",
    "produce_acls",
    "run_acls",
    "tail_acls",
    "transactional_id_prefix",
]

RESOURCE_TYPES = ("TOPIC", "GROUP", "CLUSTER", "TRANSACTIONAL_ID")
PATTERNS = ("LITERAL", "PREFIXED")
OPERATIONS = (
    "ALL",
    "READ",
    "WRITE",
    "CREATE",
    "DELETE",
    "ALTER",
    "DESCRIBE",
    "CLUSTER_ACTION",
    "DESCRIBE_CONFIGS",
    "ALTER_CONFIGS",
    "IDEMPOTENT_WRITE",
)


@dataclass(frozen=True, slots=True, order=True)
class Acl:
    """One ALLOW binding: ``principal`` may do ``operation`` on a resource, from any host."""

    principal: str
    resource_type: str
    resource_name: str
    operation: str
    pattern: str = "LITERAL"
    host: str = "*"

    def __post_init__(self) -> None:
        if self.resource_type not in RESOURCE_TYPES:
            raise ValueError(f"unknown ACL resource type {self.resource_type!r}")
        if self.pattern not in PATTERNS:
            raise ValueError(f"unknown ACL pattern type {self.pattern!r}")
        if self.operation not in OPERATIONS:
            raise ValueError(f"unknown ACL operation {self.operation!r}")

    def __str__(self) -> str:
        name = f"{self.resource_name}*" if self.pattern == "PREFIXED" else self.resource_name
        kind = self.resource_type.lower().replace("_", " ")
        return f"ALLOW {self.principal} {self.operation} on {kind} {name!r}"


def normalize_principal(text: str) -> str:
    """``User:name`` as Kafka's authorizer matches it (a bare name means ``User:name``)."""
    text = text.strip()
    kind, sep, name = text.partition(":")
    if not sep:
        kind, name = "User", text
    if not kind or not name or any(c.isspace() for c in text):
        raise ConfigError(f"--acls: expected a principal like User:NAME, got {text!r}")
    return f"{kind}:{name}"


def transactional_id_prefix(group_id: str) -> str:
    """What every transactional id of ``run --exactly-once`` in this group starts with."""
    return f"{group_id}-"


def run_acls(principal: str, settings: Settings) -> list[Acl]:
    """Exactly what ``streamrules run`` needs with these settings (see the docstring)."""
    p = normalize_principal(principal)
    s = settings
    acls = [
        Acl(p, "TOPIC", s.orders_topic, "READ"),
        Acl(p, "TOPIC", s.incidents_topic, "READ"),
        Acl(p, "TOPIC", s.decisions_topic, "WRITE"),
        Acl(p, "TOPIC", s.dlq_topic, "WRITE"),
        Acl(p, "GROUP", s.group_id, "READ"),
    ]
    if s.exactly_once:
        acls.append(
            Acl(p, "TRANSACTIONAL_ID", transactional_id_prefix(s.group_id), "WRITE", "PREFIXED")
        )
    return acls


def produce_acls(principal: str, settings: Settings, *, dead_letters: bool = False) -> list[Acl]:
    """What ``streamrules produce`` needs (WRITE on the inputs, and the DLQ if asked)."""
    p = normalize_principal(principal)
    topics = [settings.orders_topic, settings.incidents_topic]
    if dead_letters:
        topics.append(settings.dlq_topic)
    return [Acl(p, "TOPIC", t, "WRITE") for t in topics]


def tail_acls(principal: str, settings: Settings) -> list[Acl]:
    """What ``streamrules tail`` needs: READ on decisions (no consumer group)."""
    return [Acl(normalize_principal(principal), "TOPIC", settings.decisions_topic, "READ")]


ROLES = ("run", "produce", "tail")


def acls_for(role: str, principal: str, settings: Settings) -> list[Acl]:
    if role == "run":
        return run_acls(principal, settings)
    if role == "produce":
        return produce_acls(principal, settings)
    if role == "tail":
        return tail_acls(principal, settings)
    raise ConfigError(f"--acls-for must be one of {', '.join(ROLES)}, got {role!r}")
