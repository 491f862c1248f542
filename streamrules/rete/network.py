"""The network (engine entry point): facts in, matches and firings out.

``ReteNetwork`` owns the alpha network, the beta network and the agenda, and runs every
change as one operation: propagate, then run what had to wait until the network was
consistent again (unblocked negations, re-emitted aggregates, retraction of logical
facts whose support went), then report errors raised by user tests.
"""

from __future__ import annotations

import gc
import heapq
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from streamrules.errors import RuleError, RuleValueError
from streamrules.rete.agenda import Agenda, Listener, Match
from streamrules.rete.alpha import AlphaMemory, _depth_key, idx_add, idx_remove
from streamrules.rete.beta import BetaMemory, Node, PNode
from streamrules.rete.compiler import NET_ARG, OTHER_ARG, Compiler, dnf
from streamrules.rete.conditions import V
from streamrules.rete.cross import CrossJoinNode
from streamrules.rete.fact import SELF, WME, Fact, user_value
from streamrules.rete.negative import NccNode
from streamrules.rete.production import Production
from streamrules.rete.tokens import Token, kill_many, tokens_of, untrack_children

log = logging.getLogger(__name__)

_new_wme = object.__new__

# Value types that need no look inside when a fact is snapshot.
_PLAIN = frozenset({str, int, float, bool, type(None), bytes})
# Argument slots of actions, one tuple per distinct value (shared, so hot), and the
# keywords of a positional call.
_ARGS: dict[tuple[int, ...], tuple[int, ...]] = {}
_NO_KW: dict[str, Any] = {}

_HOOKS = (
    "on_assert",
    "on_retract",
    "on_modify",
    "on_activation_added",
    "on_activation_removed",
    "on_fire",
)


