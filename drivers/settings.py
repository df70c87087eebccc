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
BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)


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


# -- forms ------------------------------------------------------------------------------------
# A driver that is set up on a page declares, beside its keyword arguments, how each setting is
# shown: ``FORM = {name: Field(...)}``, in the order of the form. The type, the default and
# whether None is allowed come from the arguments themselves (:func:`form_fields`); a page
# turns the submitted text back into a configuration with :func:`from_form`.


@dataclasses.dataclass(frozen=True)
class Field:
    """How one setting is offered on a form. Words are English, looked up in the page's
    catalogue by the page."""

    label: str
    help: str = ""
    choices: tuple = ()           # the values offered, in order; None among them: none_label
    none_label: str = ""
    minimum: float | None = None
    maximum: float | None = None


@dataclasses.dataclass(frozen=True)
class FormField:
    name: str
    field: Field
    type: type                    # int, float or str
    optional: bool                # None is a value
    default: Any                  # inspect.Parameter.empty when required


class FieldError(SettingsError):
    """A form value refused: ``name`` is the setting, ``problem`` a fixed code
    (``whole_number``, ``number``, ``choice``, ``minimum``, ``maximum``), ``limit`` the bound."""

    def __init__(self, name: str, label: str, problem: str, value: str, limit: Any = None):
        super().__init__(f"{label} ({name}): {value!r}: {problem}"
                         + (f" {limit}" if limit is not None else ""))
        self.name, self.label, self.problem, self.value, self.limit = (
            name, label, problem, value, limit)


def form_fields(cls: type) -> list[FormField]:
    """The settings ``cls`` declares for forms, with their type and default from its
    arguments; a declared setting that is not an argument of ``cls`` is a programming error."""
    params = inspect.signature(cls.__init__).parameters
    hints = typing.get_type_hints(cls.__init__)
    out = []
    for name, field in cls.FORM.items():
        if name not in params:
            raise TypeError(f"{cls.__name__}.FORM: {name!r} is not one of its arguments")
        hint = hints[name]
        args = typing.get_args(hint)
        optional = type(None) in args
        base = next((a for a in args if a is not type(None)), hint) if args else hint
        out.append(FormField(name, field, base, optional, params[name].default))
    return out


def _number(ff: FormField, text: str) -> Any:
    label = ff.field.label
    try:
        value = int(text) if ff.type is int else float(text) if ff.type is float else text
    except ValueError:
        raise FieldError(ff.name, label, "whole_number" if ff.type is int else "number",
                         text) from None
    if isinstance(value, float) and value != value:  # NaN
        raise FieldError(ff.name, label, "number", text)
    if ff.field.minimum is not None and value < ff.field.minimum:
        raise FieldError(ff.name, label, "minimum", text, ff.field.minimum)
    if ff.field.maximum is not None and value > ff.field.maximum:
        raise FieldError(ff.name, label, "maximum", text, ff.field.maximum)
    return value


def from_form(cls: type, form: Mapping[str, str]) -> dict[str, Any]:
    """The configuration the form's text values describe, for the settings ``cls`` declares:
    a setting missing from the form is left at its default; an empty value is None for a
    setting that may be None (a "none" choice) and else the default; a value equal to the
    default is left out; a choice must be one of those offered. Raises :class:`FieldError`
    naming the first bad setting."""
    config: dict[str, Any] = {}
    for ff in form_fields(cls):
        if ff.name not in form:
            continue
        text = str(form[ff.name]).strip()
        if text == "":
            value = None if ff.optional else ff.default
            if value is inspect.Parameter.empty:
                raise FieldError(ff.name, ff.field.label, "required", text)
        else:
            value = _number(ff, text)
        if ff.field.choices and value not in ff.field.choices:
            raise FieldError(ff.name, ff.field.label, "choice", text)
        if value != ff.default:
            config[ff.name] = value
    return config
