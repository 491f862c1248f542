"""Configuration: one frozen ``Settings`` object for the service commands.

The only module that reads the environment. Values come from, highest first: command-line
flags, ``STREAMRULES_*`` environment variables, a TOML file (``--config FILE`` or
``STREAMRULES_CONFIG``), then the defaults below. Everything is validated once, at start:
an unknown key, a wrong type or a bad value raises ``ConfigError`` naming the key and the
source it came from, so the CLI can print one line and exit 2.

Each field's metadata carries its flag and help text; ``docs/readme/configuration.md``
tabulates the same fields and a test keeps the two in step.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamrules.errors import ConfigError

__all__ = [
    "CONNECTION_SETTINGS",
    "DEFAULT_BOOTSTRAP",
    "DEFAULT_MAX_FUTURE_MS",
    "DEFAULT_RULES",
    "ENV_PREFIX",
    "PROCESSING_SETTINGS",
    "SERVICE_SETTINGS",
    "TOPIC_SETTINGS",
    "Settings",
    "add_arguments",
    "env_name",
    "flag_name",
    "is_secret",
    "load_settings",
    "setting_names",
]

ENV_PREFIX = "STREAMRULES_"
# STREAMRULES_* variables that belong to other components, not to Settings: the local
# broker manager (streamrules.localkafka) and the test harness.
OTHER_PREFIXES = ("BROKER_", "TEST_")
DEFAULT_RULES: tuple[str, ...] = ("streamrules.packs.discounts", "streamrules.packs.sre")
# What `run`, `produce` and `tail` talk to when no bootstrap servers are configured; `demo`
# starts a local broker instead.
DEFAULT_BOOTSTRAP = "localhost:9092"
# The service's future check when max_future_ms is unset: one hour, as Kafka's own
# message.timestamp.after.max.ms.
DEFAULT_MAX_FUTURE_MS = 3_600_000
# Kafka's rule for topic names (kafka.common.internals.Topic): these characters, at most
# 249 of them, and not "." or "..".
_TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]{1,249}")

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("auto", "json", "text")
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI", "OAUTHBEARER")


def _opt(default: Any, help: str, *, flag: bool = True, secret: bool = False) -> Any:
    # A secret is left out of repr() and never echoed by an error message.
    return field(
        default=default, repr=not secret, metadata={"help": help, "flag": flag, "secret": secret}
    )


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the service commands are configured by; see configuration.md."""

    bootstrap_servers: str | None = _opt(
        None,
        "Kafka bootstrap servers, comma-separated host:port. Unset: run/produce/tail use "
        "localhost:9092, demo starts a local broker.",
    )
    group_id: str = _opt("streamrules", "Consumer group of `run`.")
    client_id: str = _opt("streamrules", "Kafka client id (prefix).")
    orders_topic: str = _opt("orders", "Input topic of order events.")
    incidents_topic: str = _opt("incidents", "Input topic of incident events.")
    decisions_topic: str = _opt("decisions", "Output topic of decisions.")
    dlq_topic: str = _opt("decisions.dlq", "Dead-letter topic.")
    rules: tuple[str, ...] = _opt(
        DEFAULT_RULES,
        "Rule modules or .py files (flag repeatable; env: comma-separated; TOML: array).",
    )
    allowed_lateness_ms: int = _opt(
        60_000,
        "Milliseconds an event may be older than the watermark; older ones go to the "
        "dead-letter topic (late_event).",
    )
    max_future_ms: int | None = _opt(
        None,
        "Milliseconds an event's ts may be ahead of the wall clock; further ahead is a "
        "future_event dead letter. Unset: 3600000 (1 hour) for run, no check for replay "
        "(a file is history). 0: no check.",
    )
    max_record_bytes: int = _opt(
        1_048_576,
        "Largest record value (bytes) that is decoded; a larger one is a schema dead "
        "letter, not decoded (Kafka's max.message.bytes is about the same).",
    )
    max_firings_per_event: int = _opt(
        100_000,
        "Most rule firings one event (or clock advance) may cause; beyond, the rest of its "
        "agenda is dropped and the record is a rule_error (rules re-activating themselves).",
    )
    idle_ms: int = _opt(
        500,
        "Longest wait (processing time) for an empty, caught-up input partition before the "
        "merge goes on without it, counted per partition from when it became empty (Kafka "
        "Streams' max.task.idle.ms).",
    )
    batch_size: int = _opt(
        500,
        "Most input records per batch: one delivery and one commit each, and the most "
        "buffered per partition (getmany max_records).",
    )
    orders_horizon_ms: int = _opt(
        3_600_000,
        "How far back in record time (before the newest committed record) a rebuild "
        "re-reads the orders partitions, plus allowed_lateness_ms: the longest an order "
        "matters to the rules (an order fact lives 1 h). Raise it for rules that keep "
        "state from orders longer.",
    )
    incidents_horizon_ms: int = _opt(
        30 * 24 * 3_600_000,
        "The same for the incidents partitions: the SRE pack's error budget looks back 30 days.",
    )
    batch_max_ms: int = _opt(
        1000,
        "Longest processing time (ms) of one batch before its decisions are delivered and "
        "its offsets committed, however many records are waiting.",
    )
    exactly_once: bool = _opt(
        False, "Decisions and offsets in one Kafka transaction (else at-least-once)."
    )
    security_protocol: str = _opt("PLAINTEXT", "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.")
    sasl_mechanism: str | None = _opt(
        None, "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, GSSAPI or OAUTHBEARER."
    )
    sasl_username: str | None = _opt(None, "SASL user name (PLAIN, SCRAM).")
    sasl_password: str | None = _opt(None, "SASL password (PLAIN, SCRAM).", secret=True)
    ssl_cafile: str | None = _opt(None, "CA bundle to verify the brokers (SSL, SASL_SSL).")
    ssl_certfile: str | None = _opt(None, "Client certificate (mutual TLS).")
    ssl_keyfile: str | None = _opt(None, "Client private key (mutual TLS).")
    log_level: str = _opt("INFO", "DEBUG, INFO, WARNING, ERROR or CRITICAL.")
    log_format: str = _opt(
        "auto", "json, text, or auto (json unless standard error is a terminal)."
    )
    metrics_port: int | None = _opt(
        None,
        "Serve /metrics (Prometheus), /healthz and /readyz on this port (`run`; needs the "
        "prometheus extra).",
    )
    metrics_host: str = _opt(
        "0.0.0.0",
        "Address the metrics port listens on (0.0.0.0: every interface, as Prometheus and "
        "Kubernetes probes need; 127.0.0.1: this host only).",
    )

    @property
    def bootstrap(self) -> str:
        """The bootstrap servers to use when connecting to an existing cluster."""
        return self.bootstrap_servers or DEFAULT_BOOTSTRAP

    @property
    def service_max_future_ms(self) -> int:
        """``max_future_ms`` as the service applies it (unset: one hour)."""
        return DEFAULT_MAX_FUTURE_MS if self.max_future_ms is None else self.max_future_ms

    @property
    def topic_names(self) -> dict[str, str]:
        """Logical topic name -> configured name (for the codec's ``Decoder``)."""
        return {
            "orders": self.orders_topic,
            "incidents": self.incidents_topic,
            "decisions": self.decisions_topic,
            "decisions.dlq": self.dlq_topic,
        }

    def kafka_options(self) -> dict[str, Any]:
        """Connection and security options shared by every aiokafka client."""
        opts: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": self.security_protocol,
        }
        if self.sasl_mechanism is not None:
            opts["sasl_mechanism"] = self.sasl_mechanism
        if self.sasl_username is not None:
            opts["sasl_plain_username"] = self.sasl_username
        if self.sasl_password is not None:
            opts["sasl_plain_password"] = self.sasl_password
        return opts

    def ssl_files(self) -> tuple[str | None, str | None, str | None]:
        """(cafile, certfile, keyfile) for building an SSL context."""
        return self.ssl_cafile, self.ssl_certfile, self.ssl_keyfile


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}

