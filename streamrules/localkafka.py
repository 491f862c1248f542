"""Local Apache Kafka broker for development, tests, the demo and CI (outside the flow).

Not part of the event flow: this module only provides the broker that the transport talks
to. It runs a real single-node KRaft Kafka (combined broker + controller) from the jars of
Maven Central, without Docker and without the Apache download site:

1. ``mvn dependency:build-classpath`` on ``tools/kafka/pom.xml`` resolves the jars into
   ``~/.m2`` and gives their classpath; the result is cached per pom content, so a second
   start calls no Maven at all;
2. ``server.properties`` is written from :class:`BrokerConfig` (node 1 on 127.0.0.1,
   single-node replication for the internal topics, no automatic topic creation);
3. a new data folder is formatted once (``kafka.tools.StorageTool``);
4. ``kafka.Kafka`` is started in the background (own session, explicit heap, log4j2 to
   ``<data dir>/logs/server.log``) and we wait until a metadata request succeeds;
5. :meth:`LocalKafka.stop` sends SIGTERM, waits for the controlled shutdown, then kills.

With ``secure=True`` the broker listens for SASL_SSL clients only (SCRAM users made at
format time, TLS material made at every start, the StandardAuthorizer on): see
:mod:`streamrules.securebroker`.

State lives in the data folder: ``broker.pid``, ``server.properties``, ``data/``, ``logs/``.
Used by ``streamrules broker``, the integration-test fixtures and ``.ci/run``.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import hashlib
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from streamrules import securebroker
from streamrules.errors import ConfigError, TransportError

log = logging.getLogger(__name__)

_T = TypeVar("_T")

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POM = REPO_ROOT / "tools" / "kafka" / "pom.xml"
DEFAULT_LOG4J2 = REPO_ROOT / "tools" / "kafka" / "log4j2.properties"
DEFAULT_DATA_DIR = REPO_ROOT / ".kafka"
DEFAULT_HEAP = "-Xms512m -Xmx1g"
MIN_JAVA = 17

# Environment variables understood by BrokerConfig.from_env (documented in
# docs/readme/operations-kafka.md).
ENV_PORT = "STREAMRULES_BROKER_PORT"
ENV_CONTROLLER_PORT = "STREAMRULES_BROKER_CONTROLLER_PORT"
ENV_DATA_DIR = "STREAMRULES_BROKER_DATA_DIR"
ENV_HEAP = "STREAMRULES_BROKER_HEAP"
ENV_START_TIMEOUT = "STREAMRULES_BROKER_START_TIMEOUT"
ENV_CACHE_DIR = "STREAMRULES_BROKER_CACHE_DIR"
ENV_INTERNAL_PORT = "STREAMRULES_BROKER_INTERNAL_PORT"


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    """Where and how the local broker runs. Every field has a flag and an environment variable."""

    port: int = 9092
    controller_port: int = 9093
    data_dir: Path = DEFAULT_DATA_DIR
    heap: str = DEFAULT_HEAP
    start_timeout_s: float = 90.0
    host: str = "127.0.0.1"
    pom: Path = DEFAULT_POM
    log4j2_config: Path = DEFAULT_LOG4J2
    # The classpath cache is kept apart from data_dir so that throw-away data folders
    # (one per test session) do not pay for a Maven run each.
    cache_dir: Path = field(default=DEFAULT_DATA_DIR / "cache")
    extra_properties: Mapping[str, str] = field(default_factory=dict)
    # The secured variant (securebroker.py): SASL_SSL clients, SCRAM users, ACLs.
    secure: bool = False
    # Secured only: the broker's own TLS listener (inter-broker); default port + 2.
    internal_port: int | None = None
    # Secured only: the SCRAM users made when the data folder is formatted (admin always).
    users: tuple[str, ...] = securebroker.DEFAULT_USERS

    def __post_init__(self) -> None:
        # Absolute paths: the pid check compares them with the broker's command line.
        object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser().resolve())
        object.__setattr__(self, "cache_dir", Path(self.cache_dir).expanduser().resolve())
        ports = [("port", self.port), ("controller port", self.controller_port)]
        if self.secure:
            if self.internal_port is None:
                object.__setattr__(self, "internal_port", self.port + 2)
            assert self.internal_port is not None
            ports.append(("internal port", self.internal_port))
            for user in self.users:
                securebroker.validate_user(user)
        for name, value in ports:
            if not 1 <= value <= 65535:
                raise ConfigError(f"broker {name} must be between 1 and 65535, got {value}")
        if self.port == self.controller_port:
            raise ConfigError(f"broker port and controller port are both {self.port}")
        if len({p for _, p in ports}) != len(ports):
            raise ConfigError(
                "broker ports must differ, got " + ", ".join(f"{n} {p}" for n, p in ports)
            )
        if self.start_timeout_s <= 0:
            raise ConfigError(f"broker start timeout must be positive, got {self.start_timeout_s}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> BrokerConfig:
        """Defaults, then ``STREAMRULES_BROKER_*`` variables, then explicit ``overrides``.

        ``overrides`` whose value is ``None`` are ignored, so that unset CLI flags can be
        passed straight through.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if ENV_PORT in env:
            values["port"] = _env_int(env, ENV_PORT)
        if ENV_CONTROLLER_PORT in env:
            values["controller_port"] = _env_int(env, ENV_CONTROLLER_PORT)
        if env.get(ENV_DATA_DIR):
            values["data_dir"] = Path(env[ENV_DATA_DIR])
        if env.get(ENV_HEAP):
            values["heap"] = env[ENV_HEAP]
        if ENV_START_TIMEOUT in env:
            try:
                values["start_timeout_s"] = float(env[ENV_START_TIMEOUT])
            except ValueError:
                raise ConfigError(
                    f"{ENV_START_TIMEOUT} must be a number of seconds, "
                    f"got {env[ENV_START_TIMEOUT]!r}"
                ) from None
        if env.get(ENV_CACHE_DIR):
            values["cache_dir"] = Path(env[ENV_CACHE_DIR])
        if ENV_INTERNAL_PORT in env:
            values["internal_port"] = _env_int(env, ENV_INTERNAL_PORT)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"


