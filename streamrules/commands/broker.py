"""``streamrules broker start|stop|status|logs``: the local Kafka broker (outside the flow).

A thin command-line face of :mod:`streamrules.localkafka`. Flags override the
``STREAMRULES_BROKER_*`` environment variables, which override the defaults
(127.0.0.1:9092, controller 9093, data folder ``.kafka/`` in the repository).
``start --secure`` runs the secured variant (:mod:`streamrules.securebroker`) and prints
what a client needs: the bootstrap address, the CA file and each user's client file.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from streamrules import securebroker
from streamrules.localkafka import BrokerConfig, LocalKafka, kafka_version, read_tail


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "broker",
        help="run a local Apache Kafka broker (from Maven Central jars, no Docker)",
        description=(
            "Run a single-node KRaft Kafka broker on 127.0.0.1 for development, tests and "
            "the demo. The first start fetches the jars with Maven."
        ),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    for name, text in (
        ("start", "start the broker in the background (does nothing when it runs)"),
        ("stop", "stop the broker (SIGTERM, then kill)"),
        ("status", "say whether the broker runs; exit 0 when it does, 3 when not"),
        ("logs", "print the end of the broker's log"),
        (
            "fetch",
            "resolve the Kafka jars with Maven (no-op when cached); print the classpath size",
        ),
    ):
        action = actions.add_parser(name, help=text, description=text)
        _common_flags(action)
        if name == "start":
            action.add_argument(
                "--timeout",
                type=float,
                default=None,
                help="seconds to wait for the broker to answer (default 90, "
                "env STREAMRULES_BROKER_START_TIMEOUT)",
            )
            action.add_argument(
                "--heap", default=None, help="JVM heap flags (default '-Xms512m -Xmx1g')"
            )
            action.add_argument(
                "--secure",
                action="store_true",
                help="a secured broker: SASL_SSL (SCRAM-SHA-512) clients only, a throw-away "
                "CA, ACLs enforced; prints the client settings' files",
            )
            action.add_argument(
                "--internal-port",
                type=int,
                default=None,
                help="--secure: the broker's own TLS listener (default port + 2, "
                "env STREAMRULES_BROKER_INTERNAL_PORT)",
            )
            action.add_argument(
                "--user",
                action="append",
                default=None,
                metavar="NAME",
                help="--secure: a SCRAM user to create with a new data folder (repeatable; "
                f"default {', '.join(securebroker.DEFAULT_USERS)}; {securebroker.ADMIN_USER} "
                "is always made, a super user)",
            )
        if name == "logs":
            action.add_argument("-n", "--lines", type=int, default=50, help="lines to print")
            action.add_argument(
                "-f", "--follow", action="store_true", help="keep printing new lines"
            )
        action.set_defaults(func=_run)


def _common_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help="client port (default 9092, env STREAMRULES_BROKER_PORT)",
    )
    parser.add_argument(
        "--controller-port",
        type=int,
        default=None,
        help="KRaft controller port (default 9093, env STREAMRULES_BROKER_CONTROLLER_PORT)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="data folder: Kafka data, logs, pid file "
        "(default .kafka/, env STREAMRULES_BROKER_DATA_DIR)",
    )


def _broker(args: argparse.Namespace) -> LocalKafka:
    secure = bool(getattr(args, "secure", False))
    users = getattr(args, "user", None)
    config = BrokerConfig.from_env(
        port=args.port,
        controller_port=args.controller_port,
        data_dir=args.data_dir,
        start_timeout_s=getattr(args, "timeout", None),
        heap=getattr(args, "heap", None),
        secure=secure or None,
        internal_port=getattr(args, "internal_port", None) if secure else None,
        users=(securebroker.ADMIN_USER, *users) if users else None,
    )
    return LocalKafka(config)


def _print_secure(broker: LocalKafka) -> None:
    """What a client of the secured broker needs; the passwords stay in the files."""
    files = broker.secure_files
    print(f"  bootstrap: {broker.bootstrap_servers} (SASL_SSL, {securebroker.MECHANISM})")
    print(f"  CA file:   {files.ca}")
    for user in securebroker.recorded_users(files):
        role = " (super user)" if user == securebroker.ADMIN_USER else ""
        print(f"  user {user}{role}: --config {files.client_file(user)}")
    print(
        "  users other than admin may do nothing until ACLs allow it: "
        "streamrules topics apply --acls User:NAME --config <admin's file>"
    )


def _run(args: argparse.Namespace) -> int:
    broker = _broker(args)
    action: str = args.action
    if action == "start":
        result = broker.start()
        if result.already_running:
            print(f"broker already running (pid {result.pid}) on {result.bootstrap_servers}")
        else:
            extra = []
            if result.resolved_classpath:
                extra.append("jars fetched with Maven")
            if result.formatted:
                extra.append(f"new data folder {broker.data_dir}")
            note = f" ({', '.join(extra)})" if extra else ""
            print(
                f"Kafka {kafka_version(broker.config.pom)} started (pid {result.pid}) on "
                f"{result.bootstrap_servers} "
                f"in {result.seconds:.1f} s{note}; log: {broker.log_file}"
            )
        if broker.config.secure:
            _print_secure(broker)
        return 0
    if action == "fetch":
        classpath, resolved = broker.resolve_classpath()
        how = "fetched with Maven" if resolved else "already cached"
        print(f"{len(classpath)} jars {how} (pom {broker.config.pom})")
        return 0
    if action == "stop":
        if broker.stop():
            print("broker stopped")
        else:
            print(f"no broker running for {broker.data_dir}")
        return 0
    if action == "status":
        status = broker.status()
        if status.running:
            print(
                f"running (pid {status.pid}) on {status.bootstrap_servers}; "
                f"data {status.data_dir}; log {status.log_file}"
            )
            return 0
        stale = " (stale pid file; the next start removes it)" if status.stale_pid_file else ""
        print(f"not running{stale}; data folder {status.data_dir}")
        return 3
    # logs
    if not broker.log_file.is_file():
        print(f"no log yet at {broker.log_file}", file=sys.stderr)
        return 1
    print(_tail(broker.log_file, args.lines))
    if args.follow:
        _follow(broker.log_file)
    return 0


def _tail(path: Path, lines: int) -> str:
    return "\n".join(read_tail(path).rstrip().splitlines()[-lines:])


def _follow(path: Path) -> None:
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        while True:
            chunk = fh.read()
            if chunk:
                sys.stdout.write(chunk.decode(errors="replace"))
                sys.stdout.flush()
            else:
                time.sleep(0.5)
