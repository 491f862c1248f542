"""Codec stage, validation fast path: a JSON Schema compiled to one plain Python predicate.

fastjsonschema's generated validators build sets and error names for every object, which
costs several microseconds per event; the codec's budget is a few microseconds for the
whole decode. ``compile_check`` turns the small subset of JSON Schema our event schemas use
(type, const, required, properties, items, minimum/maximum, minLength/maxLength,
minItems/maxItems, pattern) into straight-line code that only answers "certainly valid?".

It is sound, not complete: ``True`` only when the full validator would accept; ``False``
means "ask fastjsonschema", which then either accepts or gives the detailed error. A
keyword outside the subset makes the predicate always answer ``False``, so a schema edit
can slow decoding down but never let a bad event through.

The decoder asks for a leaner predicate (``given``, ``unchecked_patterns``): it has
already tested that the event is an object of the schema's ``type``, and it tests the
``ts`` pattern itself while parsing the time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["compile_check"]

_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$comment", "title", "description", "examples", "default", "format"}
)
_TYPE_TESTS = {
    "object": "type({v}) is not dict",
    "array": "type({v}) is not list",
    "string": "type({v}) is not str",
    "boolean": "type({v}) is not bool",
    # A float such as 2.0 is a JSON Schema integer: left to the full validator.
    "integer": "type({v}) is not int",
    "number": "type({v}) is not float and type({v}) is not int",  # mostly a float
}
_BOUNDS = {"minimum": "<", "exclusiveMinimum": "<=", "maximum": ">", "exclusiveMaximum": ">="}
_LENGTHS = {"minLength": "<", "maxLength": ">", "minItems": "<", "maxItems": ">"}
# The type a keyword constrains: emitted only after that type's test, so the comparison
# can never raise.
_APPLIES = {
    **dict.fromkeys(_BOUNDS, ("integer", "number")),
    "minLength": ("string",),
    "maxLength": ("string",),
    "minItems": ("array",),
    "maxItems": ("array",),
}


class _Unsupported(Exception):
    pass


class _Emitter:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.patterns: list[re.Pattern[str]] = []
        self._names = 0

    def name(self) -> str:
        self._names += 1
        return f"v{self._names}"

    def line(self, text: str, indent: int) -> None:
        self.lines.append(f"{'    ' * indent}{text}")

    def emit(
        self,
        schema: Mapping[str, Any],
        v: str,
        indent: int,
        *,
        unchecked: str | None = None,
        top: _TopLevel | None = None,
    ) -> None:
        """Lines that return False unless the value in variable ``v`` is valid against
        ``schema``: one line for the value's own tests, then its properties and items.
        ``unchecked``: a pattern of ``v`` the caller tests itself; ``top``: what the caller
        knows and tests of the top-level instance."""
        keys = {k for k in schema if k not in _ANNOTATIONS and not k.startswith("x-")}
        if schema.get("additionalProperties", True) is True:
            keys.discard("additionalProperties")
        tests: list[str] = []
        kind = schema.get("type")
        if kind is not None:
            if not isinstance(kind, str) or kind not in _TYPE_TESTS:
                raise _Unsupported(kind)
            if not (top is not None and top.given is not None and kind == "object"):
                tests.append(_TYPE_TESTS[kind].format(v=v))
            keys.discard("type")
        if "const" in schema:
            const = schema["const"]
            if type(const) not in (str, int, bool):
                raise _Unsupported("const")
            tests.append(f"type({v}) is not {type(const).__name__} or {v} != {const!r}")
            keys.discard("const")
        for keyword, op in (*_BOUNDS.items(), *_LENGTHS.items()):
            if keyword not in schema:
                continue
            bound = schema[keyword]
            if type(bound) not in (int, float) or kind not in _APPLIES[keyword]:
                raise _Unsupported(keyword)
            if keyword in _BOUNDS:
                tests.append(f"{v} {op} {_bound_for(kind, bound)!r}")
            elif op == "<" and bound == 1:  # after the type test: a str or a list
                tests.append(f"not {v}")
            else:
                tests.append(f"len({v}) {op} {bound!r}")
            keys.discard(keyword)
        if "pattern" in schema:
            if kind != "string":
                raise _Unsupported("pattern")
            if schema["pattern"] != unchecked:
                tests.append(f"_P[{len(self.patterns)}].search({v}) is None")
                self.patterns.append(_python_pattern(schema["pattern"]))
            keys.discard("pattern")
        required = schema.get("required", [])
        if required:
            if kind != "object":
                raise _Unsupported("required")
            # Present-or-not is tested by the subscript below (KeyError -> False); a
            # required field without a "properties" entry still needs its own test.
            for field in required:
                if field not in schema.get("properties", {}):
                    tests.append(f"{field!r} not in {v}")
            keys.discard("required")
        if tests:
            either = " or ".join(f"({t})" if " and " in t else t for t in tests)
            self.line(f"if {either}: return False", indent)
        if "properties" in schema:
            if kind != "object":
                raise _Unsupported("properties")
            for field, sub in schema["properties"].items():
                if top is not None and top.settles(field, sub):
                    continue
                inner = indent
                if field not in required:
                    self.line(f"if {field!r} in {v}:", indent)
                    inner += 1
                w = self.name()
                self.line(f"{w} = {v}[{field!r}]", inner)
                leave = top.unchecked(field, required) if top is not None else None
                self.emit(sub, w, inner, unchecked=leave)
            keys.discard("properties")
        if "items" in schema:
            if kind != "array" or not isinstance(schema["items"], Mapping):
                raise _Unsupported("items")
            w = self.name()
            self.line(f"for {w} in {v}:", indent)
            self.line("pass", indent + 1)
            self.emit(schema["items"], w, indent + 1)
            keys.discard("items")
        if keys:
            raise _Unsupported(sorted(keys)[0])


class _TopLevel:
    """``compile_check``'s ``given`` and ``unchecked_patterns``, for the instance itself."""

    def __init__(
        self, given: Mapping[str, Any] | None, unchecked_patterns: Mapping[str, str] | None
    ) -> None:
        self.given = given
        self.unchecked_patterns = unchecked_patterns or {}

    def unchecked(self, field: str, required: Sequence[str]) -> str | None:
        """The pattern of ``field`` left to the caller: only for a required field (a
        missing one never reaches the caller's test)."""
        return self.unchecked_patterns.get(field) if field in required else None

    def settles(self, field: str, schema: Mapping[str, Any]) -> bool:
        """Whether the instance's ``field`` is known, and valid against its ``schema``
        (checked now, by a predicate compiled from that schema)."""
        if self.given is None or field not in self.given:
            return False
        return compile_check(schema)(self.given[field])