def _same_value(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    try:
        return bool(a == b)
    except Exception:
        return False


class ReteNetwork:
    """A forward-chaining production system (py-rete's API on a Rete/UL matcher)."""

    def __init__(self) -> None:
        from streamrules.rete.alpha import AlphaNetwork

        self.alpha = AlphaNetwork()
        self.root = BetaMemory(self, None)
        self._dummy = Token(None, None, self.root, ())
        untrack_children(self._dummy)
        self.root.items[self._dummy] = None
        self.agenda = Agenda()
        self._wmes: dict[int, WME] = {}
        self._tag = 0
        self._gen = 0
        self._prods: dict[Production, list[PNode]] = {}
        self._porder = 0
        self._listeners: list[Listener] = []
        # Per hook, the listeners that override it: a no-op hook costs nothing per event.
        self._hooks: dict[str, list[Listener]] = {h: [] for h in _HOOKS}
        # Read for every activation: one attribute instead of two dictionary lookups.
        self._watch_activations = False
        # The per-fact hooks, read on every assert, retract and firing.
        self._on_assert: list[Listener] = []
        self._on_retract: list[Listener] = []
        self._on_fire: list[Listener] = []
        self._injected: dict[str, Any] = {}
        self._deferred: list[tuple[Callable[..., None], tuple[Any, ...]]] = []
        self._errors: list[RuleError] = []
        self._logical_gone: list[WME] = []
        self._busy = False
        self._gc_paused = False
        self._firing: Token | None = None
        self._firing_count = 0  # the activation of _firing (a modify may renew the token)
        # The pending matches taken by get_new_match (token: count of the activation).
        self._taken: dict[Token, int] = {}

    # -- operations --------------------------------------------------------------------

    def _begin(self) -> None:
        if self._busy:
            raise RuleError(
                "the network cannot be changed while it is matching (from a listener or a test)"
            )
        self._busy = True
        # A change allocates and frees many tokens that point at each other; letting the
        # cyclic collector run in the middle of it costs a quarter of the time and finds
        # nothing (dead tokens are freed by reference counting). It runs after instead.
        if gc.isenabled():
            gc.disable()
            self._gc_paused = True

    def _end(self) -> None:
        try:
            deferred = self._deferred
            if deferred:
                i = 0
                while i < len(deferred):
                    fn, args = deferred[i]
                    fn(*args)
                    i += 1
        finally:
            if self._deferred:
                self._deferred = []
            self._busy = False
            if self._gc_paused:
                self._gc_paused = False
                gc.enable()
        if not self._logical_gone and not self._errors:
            return
        while self._logical_gone:
            w = self._logical_gone.pop()
            if w.alive and w.support is not None and not w.support:
                self._begin()
                try:
                    self._retract(w)
                finally:
                    self._end()
        if self._errors:
            err = self._errors[0]
            self._errors.clear()
            raise err

    def _defer(self, t: Token) -> None:
        self._deferred.append((t.node.unblock, (t,)))  # type: ignore[attr-defined]

    def _defer_call(self, fn: Callable[..., None], *args: Any) -> None:
        self._deferred.append((fn, args))

    def _listener_error(self, lst: Listener, exc: Exception) -> None:
        err = RuleError(f"listener {type(lst).__name__} raised {type(exc).__name__}: {exc}")
        err.__cause__ = exc
        self._errors.append(err)

    def _user_error(self, exc: Exception, what: tuple[str, str]) -> None:
        err = RuleError(f"{type(exc).__name__}: {exc}", production=what[0], condition=what[1])
        err.__cause__ = exc
        log.warning("rule test failed: %s", err)
        self._errors.append(err)

    # -- productions ---------------------------------------------------------------------

    def add_production(self, prod: Production) -> None:
        """Compile a production into the network; matches on existing facts appear at once."""
        if not isinstance(prod, Production):
            raise RuleError(f"add_production needs a Production, got {type(prod).__name__}")
        if prod.__wrapped__ is None:
            raise RuleError(
                "the production has no action (use @Production(...) on a function)",
                production=prod.name,
            )
        if prod in self._prods:
            raise RuleValueError("the production is already in this network", production=prod.name)
        branches = dnf(prod.pattern, prod.name)
        self._begin()
        try:
            order = self._porder
            self._porder += 1
            comp = Compiler(self, prod)
            pnodes: list[PNode] = []
            try:
                for br in branches:
                    pnodes.append(comp.production(br, order))
            except BaseException:
                for pn in pnodes:
                    self._destroy_up(pn)
                for node in reversed(comp.created):
                    if (
                        not node.all_children
                        and node.parent is not None
                        and (node in node.parent.all_children)
                    ):
                        self._destroy_up(node)
                raise
            self._prods[prod] = pnodes
            for pn in pnodes:
                self._plan_args(pn)
        finally:
            self.alpha.settle()
            self._end()

    def remove_production(self, prod: Production) -> None:
        """Remove a production, its matches and the nodes no other production uses."""
        pnodes = self._prods.pop(prod, None)
        if pnodes is None:
            raise RuleValueError("the production is not in this network", production=prod.name)
        self._begin()
        try:
            for pn in pnodes:
                self._destroy_up(pn)
        finally:
            self._end()

    def _destroy_up(self, node: Node) -> None:
        work = [node]
        while work:
            n = work.pop()
            if n.all_children or n is self.root:
                continue
            if n.parent is not None and n not in n.parent.all_children:
                continue
            parent = n.parent
            n.destroy()
            if isinstance(n, NccNode):
                work.append(n.partner)
            for amem in n.inputs():
                if not amem.nodes and amem.key in self.alpha.memories:
                    self.alpha.drop(amem)
            if parent is not None:
                work.append(parent)

    @property
    def productions(self) -> list[Production]:
        return list(self._prods)

    # -- facts -----------------------------------------------------------------------------

    def _wmes_of(self, cls: type) -> Iterable[WME]:
        # Only when a production builds a new alpha memory: a scan, rather than an index
        # by type kept up to date on every assert and retract.
        return [w for w in self._wmes.values() if w.cls is cls]

    def _snapshot(self, f: Fact, seen: set[int] | None) -> dict[Any, Any]:
        """The values of ``f`` as the network keeps them; ``seen``: the facts whose
        snapshot is being taken around this one (to refuse a fact containing itself)."""
        d: dict[Any, Any] = dict(f)
        for k, v in d.items():
            if type(v) not in _PLAIN or type(k) not in _PLAIN:
                self._slow_snapshot(f, d, {id(f)} if seen is None else seen | {id(f)})
                break
        return d

    def _slow_snapshot(self, f: Fact, d: dict[Any, Any], seen: set[int]) -> None:
        for k, v in f.items():
            if isinstance(v, (V, Fact, list, tuple)) or type(k) is V:
                if isinstance(v, V) or isinstance(k, V):
                    raise RuleValueError(f"a fact cannot hold a variable: {f!r}")
                if isinstance(v, Fact):
                    sub = self._wmes.get(id(v))
                    if sub is None:
                        if id(v) in seen:
                            raise RuleValueError(f"a fact cannot contain itself: {f!r}")
                        sub = self._assert(v, seen)
                    d[k] = sub
                    continue
                if isinstance(v, (list, tuple)) and any(isinstance(x, V) for x in v):
                    raise RuleValueError(f"a fact cannot hold a variable: {f!r}")

    def _assert(self, f: Fact, seen: set[int] | None = None) -> WME:
        d = self._snapshot(f, seen)
        self._tag += 1
        cls = type(f)
        w = _new_wme(WME)  # WME(f, tag, d), written out: once per fact
        w.fact = f
        w.cls = cls
        w.tag = self._tag
        w.data = d
        w.amems = []
        w.tokens = None
        w.support = None
        w.alive = True
        d[SELF] = w
        self._wmes[id(f)] = w
        hooks = self._on_assert
        if hooks:
            for lst in hooks:
                try:
                    lst.on_assert(f)
                except Exception as exc:  # a listener must not break a change half-way
                    self._listener_error(lst, exc)
        for amem in self.alpha.dispatch(cls, d):
            amem.insert(w)
            solo = amem.solo
            if solo is not None:
                solo.right(w)
                continue
            snap = amem._snap
            for node in snap if snap is not None else amem.snapshot():
                node.right(w)
        return w

    def _retract(self, w: WME) -> None:
        amems = list(w.amems)
        for a in amems:
            a.remove(w)
        if w.tokens:
            kill_many(tokens_of(w))
        for a in amems:
            rsnap = a._rsnap
            for node in rsnap if rsnap is not None else a.remove_snapshot():
                node.right_remove(w)
        w.alive = False
        del self._wmes[id(w.fact)]
        hooks = self._on_retract
        if hooks:
            for lst in hooks:
                try:
                    lst.on_retract(w.fact)
                except Exception as exc:  # a listener must not break a change half-way
                    self._listener_error(lst, exc)
        # The snapshot points back at its WME; break that cycle so that a retracted fact
        # is freed by reference counting, not left for a full collection of the cyclic GC.
        w.data.pop(SELF, None)

    def add_fact(self, fact: Fact, *, logical: bool = False) -> Fact:
        """Assert a fact (a snapshot of it); facts nested in it are asserted too.

        ``logical=True`` (only inside an action) ties the fact to the firing match: it is
        retracted when that match goes away (and no other logical assertion supports it).
        """
        if not isinstance(fact, Fact):
            raise RuleError(f"add_fact needs a Fact, got {type(fact).__name__}")
        tok = self._firing
        if logical and tok is None:
            raise RuleError("add_fact(..., logical=True) is only allowed inside an action")
        w = self._wmes.get(id(fact))
        if w is not None:
            if logical:
                if w.support is not None and tok is not None:
                    self._support(w, tok)
            else:
                w.support = None
            return fact
        self._begin()
        try:
            w = self._assert(fact)
            if logical and tok is not None:
                w.support = {}
                self._support(w, tok)
        finally:
            self._end()
        return fact

    def _support(self, w: WME, tok: Token) -> None:
        assert w.support is not None
        if tok.dead or tok.count != self._firing_count:  # the firing match has gone
            if not w.support:
                self._logical_gone.append(w)
            return
        w.support[tok] = None
        if tok.aux is None:
            tok.aux = [w]
        else:
            tok.aux.append(w)

    def remove_fact(self, fact: Fact) -> None:
        """Retract a fact: only the partial matches it is part of are touched."""
        w = self._wmes.get(id(fact))
        if w is None:
            raise RuleValueError(f"remove_fact: the fact is not in the network: {fact!r}")
        self._begin()
        try:
            self._retract(w)
        finally:
            self._end()

    def update_fact(self, fact: Fact) -> None:
        """Apply the changes made to a fact since it was added or last updated (a modify).

        Matches that do not depend on a changed attribute stay in place (they do not fire
        again); the others are withdrawn and re-created.
        """
        w = self._wmes.get(id(fact))
        if w is None:
            raise RuleValueError(f"update_fact: the fact is not in the network: {fact!r}")
        self._begin()
        try:
            self._modify(w)
        finally:
            self._end()

    def _modify(self, w: WME) -> None:
        old = w.data
        new = self._snapshot(w.fact, None)
        new[SELF] = w
        changed = {
            k
            for k in old.keys() | new.keys()
            if k is not SELF and (k not in old or k not in new or not _same_value(old[k], new[k]))
        }
        if not changed:
            return
        new_amems = self.alpha.dispatch(w.cls, new)
        old_set = w.amems
        new_set = dict.fromkeys(new_amems)
        leave = [a for a in old_set if a not in new_set]
        enter = [a for a in new_amems if a not in old_set]
        stay = [a for a in new_amems if a in old_set]
        affected: list[Node] = []
        for a in stay:
            if a.wild or not a.reads.isdisjoint(changed):
                affected.extend(n for n in a.snapshot() if n.reads_changed(changed, a))
        # 1. withdraw what depended on the old values (propagation of unblocked
        #    negations and changed aggregates waits for step 3 to finish). A join that
        #    only binds changed attributes for production nodes keeps its matches' tokens:
        #    they are withdrawn here and re-made in place in step 3 (same order, same
        #    effect as deleting and re-creating them, without the churn).
        for a in leave:
            a.remove(w)
        gone_joins: set[Node] = set()
        rebind: set[Node] = set()
        for n in affected:
            if n.kind == "join":
                (rebind if n.rebinds(changed) else gone_joins).add(n)  # type: ignore[attr-defined]
        # The joins that took the fact from a memory it leaves (a cross join is in the
        # nodes of each of its memories; the fact is in one of them).
        leaving = {n for a in leave for n in a.nodes if n.kind == "join"}
        kept: dict[tuple[Token, Node], Token] = {}
        watching = self._watch_activations
        renewing: list[Token] = []  # the matches renewed in step 3, when listeners watch
        if w.tokens:
            ts = w.tokens
            tokens: Iterable[Token] = ts if isinstance(ts, dict) else (ts,)  # (not copied)
            if rebind or gone_joins:
                doomed = []
                for t in tokens:
                    src = t.node.src
                    if src is not None:
                        if src in rebind:
                            if t.wme is not None:  # (a cross join finds its own matches)
                                kept[(t.parent, t.node)] = t  # type: ignore[index]
                            if watching:
                                renewing.append(t)
                        elif src in gone_joins or src in leaving:
                            doomed.append(t)
            else:  # the fact only left or entered memories (a control fact, say)
                doomed = [t for t in tokens if (src := t.node.src) is not None and src in leaving]
            if doomed:
                kill_many(doomed)
            for t in renewing:  # listeners hear of the withdrawal now, in order
                if not t.dead:
                    t.node.withdraw(t)  # type: ignore[attr-defined]
        for a in leave:
            for node in a.remove_snapshot():
                node.right_remove(w)
        for node in affected:
            if node.kind != "join":
                node.right_remove(w)
        # 2. switch to the new values
        for a in stay:
            for ix in a.indexes.values():
                ko = ix.get(old)
                kn = ix.get(new)
                if not _same_value(ko, kn):
                    idx_remove(ix.map, ko, w)
                    idx_add(ix.map, kn, w)
        w.data = new
        self._tag += 1
        w.tag = self._tag
        # 3. re-derive, descendants first so that no match is produced twice
        for a in enter:
            a.insert(w)
        nodes = list(affected)
        for a in enter:
            nodes.extend(a.snapshot())
        nodes.sort(key=_depth_key)
        for node in nodes:
            if node in rebind:
                if isinstance(node, CrossJoinNode):
                    node.rebind(w)
                else:
                    node.rebind(w, kept)  # type: ignore[attr-defined]
            else:
                node.right(w)
        if kept:  # defensive: a kept match its join did not meet again does not hold
            kill_many([t for t in kept.values() if not t.dead])
        for lst in self._hooks["on_modify"]:
            try:
                lst.on_modify(w.fact)
            except Exception as exc:  # a listener must not break a change half-way
                self._listener_error(lst, exc)

    @property
    def facts(self) -> list[Fact]:
        """The live facts (the user's objects), in assertion order."""
        return [w.fact for w in self._wmes.values()]

    @property
    def fact_count(self) -> int:
        """How many facts are live (cheaper than ``len(net.facts)``)."""
        return len(self._wmes)

    def __contains__(self, fact: object) -> bool:
        return id(fact) in self._wmes

    # -- agenda --------------------------------------------------------------------------

    def _announce(self, t: Token) -> None:
        m = Match(self, t)
        for lst in self._hooks["on_activation_added"]:
            try:
                lst.on_activation_added(m)
            except Exception as exc:  # a listener must not break a change half-way
                self._listener_error(lst, exc)

    def _withdrawn(self, t: Token) -> None:
        m = Match(self, t)
        for lst in self._hooks["on_activation_removed"]:
            try:
                lst.on_activation_removed(m)
            except Exception as exc:  # a listener must not break a change half-way
                self._listener_error(lst, exc)

    def _unsupport(self, t: Token) -> None:
        """A match that asserted logical facts went: they may have lost their support."""
        for w in t.aux:
            s = w.support
            if w.alive and s is not None:
                s.pop(t, None)
                if not s:
                    self._logical_gone.append(w)

    def _args(self, t: Token) -> tuple[list[Any], dict[str, Any]]:
        """The action's arguments: by position (``Production.positional``: every one
        known, in order), else all by keyword."""
        node: PNode = t.node  # type: ignore[assignment]
        prod = node.prod
        b = t.binds
        if prod.positional and not prod.var_kw:
            args: list[Any] = []
            for name, slot, _ in node.info.plan:
                if slot >= 0:
                    v = b[slot]
                    args.append(v.fact if type(v) is WME else v)
                elif slot == NET_ARG:
                    args.append(self)
                elif name in self._injected:
                    args.append(self._injected[name])
                else:  # left to its default, or missing: keywords say which
                    break
            else:
                return args, {}
        return [], self._kwargs(t)

    def _kwargs(self, t: Token) -> dict[str, Any]:
        node: PNode = t.node  # type: ignore[assignment]
        prod = node.prod
        b = t.binds
        kw: dict[str, Any] = {}
        if prod.var_kw:
            for name, i in node.info.var_slots.items():
                kw[name] = user_value(b[i])
            kw.update(self._injected)
            kw["net"] = self
        for name, slot, has_default in node.info.plan:
            if slot >= 0:
                v = b[slot]
                kw[name] = v.fact if type(v) is WME else v
            elif slot == NET_ARG:
                kw[name] = self
            elif name in self._injected:
                kw[name] = self._injected[name]
            elif not has_default:
                raise RuleError(
                    f"action argument {name!r} is not a bound variable, 'net' or an injected value",
                    production=prod.name,
                )
        return kw

    def _plan_args(self, pn: PNode) -> None:
        """Fix ``pn.args`` when each argument of the action is, by position, a bound value
        or left to its default (nothing injected by that name): a firing then reads its
        arguments straight from the bindings, touching neither the production nor its
        plan (with thousands of productions, cold objects)."""
        pn.args = None
        prod = pn.prod
        if not prod.positional or prod.var_kw:
            return
        slots: list[int] = []
        defaulted = False  # (from the first argument left to its default, all are)
        for name, slot, has_default in pn.info.plan:
            if slot >= 0 and not defaulted:
                slots.append(slot)
            elif slot == OTHER_ARG and has_default and name not in self._injected:
                defaulted = True
            else:
                return
        pn.args = _ARGS.setdefault(tuple(slots), tuple(slots))

    def _fire(self, t: Token) -> Any:
        if self._busy:
            raise RuleError("cannot fire while the network is matching")
        node: PNode = t.node  # type: ignore[assignment]
        if t.dead:
            raise RuleError("this match no longer holds", production=node.prod.name)
        if not t.fired:
            t.fired = True
            self.agenda.gone()
        slots = node.args
        if slots is not None:
            b = t.binds
            args = []
            for i in slots:
                v = b[i]
                args.append(v.fact if type(v) is WME else v)
            kw = _NO_KW
        else:
            args, kw = self._args(t)
        hooks = self._on_fire
        # Made before the action runs: a modify in the action may renew this very token.
        m = Match(self, t) if hooks else None
        prev = self._firing
        prev_count = self._firing_count
        self._firing = t
        self._firing_count = t.count
        try:
            result = node.fn(*args, **kw)
        except Exception as exc:
            err = RuleError(f"action raised {type(exc).__name__}: {exc}", production=node.prod.name)
            err.__cause__ = exc  # (not ``raise ... from``: a mypyc build drops the cause)
            raise err  # noqa: B904 (the cause is set above)
        finally:
            self._firing = prev
            self._firing_count = prev_count
        if m is not None:
            for lst in hooks:
                lst.on_fire(m, result)
        return result

    def run(self, n: int | None = None) -> int:
        """Fire up to ``n`` activations (all when None) in agenda order; how many fired."""
        if n is not None and n < 0:
            raise RuleError(f"run(n) needs n >= 0, got {n}")
        agenda = self.agenda
        if not agenda.live:  # nothing pending: leave the collector alone
            if agenda.fresh or agenda.heap:
                agenda.drop_stale()
            return 0
        fired = 0
        # As in _begin: the run's changes free their tokens by reference counting, so the
        # cyclic collector waits until the run is over (it then runs as usual).
        paused = gc.isenabled()
        if paused:
            gc.disable()
        try:
            while agenda.live and (n is None or fired < n):
                t = agenda.pop()
                if t is None:
                    break
                self._fire(t)
                fired += 1
        finally:
            if paused:
                gc.enable()
        if not agenda.live and (agenda.fresh or agenda.heap):
            agenda.drop_stale()
        return fired

    def _live(self, new_only: bool) -> Iterator[Match]:
        """The matches in agenda order, as a live view (py-rete's generators): a match
        that a firing (or any change) makes while this runs is seen, in its place in the
        order, and a match that has gone before its turn is skipped.

        Costs what the matches are, never the number of productions: only the production
        nodes holding matches are read, and the order is rebuilt only when an activation
        was added since the last look (a new one counts up the agenda's ``seq``)."""
        agenda = self.agenda
        taken = self._taken
        done: dict[Token, int] = {}  # the activations already given (token: count)
        heap: list[tuple[int, int, int, int, Token]] = []
        seq = -1
        while True:
            if agenda.seq != seq:
                seq = agenda.seq
                heap = [  # sort_key(t) + (t,), written out
                    (-pn.prod.salience, -t.recency, pn.order, -t.count, t)
                    for pn in agenda.holding
                    for t in pn.items
                    if done.get(t) != t.count
                    and not (new_only and (t.fired or taken.get(t) == t.count))
                ]
                heapq.heapify(heap)
            while heap:
                e = heapq.heappop(heap)
                t = e[4]
                if (
                    t.dead
                    or e[3] != -t.count  # renewed since: its new activation has its own entry
                    or done.get(t) == t.count
                    or (new_only and (t.fired or taken.get(t) == t.count))
                ):
                    continue
                break
            else:
                return
            done[t] = t.count
            yield Match(self, t)

    def drop_activations(self) -> int:
        """Take every pending activation off the agenda without firing it (they count as
        fired: a match fires again only when it is made anew); how many there were. For a
        caller stopping a runaway agenda (rules that keep re-activating each other)."""
        agenda = self.agenda
        dropped = 0
        while (t := agenda.pop()) is not None:
            t.fired = True
            agenda.gone()
            dropped += 1
        agenda.drop_stale()
        return dropped

    @property
    def matches(self) -> Iterator[Match]:
        """All current matches (fired or not), in agenda order: a live view as py-rete's
        generator (``list(net.matches)`` for a snapshot)."""
        return self._live(False)

    @property
    def new_matches(self) -> Iterator[Match]:
        """The matches neither fired nor taken by ``get_new_match`` yet, in agenda order: a
        live view as ``matches``."""
        return self._live(True)

    def get_new_match(self) -> Match | None:
        """Take the first new match (agenda order; None when there is none): it leaves
        ``new_matches`` but stays pending for ``run()`` until it fires."""
        m = next(self._live(True), None)
        if m is not None:
            taken = self._taken
            if len(taken) > 64 + 2 * self.agenda.live:  # forget the ones that since went
                self._taken = taken = {
                    t: c for t, c in taken.items() if not t.dead and not t.fired and t.count == c
                }
            taken[m._token] = m._count
        return m

    # -- extras ----------------------------------------------------------------------------

    def inject(self, name: str, value: Any) -> None:
        """Make ``value`` available to actions as the argument ``name``."""
        if name == "net":
            raise RuleError("'net' is reserved for the network itself")
        new = name not in self._injected
        self._injected[name] = value
        if new:  # an argument left to its default may get this value from now on
            for pns in self._prods.values():
                for pn in pns:
                    self._plan_args(pn)

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)
        self._sort_hooks()

    def remove_listener(self, listener: Listener) -> None:
        self._listeners.remove(listener)
        self._sort_hooks()

    def _sort_hooks(self) -> None:
        for h in _HOOKS:
            self._hooks[h] = [
                lst for lst in self._listeners if getattr(type(lst), h) is not getattr(Listener, h)
            ]
        self._watch_activations = bool(
            self._hooks["on_activation_added"] or self._hooks["on_activation_removed"]
        )
        self._on_assert = self._hooks["on_assert"]
        self._on_retract = self._hooks["on_retract"]
        self._on_fire = self._hooks["on_fire"]

    def nodes(self) -> list[Node]:
        """Every beta node, parents before children."""
        out: list[Node] = []
        stack: list[Node] = [self.root]
        seen: set[int] = set()
        while stack:
            n = stack.pop()
            if id(n) in seen:
                continue
            seen.add(id(n))
            out.append(n)
            stack.extend(reversed(list(n.all_children)))
        return out

    def stats(self) -> Mapping[str, int]:
        """Sizes: beta nodes, alpha memories, facts, matches, pending activations."""
        return {
            "beta_nodes": len(self.nodes()),
            "alpha_memories": len(self.alpha.memories),
            "facts": len(self._wmes),
            "matches": sum(len(pn.items) for pn in self.agenda.holding),
            "agenda": len(self.agenda),
        }

    def alpha_memories(self) -> list[AlphaMemory]:
        return list(self.alpha.memories.values())

    def to_dot(self) -> str:
        """The network as Graphviz DOT, each node labelled with its memory size."""
        from streamrules.rete.dot import to_dot

        return to_dot(self)
