"""Topic definitions, ``topics/topics.toml`` and ``topics/schemas/`` (configuration stage).

The one source of the Kafka topics (names, partitions, replication, retention, cleanup)
for the CLI (``streamrules topics apply|describe``), docker-compose, the service and the
tests, and of the input events' JSON Schemas for the codec.

Pure and synchronous: loading and validating the file, and :func:`plan` (what to change
on a cluster to match the file, given the cluster's current :class:`TopicState`). The I/O
is in ``streamrules.transport.kafka_admin``.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamrules.errors import ConfigError

TOPICS_DIR = Path(__file__).resolve().parent.parent / "topics"
DEFAULT_TOPICS_FILE = TOPICS_DIR / "topics.toml"
SCHEMAS_DIR = TOPICS_DIR / "schemas"

# The topics the contract names; a topics file must define every one of them.
REQUIRED_TOPICS: tuple[str, ...] = ("orders", "incidents", "decisions", "decisions.dlq")
INPUT_TOPICS: tuple[str, ...] = ("orders", "incidents")
DECISIONS_TOPIC = "decisions"
DLQ_TOPIC = "decisions.dlq"

_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")
_TOPIC_KEYS = {"partitions", "replication_factor", "key", "description", "config"}
_DEFAULT_KEYS = {"partitions", "replication_factor", "config"}
# Topic-level configs of Kafka 4.x: catching a typo here beats an INVALID_CONFIG later.
KNOWN_TOPIC_CONFIGS = frozenset(
    {
        "cleanup.policy",
        "compression.type",
        "compression.gzip.level",
        "compression.lz4.level",
        "compression.zstd.level",
        "delete.retention.ms",
        "file.delete.delay.ms",
        "flush.messages",
        "flush.ms",
        "follower.replication.throttled.replicas",
        "index.interval.bytes",
        "leader.replication.throttled.replicas",
        "local.retention.bytes",
        "local.retention.ms",
        "max.compaction.lag.ms",
        "max.message.bytes",
        "message.timestamp.after.max.ms",
        "message.timestamp.before.max.ms",
        "message.timestamp.type",
        "min.cleanable.dirty.ratio",
        "min.compaction.lag.ms",
        "min.insync.replicas",
        "preallocate",
        "remote.storage.enable",
        "retention.bytes",
        "retention.ms",
        "segment.bytes",
        "segment.index.bytes",
        "segment.jitter.ms",
        "segment.ms",
        "unclean.leader.election.enable",
        "message.downconversion.enable",
    }
)
_CLEANUP_POLICIES = {"delete", "compact", "compact,delete", "delete,compact"}


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic as the file wants it. Config values are Kafka's strings (``"604800000"``)."""

    name: str
    partitions: int
    replication_factor: int
    configs: Mapping[str, str] = field(default_factory=dict)
    key: str = ""
    description: str = ""


@dataclass(frozen=True, slots=True)
class TopicState:
    """One topic as a cluster has it (from ``kafka_admin.describe_topics``)."""

    name: str
    partitions: int
    replication_factor: int
    configs: Mapping[str, str]  # effective values, defaults included
    dynamic_configs: Mapping[str, str]  # set on the topic itself
    leaders: tuple[int, ...] = ()  # per partition; -1 while leaderless


@dataclass(frozen=True, slots=True)
class TopicsFile:
    path: Path
    topics: tuple[TopicSpec, ...]
    # [defaults.config]: what every topic of the file gets (e.g. for ad-hoc test topics).
    default_configs: Mapping[str, str] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.topics)

    def get(self, name: str) -> TopicSpec:
        for topic in self.topics:
            if topic.name == name:
                return topic
        raise ConfigError(f"{self.path}: no topic named {name!r}")

    def with_overrides(
        self, *, partitions: int | None = None, replication_factor: int | None = None
    ) -> TopicsFile:
        """The same topics with every partition count / replication factor replaced."""
        if partitions is not None and partitions < 1:
            raise ConfigError(f"partitions override must be >= 1, got {partitions}")
        if replication_factor is not None and replication_factor < 1:
            raise ConfigError(f"replication factor override must be >= 1, got {replication_factor}")
        topics = tuple(
            TopicSpec(
                name=t.name,
                partitions=partitions if partitions is not None else t.partitions,
                replication_factor=(
                    replication_factor if replication_factor is not None else t.replication_factor
                ),
                configs=t.configs,
                key=t.key,
                description=t.description,
            )
            for t in self.topics
        )
        return TopicsFile(self.path, topics, self.default_configs)

    def renamed(self, names: Mapping[str, str]) -> TopicsFile:
        """The same topics under other names (logical name -> name on the cluster)."""
        topics = tuple(
            TopicSpec(
                name=names.get(t.name, t.name),
                partitions=t.partitions,
                replication_factor=t.replication_factor,
                configs=t.configs,
                key=t.key,
                description=t.description,
            )
            for t in self.topics
        )
        return TopicsFile(self.path, topics, self.default_configs)


