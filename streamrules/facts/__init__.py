"""Facts stage: events become facts on an event-time clock.

Fact types (``Order``, ``Incident``, ``IncidentOpened``, ``IncidentResolved``), the clock
(watermark, allowed lateness), the expiry index (expiries and timers), working memory and
the ``ctx`` that rule actions receive. ``streamrules.pipeline`` drives them.
"""

from streamrules.facts.clock import DEFAULT_ALLOWED_LATENESS_MS, EventClock
from streamrules.facts.context import Emission, RuleContext
from streamrules.facts.expiry import Due, ExpiryIndex
from streamrules.facts.mapping import EventMapper, order_fact
from streamrules.facts.memory import WorkingMemory
from streamrules.facts.types import (
    INCIDENT_TTL_MS,
    ORDER_TTL_MS,
    Incident,
    IncidentOpened,
    IncidentResolved,
    Order,
    fact_id,
    fact_ref,
)

__all__ = [
    "DEFAULT_ALLOWED_LATENESS_MS",
    "INCIDENT_TTL_MS",
    "ORDER_TTL_MS",
    "Due",
    "Emission",
    "EventClock",
    "EventMapper",
    "ExpiryIndex",
    "Incident",
    "IncidentOpened",
    "IncidentResolved",
    "Order",
    "RuleContext",
    "WorkingMemory",
    "fact_id",
    "fact_ref",
    "order_fact",
]
