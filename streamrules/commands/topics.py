"""``streamrules topics apply|describe``: make a cluster's topics match ``topics/topics.toml``.

Outside the event flow: operations. ``apply`` creates missing topics, grows partition
counts, sets the file's configs, and reports what it cannot change (fewer partitions,
another replication factor) with exit code 1; run again, it changes nothing. Topic names
follow the service's settings (``--orders-topic`` ... / ``STREAMRULES_*_TOPIC``), so the
topics created are those ``streamrules run`` reads and writes. ``apply --acls PRINCIPAL``
also grants PRINCIPAL exactly the ACLs ``run`` needs with these settings (group,
exactly-once), or those of ``produce`` / ``tail`` with ``--acls-for`` (see ``acls.py``).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from streamrules import acls, config
from streamrules.topics import TopicsFile, TopicState, load_topics, plan, plural
from streamrules.transport import kafka_admin

# The admin client names itself (no client_id); the rest of the connection, the topics,
# and what --acls grants.
_SETTINGS = (
    *(name for name in config.CONNECTION_SETTINGS if name != "client_id"),
    *config.TOPIC_SETTINGS,
    "group_id",
    "exactly_once",
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "topics",
        help="create/update the Kafka topics from topics/topics.toml, or describe them",
        description="Make the cluster's topics match topics/topics.toml, or show them.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    apply = actions.add_parser(
        "apply",
        help="create missing topics, add partitions, update configs; report drift",
        description=(
            "Create missing topics, grow partition counts and set configs as topics.toml says. "
            "Differences it cannot fix (fewer partitions wanted, another replication factor) "
            "are reported and make the exit code 1. Idempotent."
        ),
    )
    describe = actions.add_parser(
        "describe", help="show the topics of the file as the cluster has them"
    )
    for action in (apply, describe):
        config.add_arguments(action, _SETTINGS)
        action.add_argument(
            "--file",
            type=Path,
            default=None,
            help="topics file (default topics/topics.toml)",
        )
        action.add_argument(
            "--partitions-override",
            type=int,
            default=None,
            metavar="N",
            help="use N partitions for every topic (e.g. 1 for a laptop)",
        )
        action.add_argument(
            "--replication-factor",
            type=int,
            default=None,
            metavar="N",
            help="use replication factor N for every topic instead of the file's",
        )
        action.set_defaults(func=_run)
    apply.add_argument(
        "--dry-run", action="store_true", help="print what would change, change nothing"
    )
    apply.add_argument(
        "--acls",
        metavar="PRINCIPAL",
        default=None,
        help="also allow PRINCIPAL (User:NAME) exactly what `streamrules run` needs with "
        "these settings (--group-id, --exactly-once, topic names); needs an authorizer",
    )
    apply.add_argument(
        "--acls-for",
        choices=acls.ROLES,
        default="run",
        help="whose permissions --acls grants: run (default), produce or tail",
    )


def _wanted(args: argparse.Namespace, settings: config.Settings) -> TopicsFile:
    topics = load_topics(args.file).with_overrides(
        partitions=args.partitions_override, replication_factor=args.replication_factor
    )
    return topics.renamed(settings.topic_names)


def _run(args: argparse.Namespace) -> int:
    settings = config.load_settings(args)
    wanted = _wanted(args, settings)
    bootstrap, options = kafka_admin.settings_options(settings)
    principal = getattr(args, "acls", None)
    wanted_acls = acls.acls_for(args.acls_for, principal, settings) if principal is not None else []
    if args.action == "describe":
        state = asyncio.run(kafka_admin.describe_topics(bootstrap, wanted.names, **options))
        _print_describe(wanted, state)
        return 0
    current = asyncio.run(kafka_admin.describe_topics(bootstrap, wanted.names, **options))
    todo = plan(wanted.topics, current)
    prefix = "would " if args.dry_run else ""
    for line in todo.describe():
        print(line if line.startswith("drift") else prefix + line)
    if not args.dry_run and todo.has_changes:
        asyncio.run(kafka_admin.apply_plan(bootstrap, todo, **options))
    if todo.unchanged and not todo.has_changes and not todo.drift:
        print(f"topics up to date on {bootstrap}: {', '.join(wanted.names)}")
    elif todo.unchanged:
        print(f"unchanged: {', '.join(todo.unchanged)}")
    if wanted_acls:
        _apply_acls(bootstrap, wanted_acls, args.dry_run, **options)
    if todo.drift:
        print(f"{len(todo.drift)} difference(s) left that apply cannot fix (see 'drift' above)")
        return 1
    return 0


def _apply_acls(bootstrap: str, wanted: list[acls.Acl], dry_run: bool, **options: Any) -> None:
    if dry_run:
        have = set(
            asyncio.run(kafka_admin.describe_acls(bootstrap, wanted[0].principal, **options))
        )
        created = [a for a in wanted if a not in have]
    else:
        created = asyncio.run(kafka_admin.create_acls(bootstrap, wanted, **options))
    prefix = "would " if dry_run else ""
    for acl in created:
        print(f"{prefix}create ACL: {acl}")
    if not created:
        print(f"ACLs up to date for {wanted[0].principal} ({len(wanted)})")


def _print_describe(wanted: TopicsFile, state: dict[str, TopicState]) -> None:
    keys = sorted({k for t in wanted.topics for k in t.configs})
    for spec in wanted.topics:
        have = state.get(spec.name)
        if have is None:
            print(
                f"{spec.name}: missing (wanted: {spec.partitions} partitions, "
                f"rf {spec.replication_factor})"
            )
            continue
        marks = []
        if have.partitions != spec.partitions:
            marks.append(f"file wants {spec.partitions} partitions")
        if have.replication_factor != spec.replication_factor:
            marks.append(f"file wants rf {spec.replication_factor}")
        print(
            f"{spec.name}: {plural(have.partitions, 'partition')}, rf {have.replication_factor}"
            + (f"  [{'; '.join(marks)}]" if marks else "")
        )
        for key in keys:
            value = have.configs.get(key, "?")
            want = spec.configs.get(key)
            flag = f"  [file wants {want}]" if want is not None and want != value else ""
            print(f"    {key} = {value}{flag}")
