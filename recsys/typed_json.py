"""Frozen dataclasses to and from JSON objects, every field's type checked on the way in.

The manifests (``recsys.manifests``) and their payloads are read through :func:`build` and written
through :func:`plain`. Two class-level hooks shape the JSON of a class:

* ``extra`` (a field): keys the class does not know are kept there and written back unchanged;
  a class without it drops them.
* ``KEYS`` (a ``ClassVar``): a field's key in the JSON where it cannot be a Python name
  (``{"source": "from"}``).
* ``OMIT`` (a ``ClassVar``): fields not written while empty (``None``, ``""``, ``{}``); they
  read back as the same empty default.

A missing key takes the field's default (a required field without one is an error); a value of
the wrong type fails in one sentence naming the file and the key.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any

from recsys.errors import RecsysError


class ManifestError(RecsysError):
    """A manifest that is not what its table's contract says (missing key, wrong type, newer)."""


def _key(cls: type, name: str) -> str:
    return getattr(cls, "KEYS", {}).get(name, name)


def plain(value: Any) -> Any:
    """``value`` as plain JSON types: dataclasses as objects (their ``extra`` merged), tuples as
    lists."""
    if dataclasses.is_dataclass(value):
        out: dict[str, Any] = dict(getattr(value, "extra", None) or {})
        omit = getattr(value, "OMIT", ())
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if f.name == "extra" or (f.name in omit and (item is None or item in ("", {}))):
                continue
            out[_key(type(value), f.name)] = plain(item)
        return out
    if isinstance(value, tuple):
        return list(value)
    return value


def build(
    cls: type, data: dict[str, Any], source: str | Path, what: str, prefix: str = "", skip=()
) -> Any:
    """``cls(**data)`` with every field's type checked and nested dataclasses built; ``skip``:
    keys that are neither fields nor ``extra`` (the manifest's own ``table``)."""
    hints = typing.get_type_hints(cls)
    fields = [f for f in dataclasses.fields(cls) if f.name != "extra"]
    kwargs: dict[str, Any] = {}
    for f in fields:
        key = _key(cls, f.name)
        if key not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ManifestError(
                    f"{source} has no {prefix + key!r}: it is not a complete {what}"
                )
            continue
        kwargs[f.name] = _value(hints[f.name], data[key], prefix + key, source, what)
    if "extra" in {f.name for f in dataclasses.fields(cls)}:
        known = {_key(cls, f.name) for f in fields} | set(skip)
        kwargs["extra"] = {k: v for k, v in data.items() if k not in known}
    return cls(**kwargs)


def _value(hint: Any, value: Any, name: str, source: str | Path, what: str) -> Any:
    """``value`` as ``hint`` says (nested dataclasses built), or a ManifestError."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None and type(None) in options:
        return None
    for option in options:
        if option is type(None):
            continue
        if dataclasses.is_dataclass(option) and isinstance(value, dict):
            return build(option, value, source, what, f"{name}.")
        base = typing.get_origin(option) or option
        if base is Any:
            return value
        if base is float and isinstance(value, int | float) and not isinstance(value, bool):
            # NaN as the one math.nan object, so that equal payloads compare equal (NaN != NaN)
            return math.nan if math.isnan(value) else float(value)
        if base is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if base in (str, bool) and isinstance(value, base):
            return value
        if base in (dict, list) and isinstance(value, base):
            return _items(option, value, name, source, what)
    raise ManifestError(
        f"{source} has {name} = {value!r}, which is not {_name(hint)}: it is not a valid {what}"
    )


def _items(hint: Any, value: Any, name: str, source: str | Path, what: str) -> Any:
    """A dict's values or a list's elements checked against ``hint``'s arguments
    (``dict[str, int]``, ``list[float]``); bare ``dict``/``list`` hints take any."""
    args = typing.get_args(hint)
    if not args:
        return value
    if isinstance(value, dict):
        return {k: _value(args[1], v, f"{name}.{k}", source, what) for k, v in value.items()}
    return [_value(args[0], v, f"{name}[{i}]", source, what) for i, v in enumerate(value)]


def _name(hint: Any) -> str:
    names = {int: "an integer", float: "a number", str: "text", bool: "true or false"}
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    parts = []
    for option in options:
        base = typing.get_origin(option) or option
        parts.append(
            names.get(base)
            or {dict: "an object", list: "a list", type(None): "null"}.get(base)
            or f"a {getattr(base, '__name__', base)} object"
        )
    return " or ".join(parts)
