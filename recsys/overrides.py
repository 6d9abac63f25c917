"""Setting options by name: ``--set section.key=value`` pairs and YAML mappings applied to the
frozen config dataclasses (``recsys.config.load_config``), each value converted to its field's
annotated type, or one sentence naming the option."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from recsys.errors import RecsysError


def _coerce(value: Any, typ: Any, key: str) -> Any:
    """Convert a YAML/CLI value to the annotated type, or raise a one-sentence error."""
    origin = typing.get_origin(typ)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if value is None or value == "":
            return None
        return _coerce(value, args[0], key)
    if origin is dict:
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
        raise RecsysError(f"option {key} expects a mapping, got {value!r}")
    try:
        if typ is bool:
            if isinstance(value, bool):
                return value
            s = str(value).strip().lower()
            if s in ("1", "true", "yes", "on"):
                return True
            if s in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if typ is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(str(value).strip()) if isinstance(value, str) else int(value)
        if typ is float:
            return float(value)
        if typ is str:
            return str(value)
    except (TypeError, ValueError):
        raise RecsysError(
            f"option {key} expects {getattr(typ, '__name__', typ)}, got {value!r}"
        ) from None
    return value


def apply(obj: Any, updates: dict[str, Any], prefix: str = "") -> Any:
    """``obj`` (a config dataclass) with ``updates`` (nested by section) applied."""
    hints = typing.get_type_hints(type(obj))
    names = {f.name for f in dataclasses.fields(obj)}
    changes = {}
    for key, value in updates.items():
        full = f"{prefix}{key}"
        if key not in names:
            known = ", ".join(sorted(f"{prefix}{n}" for n in names))
            raise RecsysError(f"unknown option {full}; known options: {known}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise RecsysError(f"option {full} is a section; set {full}.<key>=<value>")
            changes[key] = apply(current, value, f"{full}.")
        else:
            changes[key] = _coerce(value, hints[key], full)
    return dataclasses.replace(obj, **changes)


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """Turn ``["spark.master=local[2]", ...]`` into a nested dict."""
    nested: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise RecsysError(f"--set expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        node = nested
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise RecsysError(f"option {key} mixes a value and a section")
        node[parts[-1]] = value
    return nested
