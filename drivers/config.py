"""Build a driver from the settings the runtime keeps for a device: every key must be one of
the driver's keyword arguments (unknown keys are rejected, not ignored), and values are
converted to the argument's declared type, so a typo in a lane's configuration is a clear
error at start rather than a silent default."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Mapping


def build(cls: type, device_id: str, config: Mapping[str, object]):
    """``cls(device_id, **config)`` after checking the keys against ``cls.__init__``."""
    params = inspect.signature(cls.__init__).parameters
    hints = typing.get_type_hints(cls.__init__)
    known = {name for name, p in params.items()
             if name not in ("self", "device_id") and p.kind is not p.VAR_KEYWORD}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown settings {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(known))}")
    missing = sorted(name for name in known
                     if params[name].default is inspect.Parameter.empty and name not in config)
    if missing:
        raise ValueError(f"{cls.__name__}: missing settings {', '.join(missing)}")
    kwargs = {name: _convert(cls.__name__, name, value, hints.get(name))
              for name, value in config.items()}
    return cls(device_id, **kwargs)


def _convert(owner: str, name: str, value: object, hint: object) -> object:
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    options = typing.get_args(hint) if union else (hint,)
    if value is None and type(None) in options:
        return None
    for kind in options:
        if kind is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
                return value.lower() in ("true", "1")
        elif kind in (int, float, str):
            if isinstance(value, bool):
                continue
            try:
                return kind(value)  # type: ignore[operator]
            except (TypeError, ValueError):
                continue
        elif kind is None or kind is typing.Any:
            return value
    raise ValueError(f"{owner}: setting {name}={value!r} is not a {hint}")

