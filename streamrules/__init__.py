"""streamrules: an event-streaming rules processor.

Kafka events become facts on an event-time clock, an incremental Rete network (py-rete's
authoring API on a Rete/UL matcher) fires productions, and every firing becomes a decision
on an output topic. The public API is the engine's authoring API; everything else is
reached through its own module (``streamrules.pipeline``, ``streamrules.testing`` ...).
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