# Which command uses what: a command offers the flags of the settings it uses, no others
# (the environment and the TOML file may still hold the rest: one file serves all
# commands). Every setting is in exactly one group (a test checks it).
CONNECTION_SETTINGS: tuple[str, ...] = (  # every Kafka client: where, who, how secured
    "bootstrap_servers",
    "client_id",
    "security_protocol",
    "sasl_mechanism",
    "sasl_username",
    "sasl_password",
    "ssl_cafile",
    "ssl_certfile",
    "ssl_keyfile",
)
TOPIC_SETTINGS: tuple[str, ...] = (
    "orders_topic",
    "incidents_topic",
    "decisions_topic",
    "dlq_topic",
)
PROCESSING_SETTINGS: tuple[str, ...] = (  # the processor: `run` and `demo`
    "group_id",
    "rules",
    "allowed_lateness_ms",
    "max_future_ms",
    "max_record_bytes",
    "max_firings_per_event",
    "idle_ms",
    "batch_size",
    "batch_max_ms",
    "orders_horizon_ms",
    "incidents_horizon_ms",
    "exactly_once",
)
SERVICE_SETTINGS: tuple[str, ...] = (  # the long-running service only: `run`
    "log_level",
    "log_format",
    "metrics_port",
    "metrics_host",
)


