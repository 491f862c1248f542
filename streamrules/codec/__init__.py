"""Codec: the edges of the flow. Input record bytes become validated events (``decode``,
schemas from ``topics/schemas``) or a ``DecodeError`` with a dead-letter reason; fired
productions become decision records (``Decision``, ``decision_id``) and bad records get
dead-letter headers (``dead_letter_headers``). See docs/interfaces.md section 2.
"""

from __future__ import annotations

from streamrules.codec.decode import Decoder, decode, event_types, topic_for_type
from streamrules.codec.encode import (
    DEAD_LETTER_REASONS,
    Decision,
    dead_letter_headers,
    decision_id,
    encode_event,
)
from streamrules.codec.events import Event, Record
from streamrules.codec.timefmt import format_ms, parse_rfc3339
from streamrules.errors import DecodeError

__all__ = [
    "DEAD_LETTER_REASONS",
    "Decision",
    "DecodeError",
    "Decoder",
    "Event",
    "Record",
    "dead_letter_headers",
    "decision_id",
    "decode",
    "encode_event",
    "event_types",
    "format_ms",
    "parse_rfc3339",
    "topic_for_type",
]