def load_topics(path: Path | str | None = None) -> TopicsFile:
    """Load and validate a topics file (default ``topics/topics.toml``).

    Raises ``ConfigError`` naming the file and the problem.
    """
    file = Path(path) if path is not None else DEFAULT_TOPICS_FILE
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"topics file not found: {file}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read topics file {file}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    return parse_topics(raw, file)


def parse_topics(raw: Mapping[str, Any], file: Path) -> TopicsFile:
    unknown = set(raw) - {"defaults", "topics"}
    if unknown:
        raise ConfigError(f"{file}: unknown top-level key(s) {sorted(unknown)}")
    defaults = raw.get("defaults", {})
    if not isinstance(defaults, dict):
        raise ConfigError(f"{file}: [defaults] must be a table")
    _check_keys(defaults, _DEFAULT_KEYS, f"{file}: [defaults]")
    topics_raw = raw.get("topics")
    if not isinstance(topics_raw, dict) or not topics_raw:
        raise ConfigError(f"{file}: no [topics.<name>] tables")
    default_configs = _configs(defaults.get("config", {}), f"{file}: [defaults.config]")
    topics: list[TopicSpec] = []
    for name, body in topics_raw.items():
        where = f"{file}: [topics.{_quote(name)}]"
        if not _TOPIC_NAME.fullmatch(name) or name in (".", ".."):
            raise ConfigError(f"{where}: invalid Kafka topic name {name!r}")
        if not isinstance(body, dict):
            raise ConfigError(f"{where}: must be a table")
        _check_keys(body, _TOPIC_KEYS, where)
        partitions = _positive_int(body, defaults, "partitions", where)
        replication = _positive_int(body, defaults, "replication_factor", where)
        configs = {**default_configs, **_configs(body.get("config", {}), f"{where}.config")}
        min_isr = configs.get("min.insync.replicas")
        if min_isr is not None and int(min_isr) > replication:
            raise ConfigError(
                f"{where}: min.insync.replicas={min_isr} is more than replication_factor="
                f"{replication} (every write would fail)"
            )
        for text_key in ("key", "description"):
            if not isinstance(body.get(text_key, ""), str):
                raise ConfigError(f"{where}: {text_key} must be a string")
        topics.append(
            TopicSpec(
                name=name,
                partitions=partitions,
                replication_factor=replication,
                configs=configs,
                key=body.get("key", ""),
                description=body.get("description", ""),
            )
        )
    missing = [t for t in REQUIRED_TOPICS if t not in topics_raw]
    if missing:
        raise ConfigError(f"{file}: missing required topic(s) {missing}")
    return TopicsFile(file, tuple(topics), default_configs)


def _quote(name: str) -> str:
    return f'"{name}"' if "." in name else name


def _check_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(table) - allowed
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")


def _positive_int(
    body: Mapping[str, Any], defaults: Mapping[str, Any], key: str, where: str
) -> int:
    value = body.get(key, defaults.get(key))
    if value is None:
        raise ConfigError(f"{where}: {key} is missing (and not in [defaults])")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}: {key} must be an integer >= 1, got {value!r}")
    return value


