"""Rule pack ``discounts`` (contract section 6): one ``discount`` decision per order.

Load it with ``--rules streamrules.packs.discounts`` (it is on by default).

The decision, key ``customer_id``::

    {"order_id": "o-1", "customer_id": "c-7", "discount_pct": 20, "reasons": ["logged_in"]}

The discount is worked out in plain Python (``discount_for``) and the production only
says when it applies: every new order, once. Orders are never modified, so the match
never fires twice; a duplicate ``order_placed`` never becomes a second fact.
"""

from __future__ import annotations

from typing import Any

from streamrules.facts import Order, RuleContext
from streamrules.rete import Fact, Production, V

__all__ = ["FRIDAY", "discount", "discount_for"]

FRIDAY = 4  # datetime.weekday(): Monday is 0
LOGGED_IN_PCT = 20
MORE_THAN_2_ITEMS_PCT = 30


def discount_for(order: Fact) -> tuple[int, list[str]]:
    """``(discount_pct, reasons)`` of an order, as section 6 defines them.

    "if the order's ts falls on a Friday (UTC): discount_pct 0, reasons ["friday"];
    else the candidates are 20 if logged_in (reason logged_in) and 30 if the item count
    is more than 2 (reason more_than_2_items); discount_pct is the largest candidate
    (discounts do not stack), 0 if none; reasons lists the applicable reasons, sorted."
    """
    if order["weekday"] == FRIDAY:  # the fact's weekday is taken in UTC
        return 0, ["friday"]
    pct = 0  # the largest candidate so far: discounts do not stack
    reasons: list[str] = []
    if order["logged_in"]:
        pct = max(pct, LOGGED_IN_PCT)
        reasons.append("logged_in")
    if order["item_count"] > 2:
        pct = max(pct, MORE_THAN_2_ITEMS_PCT)
        reasons.append("more_than_2_items")
    return pct, sorted(reasons)


@Production(V("order") << Order(), name="discount")
def discount(order: Fact, ctx: RuleContext) -> None:
    """Exactly one ``discount`` decision per order (``order_id``), key ``customer_id``,
    payload ``{"order_id", "customer_id", "discount_pct", "reasons"}``."""
    pct, reasons = discount_for(order)
    payload: dict[str, Any] = {
        "order_id": order["order_id"],
        "customer_id": order["customer_id"],
        "discount_pct": pct,
        "reasons": reasons,
    }
    ctx.emit(order["customer_id"], payload)
