"""Rule loading: ``--rules`` module paths or ``.py`` files become productions.

A rule module's rules are the ``Production`` objects defined at its top level, in
definition order. A bad name (missing module or file, a syntax error, a module without
productions, a name that is not a production) is a ``ConfigError`` naming it: the
processor never starts with half its rules.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType

from streamrules.errors import ConfigError
from streamrules.rete import Production

__all__ = ["DEFAULT_RULES", "load_rules", "productions_of"]

DEFAULT_RULES: tuple[str, ...] = ("streamrules.packs.discounts", "streamrules.packs.sre")

RuleSpec = str | Path | ModuleType | Production


def load_rules(specs: Iterable[RuleSpec]) -> list[Production]:
    """The productions of every spec, in order.

    A spec is a module path (``streamrules.packs.sre``), a path to a ``.py`` file, an
    imported module, or a ``Production``.
    """
    found: list[Production] = []
    for spec in specs:
        if isinstance(spec, Production):
            found.append(spec)
        elif isinstance(spec, ModuleType):
            found.extend(productions_of(spec, spec.__name__))
        else:
            found.extend(_load_spec(str(spec)))
    # The same production reached twice (a module given twice) is loaded once; two
    # different productions with one name would make decisions ambiguous.
    unique: list[Production] = []
    by_name: dict[str, Production] = {}
    for production in found:
        other = by_name.get(production.name)
        if other is production:
            continue
        if other is not None:
            raise ConfigError(f"rules: two productions are named {production.name!r}")
        by_name[production.name] = production
        unique.append(production)
    return unique


def productions_of(module: ModuleType, label: str) -> list[Production]:
    """The top-level ``Production`` objects of a module, in definition order."""
    # A module's __dict__ keeps insertion (definition) order; only objects bound at top
    # level count, and an object bound under two names counts once.
    seen: set[int] = set()
    found: list[Production] = []
    for value in vars(module).values():
        if isinstance(value, Production) and id(value) not in seen:
            seen.add(id(value))
            found.append(value)
    if not found:
        raise ConfigError(f"rules {label!r}: no productions defined at the top level")
    return found


def _load_spec(spec: str) -> list[Production]:
    # ``pkg.module:name`` or ``pkg.module.name`` names one production of a module.
    if ":" in spec and not spec.endswith(".py") and not Path(spec).exists():
        module_name, _, attr = spec.partition(":")
        return [_attribute(_import(module_name), attr, spec)]
    try:
        return productions_of(_import(spec), spec)
    except ConfigError as exc:
        head, dot, attr = spec.rpartition(".")
        if not dot or not str(exc).endswith("no such module") or spec.endswith(".py"):
            raise
        try:
            module = _import(head)
        except ConfigError:
            raise exc from None
        if not hasattr(module, attr):
            raise exc from None
        return [_attribute(module, attr, spec)]


def _attribute(module: ModuleType, attr: str, spec: str) -> Production:
    value = getattr(module, attr, None)
    if value is None:
        raise ConfigError(f"rules {spec!r}: {module.__name__} has no attribute {attr!r}")
    if not isinstance(value, Production):
        raise ConfigError(f"rules {spec!r}: not a production ({type(value).__name__})")
    return value


def _import(spec: str) -> ModuleType:
    if spec.endswith(".py") or "/" in spec or "\\" in spec:
        return _import_file(Path(spec), spec)
    try:
        return importlib.import_module(spec)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (spec == exc.name or spec.startswith(exc.name + ".")):
            raise ConfigError(f"rules {spec!r}: no such module") from None
        raise ConfigError(f"rules {spec!r}: importing it failed: {exc}") from None
    except SyntaxError as exc:
        raise ConfigError(f"rules {spec!r}: syntax error: {_where(exc)}") from None
    except ConfigError:
        raise
    except SystemExit as exc:
        raise ConfigError(f"rules {spec!r}: {_exit(exc)} while it was imported") from None
    except Exception as exc:
        raise ConfigError(f"rules {spec!r}: importing it failed: {_one_line(exc)}") from None


def _import_file(path: Path, spec: str) -> ModuleType:
    if path.is_dir():
        raise ConfigError(
            f"rules {spec!r}: a directory; give its .py files (or a module path) one by one"
        )
    if not path.is_file():
        raise ConfigError(f"rules {spec!r}: no such file")
    if path.suffix != ".py":
        raise ConfigError(f"rules {spec!r}: not a .py file")
    resolved = path.resolve()
    # One module per file, whatever path spelled it; a name that cannot clash with a
    # real module.
    digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:12]
    name = f"streamrules_rules_{resolved.stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    module_spec = importlib.util.spec_from_file_location(name, resolved)
    if module_spec is None or module_spec.loader is None:  # pragma: no cover
        raise ConfigError(f"rules {spec!r}: cannot be loaded as a module")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except SyntaxError as exc:
        del sys.modules[name]
        raise ConfigError(f"rules {spec!r}: syntax error: {_where(exc)}") from None
    except ConfigError:
        del sys.modules[name]
        raise
    except SystemExit as exc:  # sys.exit() in a rule file must not end the command silently
        del sys.modules[name]
        raise ConfigError(f"rules {spec!r}: {_exit(exc)} while it was loaded") from None
    except Exception as exc:
        del sys.modules[name]
        raise ConfigError(f"rules {spec!r}: loading it failed: {_one_line(exc)}") from None
    return module


def _exit(exc: SystemExit) -> str:
    return f"it called sys.exit({exc.code!r})" if exc.code is not None else "it called sys.exit()"


def _where(exc: SyntaxError) -> str:
    return f"{exc.msg} (line {exc.lineno})"


def _one_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def as_specs(rules: Sequence[RuleSpec] | str) -> list[RuleSpec]:
    """A single string is one spec, not a sequence of characters."""
    return [rules] if isinstance(rules, str) else list(rules)
