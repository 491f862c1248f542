"""Runtime stage, Faust: the rules in a faust-streaming app (``pip install 'streamrules[faust]'``).

``attach(app, settings)`` adds the rules to an existing ``faust.App``;
``streamrules.faust.app`` is a ready app configured from streamrules' settings
(``faust -A streamrules.faust.app worker``); ``streamrules run --runtime faust`` runs it.
"""

from __future__ import annotations

from streamrules.faust.rules import FaustRules, attach, build_app, faust_broker_url, new_app

__all__ = ["FaustRules", "attach", "build_app", "faust_broker_url", "new_app"]