def _configs(table: Any, where: str) -> dict[str, str]:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table of Kafka topic configs")
    out: dict[str, str] = {}
    for key, value in table.items():
        if key not in KNOWN_TOPIC_CONFIGS:
            raise ConfigError(f"{where}: unknown Kafka topic config {key!r}")
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int | float | str):
            text = str(value)
        else:
            raise ConfigError(f"{where}: {key} must be a string, number or boolean")
        if key == "cleanup.policy" and text.replace(" ", "") not in _CLEANUP_POLICIES:
            raise ConfigError(
                f"{where}: cleanup.policy must be delete, compact or both, got {text!r}"
            )
        out[key] = text.replace(" ", "") if key == "cleanup.policy" else text
    return out


# -- planning -------------------------------------------------------------------------------


@dataclass(slots=True)
class TopicPlan:
    """What ``topics apply`` does to make a cluster match the file."""

    create: list[TopicSpec] = field(default_factory=list)
    add_partitions: dict[str, int] = field(default_factory=dict)  # topic -> new total
    set_configs: dict[str, dict[str, str]] = field(default_factory=dict)  # full dynamic set
    config_changes: dict[str, dict[str, tuple[str | None, str]]] = field(default_factory=dict)
    drift: list[str] = field(default_factory=list)  # differences apply cannot fix
    unchanged: list[str] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        return bool(self.create or self.add_partitions or self.set_configs)

    def describe(self) -> list[str]:
        lines = [
            f"create {t.name} ({plural(t.partitions, 'partition')}, rf {t.replication_factor})"
            for t in self.create
        ]
        lines += [f"add partitions to {n}: now {total}" for n, total in self.add_partitions.items()]
        for name, changes in self.config_changes.items():
            for key, (old, new) in changes.items():
                lines.append(f"set {name} {key}: {old if old is not None else '(unset)'} -> {new}")
        lines += [f"drift: {d}" for d in self.drift]
        return lines


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _same_value(key: str, current: str | None, wanted: str) -> bool:
    if current is None:
        return False
    if key == "cleanup.policy":
        return set(current.replace(" ", "").split(",")) == set(wanted.split(","))
    return current == wanted


def plan(specs: Sequence[TopicSpec], current: Mapping[str, TopicState]) -> TopicPlan:
    """Compare wanted topics with a cluster's state. Pure; idempotent by construction:
    planning against the state that results from applying a plan gives no changes."""
    result = TopicPlan()
    for spec in specs:
        state = current.get(spec.name)
        if state is None:
            result.create.append(spec)
            continue
        changed = False
        if spec.partitions > state.partitions:
            result.add_partitions[spec.name] = spec.partitions
            changed = True
        elif spec.partitions < state.partitions:
            result.drift.append(
                f"{spec.name} has {state.partitions} partitions, the file wants "
                f"{spec.partitions}: Kafka cannot remove partitions "
                "(recreate the topic to shrink it)"
            )
        if spec.replication_factor != state.replication_factor:
            result.drift.append(
                f"{spec.name} has replication factor {state.replication_factor}, the file wants "
                f"{spec.replication_factor}: change it with a partition reassignment "
                "(kafka-reassign-partitions), not with apply"
            )
        changes = {
            key: (state.configs.get(key), value)
            for key, value in spec.configs.items()
            if not _same_value(key, state.configs.get(key), value)
        }
        if changes:
            result.config_changes[spec.name] = changes
            # AlterConfigs replaces the whole dynamic set: keep what is there already.
            result.set_configs[spec.name] = {
                **state.dynamic_configs,
                **{k: new for k, (_, new) in changes.items()},
            }
            changed = True
        if not changed:
            result.unchanged.append(spec.name)
    return result


# -- schemas --------------------------------------------------------------------------------


def schema_paths(directory: Path | None = None) -> dict[str, Path]:
    """``{event type: path}`` of ``topics/schemas/<event type>.json``."""
    folder = directory if directory is not None else SCHEMAS_DIR
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.glob("*.json"))}


def load_schemas(directory: Path | None = None) -> dict[str, dict[str, Any]]:
    """The input events' JSON Schemas, by event type. Bad JSON raises ``ConfigError``."""
    schemas: dict[str, dict[str, Any]] = {}
    for event_type, path in schema_paths(directory).items():
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load JSON Schema {path}: {exc}") from None
        if not isinstance(schema, dict):
            raise ConfigError(f"{path}: a JSON Schema must be an object")
        schemas[event_type] = schema
    return schemas