def setting_names() -> tuple[str, ...]:
    """Every setting, in declaration order (the TOML keys)."""
    return tuple(_FIELDS)


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def _kind(name: str) -> str:
    ann = str(_FIELDS[name].type)
    if ann.startswith("tuple"):
        return "list"
    if ann.startswith("bool"):
        return "bool"
    if ann.startswith("int"):
        return "int"
    return "str"


def is_secret(name: str) -> bool:
    """Whether a setting's value must never be shown (logs, errors, repr)."""
    return bool(_FIELDS[name].metadata.get("secret"))


def _shown(key: str, raw: Any) -> str:
    return "(hidden)" if is_secret(key) else repr(raw)


def _optional(name: str) -> bool:
    return "None" in str(_FIELDS[name].type)


def add_arguments(parser: argparse.ArgumentParser, names: Collection[str] | None = None) -> None:
    """Add ``--config`` and a flag per setting (all, or ``names``) to ``parser``.

    Flags default to ``None`` (``SUPPRESS`` for booleans) so that an absent flag does not
    hide the environment or the file.
    """
    parser.add_argument("--config", metavar="FILE", default=None, help="TOML configuration file.")
    for name in setting_names():
        if names is not None and name not in names:
            continue
        f = _FIELDS[name]
        kind = _kind(name)
        help_text = str(f.metadata["help"]).replace("%", "%%")
        if kind == "bool":
            parser.add_argument(
                flag_name(name),
                dest=name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
        elif kind == "list":
            parser.add_argument(
                flag_name(name), dest=name, action="append", default=None, help=help_text
            )
        else:
            parser.add_argument(
                flag_name(name), dest=name, default=None, metavar=name.upper(), help=help_text
            )


def load_settings(
    args: argparse.Namespace | Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build and validate ``Settings`` from flags > environment > TOML file > defaults.

    ``args`` is the parsed command line (or a mapping of setting name -> flag value;
    ``None`` values count as absent). ``overrides`` beat everything (for commands that fix
    a setting, e.g. the demo's bootstrap servers).
    """
    env = os.environ if environ is None else environ
    flags: dict[str, Any] = dict(vars(args) if isinstance(args, argparse.Namespace) else args or {})
    values: dict[str, Any] = {}

    path = flags.get("config") or env.get(ENV_PREFIX + "CONFIG")
    if path:
        for key, raw in _read_toml(Path(path)).items():
            source = f"config file {path}"
            if key not in _FIELDS:
                raise ConfigError(f"unknown key {key!r} in {source}")
            if _kind(key) == "list" and not isinstance(raw, list):
                raise ConfigError(f"{key}: must be an array of strings, got {raw!r} ({source})")
            values[key] = _coerce_typed(key, raw, source)

    for var, raw in env.items():
        if not var.startswith(ENV_PREFIX) or var == ENV_PREFIX + "CONFIG":
            continue
        rest = var[len(ENV_PREFIX) :]
        if rest.startswith(OTHER_PREFIXES):
            continue
        key = rest.lower()
        source = f"environment variable {var}"
        if key not in _FIELDS:
            raise ConfigError(f"unknown setting in {source}")
        if flags.get(key) is not None:
            continue  # the flag wins: a value it overrides is not read, nor reported
        values[key] = _coerce_text(key, raw, source)

    for key in setting_names():
        raw = flags.get(key)
        if raw is None:
            continue
        source = f"flag {flag_name(key)}"
        if isinstance(raw, list):
            values[key] = _coerce_typed(key, raw, source)
        elif isinstance(raw, str):
            values[key] = _coerce_text(key, raw, source)
        else:
            values[key] = _coerce_typed(key, raw, source)

    for key, raw in overrides.items():
        if key not in _FIELDS:
            raise ConfigError(f"unknown setting {key!r}")
        values[key] = raw

    settings = Settings(**values)
    _validate(settings, _sources(flags, env, path, values))
    return settings


def _sources(
    flags: Mapping[str, Any], env: Mapping[str, str], path: str | None, values: Mapping[str, Any]
) -> dict[str, str]:
    out: dict[str, str] = {}
    for key in values:
        if flags.get(key) is not None:
            out[key] = f"flag {flag_name(key)}"
        elif env_name(key) in env:
            out[key] = f"environment variable {env_name(key)}"
        elif path:
            out[key] = f"config file {path}"
    return out


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    for key, value in data.items():
        if isinstance(value, dict):
            raise ConfigError(
                f"unknown table [{key}] in config file {path} (settings are top-level keys)"
            )
    return data


def _coerce_text(key: str, raw: str, source: str) -> Any:
    """A value given as text (environment, flag) -> the setting's type."""
    kind = _kind(key)
    text = raw.strip()
    if _optional(key) and text == "":
        return None
    if kind == "list":
        items = tuple(part.strip() for part in text.split(",") if part.strip())
        if not items:
            raise ConfigError(f"{key}: must list at least one entry ({source})")
        return items
    if kind == "bool":
        low = text.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{key}: must be true or false, got {_shown(key, raw)} ({source})")
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise ConfigError(
                f"{key}: must be an integer, got {_shown(key, raw)} ({source})"
            ) from None
    return text


def _coerce_typed(key: str, raw: Any, source: str) -> Any:
    """A value given with a type (TOML, repeated flags) -> the setting's type."""
    kind = _kind(key)
    if kind == "list":
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
            raise ConfigError(f"{key}: must be a list of strings ({source})")
        items: list[str] = []
        for x in raw:
            items.extend(p.strip() for p in x.split(",") if p.strip())
        if not items:
            raise ConfigError(f"{key}: must list at least one entry ({source})")
        return tuple(items)
    if kind == "bool":
        if not isinstance(raw, bool):
            raise ConfigError(f"{key}: must be true or false, got {_shown(key, raw)} ({source})")
        return raw
    if kind == "int":
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise ConfigError(f"{key}: must be an integer, got {_shown(key, raw)} ({source})")
        return raw
    if not isinstance(raw, str):
        raise ConfigError(f"{key}: must be a string, got {_shown(key, raw)} ({source})")
    return raw


def _validate(s: Settings, sources: Mapping[str, str]) -> None:
    def fail(key: str, problem: str) -> None:
        where = sources.get(key)
        raise ConfigError(f"{key}: {problem}" + (f" ({where})" if where else ""))

    for key in ("group_id", "client_id", "metrics_host"):
        if not getattr(s, key):
            fail(key, "must not be empty")
    for key in ("orders_topic", "incidents_topic", "decisions_topic", "dlq_topic"):
        name = getattr(s, key)
        if not name:
            fail(key, "must not be empty")
        if not _TOPIC_NAME.fullmatch(name) or name in (".", ".."):
            fail(
                key,
                f"{name!r} is not a Kafka topic name (at most 249 of a-z A-Z 0-9 . _ -, "
                "not '.' or '..')",
            )
    if s.bootstrap_servers is not None:
        for part in s.bootstrap_servers.split(","):
            host, sep, port = part.strip().rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                fail("bootstrap_servers", f"expected host:port[,host:port...], got {part!r}")
    if len({s.orders_topic, s.incidents_topic, s.decisions_topic, s.dlq_topic}) != 4:
        fail("decisions_topic", "the four topics must have different names")
    if s.allowed_lateness_ms < 0:
        fail("allowed_lateness_ms", f"must be >= 0, got {s.allowed_lateness_ms}")
    if s.max_future_ms is not None and s.max_future_ms < 0:
        fail("max_future_ms", f"must be >= 0 (0: no check), got {s.max_future_ms}")
    if s.max_firings_per_event < 1:
        fail("max_firings_per_event", f"must be >= 1, got {s.max_firings_per_event}")
    if s.max_record_bytes < 1:
        fail("max_record_bytes", f"must be >= 1, got {s.max_record_bytes}")
    if s.idle_ms < 0:
        fail("idle_ms", f"must be >= 0, got {s.idle_ms}")
    if s.batch_size < 1:
        fail("batch_size", f"must be >= 1, got {s.batch_size}")
    for name in ("orders_horizon_ms", "incidents_horizon_ms"):
        if getattr(s, name) < 0:
            fail(name, f"must be >= 0, got {getattr(s, name)}")
    if s.batch_max_ms < 1:
        fail("batch_max_ms", f"must be >= 1, got {s.batch_max_ms}")
    if s.log_level.upper() not in LOG_LEVELS:
        fail("log_level", f"must be one of {', '.join(LOG_LEVELS)}, got {s.log_level!r}")
    if s.log_format not in LOG_FORMATS:
        fail("log_format", f"must be one of {', '.join(LOG_FORMATS)}, got {s.log_format!r}")
    if s.security_protocol not in SECURITY_PROTOCOLS:
        fail(
            "security_protocol",
            f"must be one of {', '.join(SECURITY_PROTOCOLS)}, got {s.security_protocol!r}",
        )
    if s.sasl_mechanism is not None:
        if s.sasl_mechanism not in SASL_MECHANISMS:
            fail(
                "sasl_mechanism",
                f"must be one of {', '.join(SASL_MECHANISMS)}, got {s.sasl_mechanism!r}",
            )
        if not s.security_protocol.startswith("SASL"):
            fail("sasl_mechanism", "needs security_protocol SASL_PLAINTEXT or SASL_SSL")
    elif s.security_protocol.startswith("SASL"):
        fail("security_protocol", "SASL protocols need sasl_mechanism")
    for key in ("sasl_username", "sasl_password"):
        # Given but unused would send no credentials at all: say so (without the value).
        if getattr(s, key) is not None and not s.security_protocol.startswith("SASL"):
            fail(key, f"is set but security_protocol is {s.security_protocol} (not SASL_*)")
    for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        value = getattr(s, key)
        if value is not None and not Path(value).is_file():
            fail(key, f"no such file {value!r}")
    if s.metrics_port is not None and not 0 < s.metrics_port < 65536:
        fail("metrics_port", f"must be a port 1-65535, got {s.metrics_port}")
    for rule in s.rules:
        if not rule:
            fail("rules", "empty entry")
