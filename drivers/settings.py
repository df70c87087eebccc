"""A device's settings, filled from the device's JSON configuration: unknown keys are rejected,
every value is checked against its declared type, and the error names the key and what was
expected, so a typo in a lane's configuration is a clear error at start rather than a silent
default.

Settings are declared once: as a frozen dataclass (:func:`settings_from`), or as the driver's
own keyword arguments (:func:`build`)."""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


class SettingsError(ValueError):
    """A device configuration that cannot be used as given."""


def _check(name: str, value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            try:
                return _check(name, value, option)
            except SettingsError:
                continue
        raise SettingsError(f"{name}: {value!r} is not one of the accepted forms ({hint})")
    if hint is type(None):
        if value is None:
            return None
        raise SettingsError(f"{name}: expected nothing (null), got {value!r}")
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, list | tuple) or len(value) != len(args):
            raise SettingsError(f"{name}: expected a list of {len(args)} values, got {value!r}")
        return tuple(_check(f"{name}[{i}]", v, a) for i, (v, a) in enumerate(zip(value, args,
                                                                               strict=True)))
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise SettingsError(f"{name}: expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise SettingsError(f"{name}: expected a whole number, got {value!r}")
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise SettingsError(f"{name}: expected a number, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise SettingsError(f"{name}: expected text, got {value!r}")
    if isinstance(hint, type) and isinstance(value, hint):
        return value
    raise SettingsError(f"{name}: cannot use {value!r} as {hint}")


def settings_from(cls: type[T], config: Mapping[str, Any]) -> T:
    """Build the settings dataclass ``cls`` from ``config``; raises SettingsError."""
    if not isinstance(config, Mapping):
        raise SettingsError(f"the configuration must be an object, got {type(config).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(config) - set(fields))
    if unknown:
        raise SettingsError(f"unknown setting(s) {', '.join(unknown)}; "
                            f"known: {', '.join(sorted(fields))}")
    values = {}
    for name, value in config.items():
        values[name] = _check(name, value, hints[name])
    missing = [n for n, f in fields.items() if n not in values
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise SettingsError(f"missing setting(s) {', '.join(missing)}")
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise SettingsError(str(exc)) from exc


def build(cls: type, device_id: str, config: Mapping[str, Any]):
    """``cls(device_id, **config)`` after checking every key and value against the keyword
    arguments of ``cls.__init__`` and their annotations; raises SettingsError."""
    if not isinstance(config, Mapping):
        raise SettingsError(f"the configuration must be an object, got {type(config).__name__}")
    params = inspect.signature(cls.__init__).parameters
    hints = typing.get_type_hints(cls.__init__)
    known = {name for name, p in params.items()
             if name not in ("self", "device_id") and p.kind is not p.VAR_KEYWORD}
    unknown = sorted(set(config) - known)
    if unknown:
        raise SettingsError(f"{cls.__name__}: unknown setting(s) {', '.join(unknown)}; "
                            f"known: {', '.join(sorted(known))}")
    missing = sorted(name for name in known
                     if params[name].default is inspect.Parameter.empty and name not in config)
    if missing:
        raise SettingsError(f"{cls.__name__}: missing setting(s) {', '.join(missing)}")
    kwargs = {name: _check(name, value, hints[name]) if name in hints else value
              for name, value in config.items()}
    return cls(device_id, **kwargs)
