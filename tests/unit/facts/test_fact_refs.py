"""How a decision names its facts: ``fact_ref`` and the pipeline's ``fact_refs_and_objects``."""

from __future__ import annotations

from typing import ClassVar

from streamrules.facts import Incident, Order
from streamrules.facts.types import fact_ref, fact_refs, fact_refs_and_objects
from streamrules.rete import Fact


class Numbered(Fact):
    id_field: ClassVar[str] = "n"


class Plain(Fact):
    pass


def test_refs_and_objects_are_fact_refs_in_both_shapes() -> None:
    facts = [
        Order(order_id="o-\u00e9", customer_id="c-1"),
        Incident(incident_id="i-1", service="payments"),
        Numbered(n=7),  # an id that is not a str
        Numbered(m=1, id="fallback"),  # its id field missing: the id field
        Plain(id=3.5),
        Plain(a=[1, 2], b="x"),  # neither: a digest of the content
        Order(order_id="o-\u00e9", customer_id="c-1"),  # twice in one match
    ]
    refs, objects = fact_refs_and_objects(facts)
    assert refs == [fact_ref(f) for f in facts] == list(fact_refs(facts))
    assert refs[2] == ("Numbered", "7") and refs[3] == ("Numbered", "fallback")
    assert isinstance(objects, tuple)
    assert objects == tuple({"type": t, "id": i} for t, i in refs)
    assert fact_refs_and_objects([]) == ([], ())
