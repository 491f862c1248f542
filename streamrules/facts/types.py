"""Facts stage, the fact types: what input events become inside the network.

These are the classes rule authors write patterns against. A fact is a dict (a
``streamrules.rete.Fact``); a pattern ``Order(...)`` matches only ``Order`` facts.

State facts live for a while (contract section 2):

``Order``
    ``order_id``, ``customer_id``, ``logged_in`` (bool), ``item_count`` (sum of qty),
    ``total`` (sum of qty * price, a float), ``ts_ms`` (event time, epoch ms) and
    ``weekday`` (0 = Monday ... 4 = Friday ... 6 = Sunday, **in UTC**). Lives 1 hour after
    ``ts``.
``Incident``
    ``incident_id``, ``service``, ``severity`` (1 worst .. 4), ``opened_ms``,
    ``acknowledged`` (bool; an acknowledgement modifies the fact) and ``acknowledged_ms``
    (``None`` until acknowledged). Lives until resolved or 7 days after it opened.

Event facts exist only while the event that made them is processed: they are asserted
with the event and retracted once the agenda is empty. Rules use them to react to
something that happened rather than to a state:

``IncidentOpened``
    ``incident_id``, ``service``, ``severity``, ``ts_ms``: a (non-duplicate) opening.
``IncidentResolved``
    ``incident_id``, ``service``, ``severity``, ``opened_ms``, ``resolved_ms`` and
    ``downtime_ms`` (resolved - opened, never below 0): the incident fact is retracted in
    the same step.

Every fact type names the field that identifies it (``id_field``); a decision lists its
facts as ``{"type": <class name>, "id": <that field>}`` (see ``fact_id``).

A fact type is *global* (``global_fact = True``) when every instance of the service holds
all of its facts, whichever partitions it owns: the incident types are, since every
instance reads every incidents partition (contract section 5). A decision whose facts are
all global, and whose cause is not an order, is published by one instance only (see
``streamrules.app``); declare a type of your own global only if its facts come from
global facts alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Set
from typing import Any, ClassVar

import orjson

from streamrules.errors import RuleError
from streamrules.rete import Fact

__all__ = [
    "INCIDENT_TTL_MS",
    "ORDER_TTL_MS",
    "Incident",
    "IncidentOpened",
    "IncidentResolved",
    "Order",
    "canonical_json",
    "fact_id",
    "fact_ref",
    "fact_refs",
    "fact_refs_and_objects",
    "is_global_type",
]

ORDER_TTL_MS = 60 * 60 * 1000
INCIDENT_TTL_MS = 7 * 24 * 60 * 60 * 1000


class Order(Fact):
    """A placed order, live for 1 hour after its ``ts``."""

    id_field: ClassVar[str] = "order_id"


class Incident(Fact):
    """An open incident, live until resolved or 7 days after it opened."""

    id_field: ClassVar[str] = "incident_id"
    global_fact: ClassVar[bool] = True


class IncidentOpened(Fact):
    """Event fact: an incident was opened (duplicates never make one)."""

    id_field: ClassVar[str] = "incident_id"
    global_fact: ClassVar[bool] = True


class IncidentResolved(Fact):
    """Event fact: a live incident was resolved; carries its downtime."""

    id_field: ClassVar[str] = "incident_id"
    global_fact: ClassVar[bool] = True


_GLOBAL_TYPES: dict[str, bool] = {}


def is_global_type(name: str) -> bool:
    """Whether the fact type named ``name`` (a decision's ``facts[].type``) is declared
    global (``global_fact = True``); an unknown name is not."""
    known = _GLOBAL_TYPES.get(name)
    if known is None:
        # Types are looked up by name, as decisions name them; new ones (rule files
        # loaded later) are found on their first miss.
        known = False
        todo: list[type[Fact]] = [Fact]
        while todo:
            cls = todo.pop()
            todo.extend(cls.__subclasses__())
            if cls.__name__ == name and getattr(cls, "global_fact", False):
                known = True
        _GLOBAL_TYPES[name] = known
    return known


_CANONICAL = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def _canonical_default(value: Any) -> Any:
    # Sets have no order of their own (and their iteration order follows string hashes,
    # which change per process): sorted by their elements' own canonical encodings.
    if isinstance(value, Set):
        return [orjson.loads(b) for b in sorted(canonical_json(v) for v in value)]
    raise TypeError(f"{type(value).__name__} has no canonical encoding")


def canonical_json(value: Any) -> bytes:
    """A canonical encoding of ``value`` (contract section 3: the same in every process,
    never from ``repr``, ``id`` or string hashes): JSON with sorted keys, tuples as arrays,
    sets as sorted arrays, datetimes, enums and dataclasses as orjson writes them.
    ``TypeError`` for a value with none (an arbitrary object)."""
    return orjson.dumps(value, default=_canonical_default, option=_CANONICAL)


def _text_id(value: Any, where: str, fact: Mapping[str, Any]) -> str:
    """An id field's value as the decision's text: a string as it is, an int or a bool as
    ``str`` gives it, anything else as its canonical encoding."""
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    try:
        return canonical_json(value).decode()
    except TypeError as exc:
        raise _no_encoding(fact, where, exc) from exc


def _no_encoding(fact: Mapping[str, Any], where: str, exc: TypeError) -> RuleError:
    return RuleError(
        f"fact {type(fact).__name__} cannot be given a deterministic id: {where} holds a "
        f"value with no canonical encoding ({exc}); give the fact type an id_field "
        "holding a string, or use JSON values, sets and tuples in it"
    )


def fact_id(fact: Mapping[str, Any]) -> str:
    """The id a decision gives this fact.

    The field named by the class's ``id_field`` when it has one, else an ``id`` field, else
    a digest of the fact's content in a canonical encoding (``canonical_json``), so that
    decision ids are the same in every run and every process. A ``RuleError`` names a fact
    whose content has no canonical encoding.
    """
    field: str | None = getattr(type(fact), "id_field", None)
    if field is not None and field in fact:
        return _text_id(fact[field], f"its id field {field!r}", fact)
    if "id" in fact:
        return _text_id(fact["id"], "its id field 'id'", fact)
    try:
        text = canonical_json(dict(fact))
    except TypeError as exc:
        raise _no_encoding(fact, "its content", exc) from exc
    return hashlib.sha256(text).hexdigest()[:16]


def fact_ref(fact: Mapping[str, Any]) -> tuple[str, str]:
    """``(type name, id)`` of a fact, as a decision's ``facts`` lists it."""
    return type(fact).__name__, fact_id(fact)


# fact class -> (class name, its id field or None): one dict lookup per fact in a decision
# instead of a getattr and a name lookup (every decision lists its facts).
_REF_OF: dict[type, tuple[str, str | None]] = {}


def fact_refs(facts: Iterable[Mapping[str, Any]]) -> tuple[tuple[str, str], ...]:
    """``fact_ref`` of each fact."""
    return tuple(fact_refs_and_objects(facts)[0])


def fact_refs_and_objects(
    facts: Iterable[Mapping[str, Any]],
) -> tuple[list[tuple[str, str]], tuple[dict[str, str], ...]]:
    """``fact_refs`` of ``facts`` (as a list), and the same refs as a decision's ``facts``
    lists them, ``{"type": name, "id": id}``: both in one pass, once per firing (the
    pipeline's path: the pairs go into the decision id, the objects into the decision)."""
    refs = []
    objects = []
    for fact in facts:
        cls = type(fact)
        known = _REF_OF.get(cls)
        if known is None:
            known = _REF_OF[cls] = (cls.__name__, getattr(cls, "id_field", None))
        name, field = known
        if field is not None and field in fact:
            fid = fact[field]
            if type(fid) is not str:
                fid = _text_id(fid, f"its id field {field!r}", fact)
        else:
            fid = fact_id(fact)
        refs.append((name, fid))
        objects.append({"type": name, "id": fid})
    return refs, tuple(objects)
