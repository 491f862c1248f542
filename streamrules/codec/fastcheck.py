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
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
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
    "number": "type({v}) is not int and type({v}) is not float",
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

    def fail_if(self, condition: str, indent: int) -> None:
        self.lines.append(f"{'    ' * indent}if {condition}: return False")

    def emit(self, schema: Mapping[str, Any], v: str, indent: int) -> None:
        keys = {k for k in schema if k not in _ANNOTATIONS and not k.startswith("x-")}
        if schema.get("additionalProperties", True) is True:
            keys.discard("additionalProperties")
        kind = schema.get("type")
        if kind is not None:
            if not isinstance(kind, str) or kind not in _TYPE_TESTS:
                raise _Unsupported(kind)
            self.fail_if(_TYPE_TESTS[kind].format(v=v), indent)
            keys.discard("type")
        if "const" in schema:
            const = schema["const"]
            if type(const) not in (str, int, bool):
                raise _Unsupported("const")
            self.fail_if(f"type({v}) is not {type(const).__name__} or {v} != {const!r}", indent)
            keys.discard("const")
        for keyword, op in (*_BOUNDS.items(), *_LENGTHS.items()):
            if keyword not in schema:
                continue
            bound = schema[keyword]
            if type(bound) not in (int, float) or kind not in _APPLIES[keyword]:
                raise _Unsupported(keyword)
            subject = v if keyword in _BOUNDS else f"len({v})"
            self.fail_if(f"{subject} {op} {bound!r}", indent)
            keys.discard(keyword)
        if "pattern" in schema:
            if kind != "string":
                raise _Unsupported("pattern")
            self.fail_if(f"_P[{len(self.patterns)}].search({v}) is None", indent)
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
                    self.fail_if(f"{field!r} not in {v}", indent)
            keys.discard("required")
        if "properties" in schema:
            if kind != "object":
                raise _Unsupported("properties")
            for field, sub in schema["properties"].items():
                inner = indent
                if field not in required:
                    self.lines.append(f"{'    ' * indent}if {field!r} in {v}:")
                    inner += 1
                w = self.name()
                self.lines.append(f"{'    ' * inner}{w} = {v}[{field!r}]")
                self.emit(sub, w, inner)
            keys.discard("properties")
        if "items" in schema:
            if kind != "array" or not isinstance(schema["items"], Mapping):
                raise _Unsupported("items")
            w = self.name()
            self.lines.append(f"{'    ' * indent}for {w} in {v}:")
            self.lines.append(f"{'    ' * (indent + 1)}pass")
            self.emit(schema["items"], w, indent + 1)
            keys.discard("items")
        if keys:
            raise _Unsupported(sorted(keys)[0])


def _python_pattern(pattern: str) -> re.Pattern[str]:
    # JSON Schema patterns are ECMA 262: "$" is the very end, Python's "$" also matches
    # before a final newline (fastjsonschema makes the same substitution).
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def compile_check(schema: Mapping[str, Any]) -> Callable[[Any], bool]:
    """A predicate that is ``True`` only for instances valid against ``schema``."""
    emitter = _Emitter()
    try:
        emitter.emit(schema, "v0", 1)
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
