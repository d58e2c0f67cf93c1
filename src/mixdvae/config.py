"""Frozen dataclass configs and their TOML/JSON I/O.

Every config is a frozen dataclass. :func:`config_from_dict` builds one from a mapping and raises
:class:`ConfigError` naming the file and the field for an unknown key, a wrong type or (through the
dataclass's ``__post_init__``) a value out of range.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import types
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar

from mixdvae.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["config_from_dict", "config_to_dict", "config_with_overrides", "load_config_file", "load_config", "check_positive"]

C = TypeVar("C")


def check_positive(cls_name: str, field: str, value: float, allow_zero: bool = False) -> None:
    """Raise :class:`ConfigError` unless ``value`` is finite and > 0 (or >= 0 with ``allow_zero``)."""
    bad = not math.isfinite(float(value)) or (value < 0 if allow_zero else value <= 0)
    if bad:
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{cls_name}.{field} = {value!r}: must be a finite number {bound}")


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` against the type ``hint``; convert lists to tuples and ints to floats."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in args:
            if option is type(None):
                if value is None:
                    return None
                continue
            try:
                return _coerce(value, option, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(f"{where}: {value!r} has the wrong type (expected {hint})")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: {value!r} should be a list")
        inner = args[0] if args else Any
        return tuple(_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if hint is Any:
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {value!r} should be true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: {value!r} should be an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: {value!r} should be a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: {value!r} should be a string")
        return value
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):  # an already-built nested config (config_with_overrides passes them)
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: should be a table of {hint.__name__} fields")
        return config_from_dict(hint, value, source=where)
    return value


def config_from_dict(cls: type[C], data: Mapping[str, Any], source: str = "config") -> C:
    """Build the frozen dataclass ``cls`` from ``data``.

    Raises:
        ConfigError: ``"{source}: unknown key 'lr_rate' for TrainConfig (known: ...)"`` for an
            unknown key, or a message naming the field for a wrong type or an invalid value.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a table of {cls.__name__} fields, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(f"{source}: unknown key '{key}' for {cls.__name__} (known: {known})")
        kwargs[key] = _coerce(value, hints[key], f"{source}: {key}")
    try:
        return cls(**kwargs)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from err
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{source}: {err}") from err


def config_with_overrides(cfg: C, data: Mapping[str, Any], source: str = "config") -> C:
    """A copy of the dataclass ``cfg`` with the fields of ``data`` (a TOML table); a nested table
    overrides only the fields it names of a nested config dataclass (e.g. ``[tracking.vem]``).

    Raises:
        ConfigError: as :func:`config_from_dict`, naming ``source`` and the nested table.
    """
    merged = {}
    for key, value in data.items():
        current = getattr(cfg, key, None)
        if isinstance(value, Mapping) and dataclasses.is_dataclass(current):
            merged[key] = config_from_dict(type(current), {**_fields(current), **value}, f"{source} [{key}]")
        else:
            merged[key] = value
    return config_from_dict(type(cfg), {**_fields(cfg), **merged}, source)


def _fields(cfg: Any) -> dict[str, Any]:
    """The field values of a dataclass instance, one level deep (nested configs stay objects)."""
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (tuples become lists)."""
    def convert(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: convert(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [convert(x) for x in v]
        return v
    return convert(cfg)


def load_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a TOML (``.toml``) or JSON (``.json``) file into a dict, with one-line errors."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{p}: cannot read config ({err})") from err
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            data = tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"{p}: not valid {'JSON' if p.suffix.lower() == '.json' else 'TOML'} ({err})") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: top level must be a table")
    return data


def load_config(cls: type[C], path: str | os.PathLike | None, section: str | None = None) -> C:
    """Load ``cls`` from ``path`` (or its defaults when ``path`` is None).

    With ``section``, the fields are read from that table of the file (``[train]``); other tables
    are left to other configs.
    """
    if path is None:
        return cls()
    data = load_config_file(path)
    if section is not None:
        data = data.get(section, {})
    return config_from_dict(cls, data, source=str(path) + (f" [{section}]" if section else ""))
