"""A turnstile's settings on the Devices page: one form per driver (Modbus relay board, RS-485
tripod, USB relay), generated from the settings each driver declares (``FORM``, see
:mod:`drivers.settings`), instead of raw JSON. Plain helpers: the view only calls them."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _

from drivers import settings as driver_settings
from drivers.turnstiles import DEFAULT_MODEL, MODELS

TURNSTILE = "turnstile"
PREFIX = "setting."  # form field names: setting.<model>.<setting>
# where the device is reached: the configuration key the runtime reads, per kind
CONNECTION_KEY = {"turnstile": "port", "qr_camera": "source", "barcode_scanner": "port",
                  "rfid_reader": "reader", "id_reader": "port"}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def turnstile_forms(device: dict | None, submitted: dict | None = None) -> list[dict]:
    """Per model, its words and its fields, each with the value to show: what was submitted,
    else the device's own setting when it is of this model, else the driver's default."""
    config = (device or {}).get("config") or {}
    current = (config.get("model") or DEFAULT_MODEL) if (device or {}).get("kind") == TURNSTILE \
        else None
    out = []
    for model, spec in MODELS.items():
        fields = []
        for ff in driver_settings.form_fields(spec.driver()):
            key = f"{PREFIX}{model}.{ff.name}"
            if submitted is not None and key in submitted:
                value = submitted[key]
            elif model == current and ff.name in config:
                value = _text(config[ff.name])
            else:
                value = _text(ff.default)
            f = ff.field
            fields.append({
                "name": key, "label": _(f.label), "help": _(f.help), "value": value,
                "choices": [("" if c is None else _text(c),
                             _(f.none_label) if c is None else _text(c)) for c in f.choices],
                "minimum": f.minimum, "maximum": f.maximum,
                "step": "1" if ff.type is int else "any"})
        out.append({"model": model, "label": _(spec.label), "help": _(spec.help),
                    "fields": fields})
    return out


def current_model(device: dict | None) -> str:
    config = (device or {}).get("config") or {}
    return config.get("model") or DEFAULT_MODEL


def _field_error(e: driver_settings.FieldError) -> str:
    label = _(e.label)
    return {
        "whole_number": lambda: _("%(label)s: %(value)s is not a whole number.", label=label,
                                  value=e.value),
        "number": lambda: _("%(label)s: %(value)s is not a number.", label=label,
                            value=e.value),
        "choice": lambda: _("%(label)s: choose one of the values offered.", label=label),
        "minimum": lambda: _("%(label)s: %(value)s is below %(limit)s.", label=label,
                             value=e.value, limit=_text(e.limit)),
        "maximum": lambda: _("%(label)s: %(value)s is above %(limit)s.", label=label,
                             value=e.value, limit=_text(e.limit)),
    }.get(e.problem, lambda: _("%(label)s: this value is needed.", label=label))()


def turnstile_config(form, device_id: str, connection: str) -> tuple[dict, list[str]]:
    """The configuration a turnstile's form describes (its model, its port, and the settings
    that differ from the driver's defaults), and what is wrong with it, each naming the
    setting. The driver itself is built from it (nothing opened) so that it refuses what its
    declaration does not say."""
    model = form.get("model") or DEFAULT_MODEL  # as the gate runtime reads a device without
    if model not in MODELS:
        return {}, [_("Choose the turnstile's model.")]
    driver = MODELS[model].driver()
    prefix = f"{PREFIX}{model}."
    values = {k[len(prefix):]: v for k, v in form.items() if k.startswith(prefix)}
    try:
        settings = driver_settings.from_form(driver, values)
    except driver_settings.FieldError as e:
        return {}, [_field_error(e)]
    config = {"model": model, **settings}
    if connection:
        config["port"] = connection
    try:
        driver_settings.build(driver, device_id or "new", {"port": connection or "-",
                                                           **settings})
    except (driver_settings.SettingsError, TypeError, ValueError) as e:
        return {}, [_("The driver refuses these settings: %(reason)s", reason=str(e))]
    return config, []