def _env_int(env: Mapping[str, str], name: str) -> int:
    try:
        return int(env[name])
    except ValueError:
        raise ConfigError(f"{name} must be a port number, got {env[name]!r}") from None


@dataclass(frozen=True, slots=True)
class BrokerStatus:
    running: bool
    pid: int | None
    bootstrap_servers: str
    data_dir: Path
    log_file: Path
    stale_pid_file: bool = False


@dataclass(frozen=True, slots=True)
class StartResult:
    already_running: bool
    pid: int
    bootstrap_servers: str
    seconds: float  # wall time of this call, Maven resolution included
    resolved_classpath: bool  # True when Maven had to run (a cold start)
    formatted: bool  # True when the data folder was new


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (for private test brokers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def run_sync(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine to completion, also when called from inside a running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


class LocalKafka:
    """One local broker, identified by its data folder.

    Several instances may run side by side with different data folders and ports (the test
    fixture starts a private one). Usable as a context manager: start on enter, stop on exit.
    """

    def __init__(self, config: BrokerConfig | None = None) -> None:
        self.config = config or BrokerConfig.from_env()

    # -- paths -----------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.config.data_dir

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "broker.pid"

    @property
    def properties_file(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "server.log"

    @property
    def console_file(self) -> Path:
        return self.log_dir / "console.out"

    @property
    def kafka_log_dir(self) -> Path:
        return self.data_dir / "data"

    @property
    def bootstrap_servers(self) -> str:
        return self.config.bootstrap_servers

    @property
    def secure_files(self) -> securebroker.SecureFiles:
        """TLS material and client files of the secured broker (``secure=True``)."""
        return securebroker.SecureFiles(self.data_dir / "secure")

    def client_config(self, user: str = securebroker.ADMIN_USER) -> Path:
        """The streamrules TOML file with ``user``'s connection settings (secured broker)."""
        return self.secure_files.client_file(user)

    def credentials(self, user: str = securebroker.ADMIN_USER) -> securebroker.Credentials:
        return securebroker.read_credentials(self.secure_files, user)

    def client_options(self, user: str = securebroker.ADMIN_USER) -> dict[str, Any]:
        """aiokafka connection options for ``user`` (none for the plain broker)."""
        if not self.config.secure:
            return {}
        creds = self.credentials(user)
        from streamrules.transport import kafka_admin  # aiokafka lives in transport/ only

        return {
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": securebroker.MECHANISM,
            "sasl_plain_username": creds.user,
            "sasl_plain_password": creds.password,
            "ssl": kafka_admin.SslFiles(cafile=str(self.secure_files.ca)),
        }

    def __enter__(self) -> LocalKafka:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- prerequisites ---------------------------------------------------------------------
    def java(self) -> str:
        """Path of a ``java`` of version 17 or later (JAVA_HOME first, then PATH)."""
        java_home = os.environ.get("JAVA_HOME")
        candidate = None
        if java_home and (Path(java_home) / "bin" / "java").exists():
            candidate = str(Path(java_home) / "bin" / "java")
        candidate = candidate or shutil.which("java")
        if candidate is None:
            raise ConfigError(
                f"Java {MIN_JAVA}+ is needed to run the local Kafka broker, but no `java` was "
                "found (install a JDK/JRE 17, e.g. `apt-get install openjdk-17-jre-headless`, "
                "or set JAVA_HOME)"
            )
        major = java_major_version(candidate)
        if major < MIN_JAVA:
            raise ConfigError(
                f"Kafka 4 needs Java {MIN_JAVA}+, but {candidate} is Java {major} "
                "(install a newer JDK or point JAVA_HOME at one)"
            )
        return candidate

    def maven(self) -> str:
        mvn = shutil.which("mvn")
        if mvn is None:
            raise ConfigError(
                "Maven (`mvn`) is needed once to fetch the Kafka jars from Maven Central, but it "
                "was not found (install it, e.g. `apt-get install maven`)"
            )
        return mvn

    # -- classpath -------------------------------------------------------------------------
    def _classpath_cache(self) -> Path:
        pom = self.config.pom
        if not pom.is_file():
            raise ConfigError(f"Kafka broker pom not found: {pom}")
        digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:16]
        return self.config.cache_dir / f"classpath-{digest}.txt"

    def cached_classpath(self) -> list[str] | None:
        """The cached classpath when it is still valid (every jar still in ~/.m2)."""
        cache = self._classpath_cache()
        if not cache.is_file():
            return None
        entries = [e for e in cache.read_text().strip().split(os.pathsep) if e]
        if not entries or not all(Path(e).is_file() for e in entries):
            return None
        return entries

    def resolve_classpath(self) -> tuple[list[str], bool]:
        """The broker's classpath, and whether Maven had to run for it."""
        cached = self.cached_classpath()
        if cached is not None:
            return cached, False
        mvn = self.maven()
        cache = self._classpath_cache()
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        cmd = [
            mvn,
            "-B",
            "-q",
            "-Dstyle.color=never",
            "-f",
            str(self.config.pom),
            "dependency:build-classpath",
            "-Dmdep.includeScope=runtime",
            f"-Dmdep.outputFile={tmp}",
        ]
        log.info("resolving the Kafka jars with Maven (first start only)")
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not tmp.is_file():
            tail = _tail_text((proc.stdout + proc.stderr).strip(), 15)
            raise TransportError(
                f"could not resolve the Kafka jars with Maven (exit {proc.returncode}); "
                f"command: {' '.join(cmd)}\n{tail}"
            )
        tmp.replace(cache)
        entries = [e for e in cache.read_text().strip().split(os.pathsep) if e]
        return entries, True

    # -- process state ---------------------------------------------------------------------
    def _read_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def _is_our_broker(self, pid: int) -> bool:
        """Whether ``pid`` is alive and is a kafka.Kafka using this data folder.

        Checking the command line guards against a pid reused by another process after a
        crash or a reboot (a stale pid file).
        """
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return True  # no /proc (macOS): trust the signal check
        args = [a.decode(errors="replace") for a in cmdline]
        return "kafka.Kafka" in args and str(self.properties_file) in args

    def running_pid(self) -> int | None:
        pid = self._read_pid()
        if pid is not None and self._is_our_broker(pid):
            return pid
        return None

    def recorded_bootstrap_servers(self) -> str:
        """Where this data folder's broker listens, from the server.properties it was started
        with (the port flags of ``status``/``stop`` need not repeat those of ``start``)."""
        try:
            for line in self.properties_file.read_text().splitlines():
                key, sep, value = line.partition("=")
                if sep and key.strip() == "advertised.listeners":
                    return value.strip().split("://", 1)[-1].split(",")[0]
        except OSError:
            pass
        return self.bootstrap_servers

    def status(self) -> BrokerStatus:
        pid = self._read_pid()
        alive = pid is not None and self._is_our_broker(pid)
        return BrokerStatus(
            running=alive,
            pid=pid if alive else None,
            bootstrap_servers=self.recorded_bootstrap_servers()
            if alive
            else self.bootstrap_servers,
            data_dir=self.data_dir,
            log_file=self.log_file,
            stale_pid_file=pid is not None and not alive,
        )

    # -- start -----------------------------------------------------------------------------
    def server_properties(self) -> dict[str, str]:
        c = self.config
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            # Static voters: no `format --standalone` needed, works on 3.9 and 4.x alike.
            "controller.quorum.voters": f"1@{c.host}:{c.controller_port}",
            "listeners": f"PLAINTEXT://{c.host}:{c.port},CONTROLLER://{c.host}:{c.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{c.host}:{c.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.kafka_log_dir),
            # One broker: internal topics must not ask for 3 replicas, or group commits,
            # transactions and share groups hang or spam INVALID_REPLICATION_FACTOR.
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            # Tests and the demo join groups often: no 3 s wait for more members.
            "group.initial.rebalance.delay.ms": "0",
            # Topics come from topics/topics.toml (`streamrules topics apply`), never by accident.
            "auto.create.topics.enable": "false",
            "num.partitions": "1",
            # Retention is measured on record timestamps, and simulated streams are stamped
            # with (possibly old) event times: check hourly rather than every 5 minutes, so
            # that a test session or a demo does not see its records vanish half-way.
            "log.retention.check.interval.ms": "3600000",
        }
        if c.secure:
            assert c.internal_port is not None
            props.update(
                securebroker.secure_properties(
                    self.secure_files, c.host, c.port, c.internal_port, c.controller_port
                )
            )
        props.update(c.extra_properties)
        return props

    def write_properties(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        lines = ["# Written by streamrules/localkafka.py on every start; edits are overwritten."]
        lines += [f"{k}={v}" for k, v in self.server_properties().items()]
        self.properties_file.write_text("\n".join(lines) + "\n")

    def _jvm_base(self, java: str, classpath: list[str]) -> list[str]:
        return [
            java,
            "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={self.log_dir}",
            f"-Dlog4j2.configurationFile={self.config.log4j2_config}",
            "-cp",
            os.pathsep.join(classpath),
        ]

    def _check_mode(self) -> None:
        """A data folder stays secured or plain: SCRAM users exist only if formatted so."""
        if not (self.kafka_log_dir / "meta.properties").is_file():
            return
        users = securebroker.recorded_users(self.secure_files)
        if self.config.secure and not users:
            raise ConfigError(
                f"the data folder {self.data_dir} was formatted without --secure (it has no "
                "SCRAM users): use another --data-dir, or delete its data/ folder"
            )
        if not self.config.secure and users:
            raise ConfigError(
                f"the data folder {self.data_dir} holds a secured broker: start it with "
                "--secure, or use another --data-dir"
            )
        missing = [u for u in self.config.users if u not in users] if self.config.secure else []
        if missing:
            raise ConfigError(
                f"users {', '.join(missing)} do not exist in {self.data_dir} (SCRAM users are "
                f"made when a data folder is formatted; it has {', '.join(users)})"
            )

    def _format_if_new(self, java: str, classpath: list[str]) -> bool:
        if (self.kafka_log_dir / "meta.properties").is_file():
            return False
        creds = securebroker.new_credentials(self.config.users) if self.config.secure else []
        self.kafka_log_dir.mkdir(parents=True, exist_ok=True)
        # A short-lived tool JVM: the client compiler and serial GC start faster on few cores.
        jvm = self._jvm_base(java, classpath)
        base = [jvm[0], "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", *jvm[1:]]
        cluster_id = new_cluster_id()
        fmt = subprocess.run(
            [
                *base,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(self.properties_file),
                *securebroker.format_scram_args(creds),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if fmt.returncode != 0:
            output = fmt.stdout + fmt.stderr
            for c in creds:  # the tool may echo its arguments
                output = output.replace(c.password, "***")
            raise TransportError(
                f"formatting the Kafka data folder {self.kafka_log_dir} failed: "
                f"{_tail_text(output, 10)}"
            )
        if creds:
            securebroker.write_credentials(self.secure_files, self.bootstrap_servers, creds)
        log.info("formatted %s (cluster id %s)", self.kafka_log_dir, cluster_id)
        return True

    def prepare(self) -> tuple[bool, bool]:
        """Everything before the launch: jars, server.properties, formatting a new folder.

        Returns (Maven had to run, the folder was new). ``start`` does this itself.
        """
        _, resolved, formatted = self._prepare(self.java())
        return resolved, formatted

    def _prepare(self, java: str) -> tuple[list[str], bool, bool]:
        classpath, resolved = self.resolve_classpath()
        self._check_mode()
        if self.config.secure:
            # Throw-away TLS material at every start; the SCRAM users stay with the folder.
            securebroker.write_certificates(self.secure_files, self.config.host)
        self.write_properties()
        formatted = self._format_if_new(java, classpath)
        if self.config.secure and not formatted:
            securebroker.refresh_bootstrap(self.secure_files, self.bootstrap_servers)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        return classpath, resolved, formatted

    def start(self) -> StartResult:
        """Start the broker and wait until it answers metadata requests.

        Idempotent: when this data folder's broker already runs, says so and returns.
        """
        t0 = time.monotonic()
        pid = self.running_pid()
        if pid is not None:
            running_on = self.recorded_bootstrap_servers()
            if running_on != self.bootstrap_servers:
                raise TransportError(
                    f"the broker of {self.data_dir} already runs on {running_on}, not on "
                    f"{self.bootstrap_servers}; stop it first to change its ports"
                )
            self.wait_ready(timeout_s=self.config.start_timeout_s, pid=pid)
            return StartResult(True, pid, running_on, time.monotonic() - t0, False, False)
        if self.pid_file.exists():
            log.warning("removing stale pid file %s", self.pid_file)
            self.pid_file.unlink()
        java = self.java()
        ports = [("port", self.config.port), ("controller port", self.config.controller_port)]
        if self.config.secure and self.config.internal_port is not None:
            ports.append(("internal port", self.config.internal_port))
        for name, port in ports:
            if _port_open(self.config.host, port):
                raise TransportError(
                    f"cannot start the local broker: {name} {self.config.host}:{port} is already "
                    f"in use by another process (not the broker of {self.data_dir}); choose "
                    f"another with --port/--controller-port or {ENV_PORT}/{ENV_CONTROLLER_PORT}"
                )
        classpath, resolved, formatted = self._prepare(java)
        cmd = [
            *self._jvm_base(java, classpath)[:1],
            *self.config.heap.split(),
            *self._jvm_base(java, classpath)[1:],
            "kafka.Kafka",
            str(self.properties_file),
        ]
        with open(self.console_file, "ab") as console:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                # Own session: Ctrl-C in the terminal that ran `broker start` must not kill it.
                start_new_session=True,
            )
        self.pid_file.write_text(f"{proc.pid}\n")
        log.info("started kafka.Kafka pid %d on %s", proc.pid, self.bootstrap_servers)
        try:
            self.wait_ready(timeout_s=self.config.start_timeout_s, pid=proc.pid, popen=proc)
        except BaseException:
            self._terminate(proc)
            raise
        return StartResult(
            False, proc.pid, self.bootstrap_servers, time.monotonic() - t0, resolved, formatted
        )

    def wait_ready(
        self, *, timeout_s: float, pid: int, popen: subprocess.Popen[bytes] | None = None
    ) -> None:
        """Wait until the port accepts and a metadata request lists this broker."""
        from streamrules.transport import kafka_admin  # aiokafka lives in transport/ only

        deadline = time.monotonic() + timeout_s
        while True:
            # With a Popen, trust it: right after the fork /proc/<pid>/cmdline is still ours.
            exited = popen.poll() if popen is not None else None
            gone = exited is not None if popen is not None else not self._is_our_broker(pid)
            if gone:
                raise TransportError(
                    f"the local Kafka broker exited during start-up"
                    f"{f' (exit {exited})' if exited is not None else ''}; "
                    f"last lines of {self.log_file}:\n{self.log_tail(20)}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TransportError(
                    f"the local Kafka broker did not answer on {self.bootstrap_servers} within "
                    f"{timeout_s:.0f} s; last lines of {self.log_file}:\n{self.log_tail(20)}"
                )
            if _port_open(self.config.host, self.config.port):
                try:
                    run_sync(
                        kafka_admin.wait_for_broker(
                            self.bootstrap_servers,
                            timeout_s=min(remaining, 10.0),
                            **self.client_options(),
                        )
                    )
                    return
                except TransportError as exc:
                    log.debug("broker not ready yet: %s", exc)
            time.sleep(0.2)

    # -- stop ------------------------------------------------------------------------------
    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop the broker: SIGTERM (controlled shutdown), wait, then SIGKILL.

        Returns False when no broker of this data folder was running.
        """
        pid = self.running_pid()
        if pid is None:
            if self.pid_file.exists():
                self.pid_file.unlink()
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self._alive(pid):
            time.sleep(0.1)
        if self._alive(pid):
            log.warning("broker pid %d ignored SIGTERM for %.0f s; killing it", pid, timeout_s)
            os.kill(pid, signal.SIGKILL)
            while self._alive(pid):
                time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)
        return True

    def _terminate(self, proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
        """Stop a broker this process started and that never became ready."""
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.pid_file.unlink(missing_ok=True)

    @staticmethod
    def _alive(pid: int) -> bool:
        # Reap our own child first (private test brokers), else it lingers as a zombie.
        try:
            waited, _ = os.waitpid(pid, os.WNOHANG)
            if waited == pid:
                return False
        except ChildProcessError:
            pass
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1]
        except (OSError, IndexError):
            return True
        return state != "Z"

    # -- logs ------------------------------------------------------------------------------
    def log_tail(self, lines: int = 40) -> str:
        parts = []
        for path in (self.console_file, self.log_file):
            if path.is_file() and path.stat().st_size:
                parts.append(_tail_text(read_tail(path), lines))
        return "\n".join(parts) if parts else "(no log yet)"


def read_tail(path: Path, max_bytes: int = 64_000) -> str:
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - max_bytes))
        return fh.read().decode(errors="replace")


def _tail_text(text: str, lines: int) -> str:
    """The last ``lines`` lines, without Java stack frames (they bury the message)."""
    kept = [
        line
        for line in text.rstrip().splitlines()
        if not re.match(r"\s+(at |\.\.\. \d+ more)", line)
    ]
    return "\n".join(kept[-lines:])


def new_cluster_id() -> str:
    """A KRaft cluster id as ``kafka-storage random-uuid`` prints it, without a JVM.

    Kafka's Uuid text is the 16 random bytes of a version-4 UUID in URL-safe base64
    without padding (22 characters); like Kafka, avoid ids that start with "-", which a
    command line would take for an option.
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def kafka_version(pom: Path = DEFAULT_POM) -> str:
    """The Apache Kafka release pinned in the broker's pom (``kafka.version``)."""
    match = re.search(r"<kafka\.version>\s*([^<\s]+)\s*</kafka\.version>", pom.read_text())
    if match is None:
        raise ConfigError(f"{pom}: no <kafka.version> property")
    return match.group(1)


def java_major_version(java: str) -> int:
    """Major version of a ``java`` binary (``17`` for "17.0.15", ``8`` for "1.8.0_392")."""
    try:
        proc = subprocess.run(
            [java, "-version"], capture_output=True, text=True, check=False, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"cannot run {java} -version: {exc}") from None
    return parse_java_version(proc.stderr + proc.stdout)


def parse_java_version(output: str) -> int:
    match = re.search(r'version "(\d+)(?:\.(\d+))?', output)
    if match is None:
        raise ConfigError(f"cannot tell the Java version from: {output.strip()[:200]!r}")
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0" style
        major = int(match.group(2))
    return major


def with_free_ports(config: BrokerConfig) -> BrokerConfig:
    """The same configuration on currently free ports (private test brokers)."""
    ports: list[int] = []
    while len(ports) < (3 if config.secure else 2):
        port = free_port(config.host)
        if port not in ports:
            ports.append(port)
    internal = ports[2] if config.secure else config.internal_port
    return replace(config, port=ports[0], controller_port=ports[1], internal_port=internal)
