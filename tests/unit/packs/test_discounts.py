"""The discounts pack, rule by rule against CONTRACT.md section 6 (and sections 1-3)."""

from __future__ import annotations

from streamrules.facts import Order
from streamrules.testing import RulesTestDriver
from tests.oracle.events import order


def drive() -> RulesTestDriver:
    return RulesTestDriver(["streamrules.packs.discounts"])


def only_payload(d: RulesTestDriver) -> dict[str, object]:
    (decision,) = d.decisions_of("discount")
    return dict(decision.payload)


def test_logged_in_gives_20() -> None:
    d = drive()
    d.send(order(logged_in=True, items=[(1, 10)]))
    assert only_payload(d) == {
        "order_id": "o-1",
        "customer_id": "c-7",
        "discount_pct": 20,
        "reasons": ["logged_in"],
    }


def test_more_than_2_items_gives_30_counting_quantities() -> None:
    d = drive()
    d.send(order(items=[(2, 10), (1, 5)]))  # item count 3 from two lines
    assert only_payload(d)["discount_pct"] == 30
    assert only_payload(d)["reasons"] == ["more_than_2_items"]


def test_exactly_2_items_is_not_more_than_2() -> None:
    d = drive()
    d.send(order(items=[(2, 10)]))
    assert only_payload(d)["discount_pct"] == 0
    assert only_payload(d)["reasons"] == []


def test_discounts_do_not_stack_and_reasons_are_sorted() -> None:
    d = drive()
    d.send(order(logged_in=True, items=[(3, 1)]))
    assert only_payload(d)["discount_pct"] == 30
    assert only_payload(d)["reasons"] == ["logged_in", "more_than_2_items"]


def test_no_reason_gives_0_and_an_empty_list() -> None:
    d = drive()
    d.send(order(items=[]))
    assert only_payload(d)["discount_pct"] == 0
    assert only_payload(d)["reasons"] == []


def test_friday_utc_overrides_everything() -> None:
    d = drive()
    d.send(order(ts="2026-11-27T10:00:00Z", logged_in=True, items=[(5, 1)]))
    assert only_payload(d)["discount_pct"] == 0
    assert only_payload(d)["reasons"] == ["friday"]


def test_friday_just_after_local_midnight_is_thursday_in_utc() -> None:
    d = drive()
    # 00:30 on Friday in +02:00 is 22:30 on Thursday UTC: not a Friday
    d.send(order(ts="2026-11-27T00:30:00+02:00", logged_in=True))
    assert only_payload(d)["reasons"] == ["logged_in"]
    assert d.decisions[0].event_time == "2026-11-26T22:30:00Z"


def test_thursday_evening_west_of_utc_is_friday_in_utc() -> None:
    d = drive()
    d.send(order(ts="2026-11-26T21:00:00-05:00", logged_in=True))  # Fri 02:00 UTC
    assert only_payload(d)["reasons"] == ["friday"]


def test_saturday_after_friday_is_not_friday() -> None:
    d = drive()
    d.send(order(ts="2026-11-28T00:00:00Z", logged_in=True))
    assert only_payload(d)["reasons"] == ["logged_in"]


def test_decision_shape_key_time_and_facts() -> None:
    d = drive()
    d.send(order("o-9", "2026-11-26T12:00:00+01:00", customer_id="c-3"))
    (dec,) = d.decisions
    assert dec.rule == "discount"
    assert dec.key == "c-3"
    assert dec.event_time == "2026-11-26T11:00:00Z"
    assert dec.facts == ({"type": "Order", "id": "o-9"},)
    assert len(dec.decision_id) == 32


def test_exactly_one_decision_per_order_duplicates_ignored_and_counted() -> None:
    d = drive()
    d.send(order("o-1", "2026-11-26T10:00:00Z", logged_in=True))
    d.send(order("o-1", "2026-11-26T10:00:30Z", logged_in=False))  # redelivered, changed
    d.send(order("o-2", "2026-11-26T10:01:00Z"))
    assert [dec.payload["order_id"] for dec in d.decisions] == ["o-1", "o-2"]
    assert d.stats()["duplicates"] == 1
    assert len(d.facts(Order)) == 2


def test_order_fact_lives_one_hour() -> None:
    d = drive()
    d.send(order("o-1", "2026-11-26T10:00:00Z", items=[(2, 12.5)]))
    (fact,) = d.facts(Order)
    assert fact["item_count"] == 2 and fact["total"] == 25.0 and fact["weekday"] == 3
    assert d.expiry_of(fact) == "2026-11-26T11:00:00Z"
    d.advance_to("2026-11-26T10:59:59.999Z")
    assert len(d.facts(Order)) == 1
    d.advance_to("2026-11-26T11:00:00Z")
    assert d.facts(Order) == []
    # once expired, the same order id is a new order, not a duplicate
    d.send(order("o-1", "2026-11-26T11:00:00Z"))
    assert len(d.decisions) == 2 and d.stats()["duplicates"] == 0


def test_discount_for_every_case_against_the_contract_text() -> None:
    from itertools import product

    from streamrules.packs.discounts import discount_for

    def contract(weekday: int, logged_in: bool, item_count: int) -> tuple[int, list[str]]:
        # Section 6, word for word: candidates, the largest one (0 if none), reasons sorted.
        if weekday == 4:
            return 0, ["friday"]
        candidates = {}
        if logged_in:
            candidates["logged_in"] = 20
        if item_count > 2:
            candidates["more_than_2_items"] = 30
        return max(candidates.values(), default=0), sorted(candidates)

    for weekday, logged_in, item_count in product(range(7), (False, True), range(6)):
        fact = Order(weekday=weekday, logged_in=logged_in, item_count=item_count)
        assert discount_for(fact) == contract(weekday, logged_in, item_count)