def _bound_for(kind: str, bound: float) -> float:
    """A number's bound as a float when that is the same value: a float compared with a
    float is the interpreter's fast case (a JSON number is mostly a float), and Python
    compares an int with a float exactly."""
    if kind == "number" and type(bound) is int and float(bound) == bound:
        return float(bound)
    return bound


def _python_pattern(pattern: str) -> re.Pattern[str]:
    # JSON Schema patterns are ECMA 262: "$" is the very end, Python's "$" also matches
    # before a final newline (fastjsonschema makes the same substitution).
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def compile_check(
    schema: Mapping[str, Any],
    *,
    given: Mapping[str, Any] | None = None,
    unchecked_patterns: Mapping[str, str] | None = None,
) -> Callable[[Any], bool]:
    """A predicate that is ``True`` only for instances valid against ``schema``.

    For the decoder, which knows more of an event than a bare instance: ``given`` says the
    instance is a dict holding at least these properties with these values (it picks the
    schema by the event's ``type``), and the tests they settle are left out;
    ``unchecked_patterns`` maps required top-level properties to the pattern the caller
    tests itself, left out where the schema's pattern is exactly that text. The predicate
    then means "valid, for such an instance whose properties match those patterns".
    """
    emitter = _Emitter()
    try:
        emitter.emit(schema, "v0", 1, top=_TopLevel(given, unchecked_patterns))
    except _Unsupported:
        return lambda instance: False
    body = ["    " + line for line in emitter.lines]
    source = "\n".join(
        [
            "def check(v0):",
            "    try:",
            *body,
            "    except KeyError:",
            "        return False",
            "    return True",
        ]
    )
    namespace: dict[str, Any] = {"_P": emitter.patterns}
    exec(compile(source, f"<fastcheck {schema.get('title', '?')}>", "exec"), namespace)
    check: Callable[[Any], bool] = namespace["check"]
    return check
