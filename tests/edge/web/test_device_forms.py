"""Adding a turnstile on the Devices page: a form per driver (Modbus relay board, RS-485 tripod,
USB relay) generated from the settings the driver declares, not raw JSON; what is saved is a
device the gate runtime can build, and a bad value is refused naming its setting."""

from __future__ import annotations

import json
import re

import pytest
from markupsafe import escape

from drivers import settings as driver_settings
from drivers.turnstiles import MODELS
from edge.gates.devices import DeviceRow, build_driver
from sync.i18n import translations_from_po
from tests.edge.web.test_i18n import PO

EXPECTED = {
    "modbus": {"unit", "baudrate", "unlock_a", "unlock_b", "pass_a", "pass_b", "alarm_input",
               "pulse_ms", "reply_timeout_ms", "down_after"},
    "onetech": {"baudrate", "answer_timeout_s", "down_after"},
    "usb_relay": {"channel_a", "channel_b", "pulse_ms", "baudrate"},
}


def esc(text: str) -> str:
    return str(escape(text))  # as the templates write it


def fieldset(page: str, model: str) -> str:
    return re.search(rf'<fieldset class="model-settings" data-model="{model}".*?</fieldset>',
                     page, re.S).group(0)


def test_each_driver_has_its_own_fields_with_choices_and_help_on_the_page(as_role):
    page = as_role("admin").get("/devices/").data.decode()
    assert set(MODELS) == set(EXPECTED)
    for model, names in EXPECTED.items():
        part = fieldset(page, model)
        assert set(re.findall(rf'name="setting\.{model}\.(\w+)"', part)) == names
        for ff in driver_settings.form_fields(MODELS[model].driver()):
            assert esc(ff.field.label) in part and esc(ff.field.help) in part
    modbus = fieldset(page, "modbus")
    # choices where the driver offers them, the default chosen; numbers with their bounds
    baud = re.search(r'<select name="setting\.modbus\.baudrate">(.*?)</select>', modbus,
                     re.S).group(1)
    assert re.findall(r'value="(\d+)"', baud)[:4] == ["1200", "2400", "4800", "9600"]
    assert '<option value="9600" selected>' in baud
    assert '<option value="">not wired</option>' in modbus
    assert re.search(r'name="setting\.modbus\.unit" type="number" step="1" min="1" max="247" '
                     r'value="1"', modbus)


@pytest.mark.parametrize("model, form, stored", [
    ("modbus", {"unit": "7", "baudrate": "19200", "unlock_b": "", "pass_b": "",
                "alarm_input": "5", "pulse_ms": "800"},
     {"unit": 7, "baudrate": 19200, "unlock_b": None, "pass_b": None, "alarm_input": 5,
      "pulse_ms": 800}),
    ("onetech", {"baudrate": "4800", "answer_timeout_s": "20.5", "down_after": "3"},
     {"baudrate": 4800, "answer_timeout_s": 20.5}),
    ("usb_relay", {"channel_a": "2", "channel_b": "3", "pulse_ms": "500"},
     {"channel_a": 2, "channel_b": 3}),
])
def test_saving_a_drivers_form_stores_a_device_the_runtime_can_build(
        as_role, appliance, model, form, stored):
    b = as_role("admin")
    r = b.post("/devices/", {"id": "N1-TS", "kind": "turnstile", "lane_id": "1",
                             "connection": "/dev/ttyUSB0", "model": model, "enabled": "1",
                             **{f"setting.{model}.{k}": v for k, v in form.items()}})
    assert r.status_code == 303, r.data.decode()
    row = appliance["conn"].execute(
        "SELECT id, lane_id, kind, config, enabled FROM devices WHERE id = 'N1-TS'").fetchone()
    config = json.loads(row[3])
    # values equal to the driver's defaults are left out
    assert config == {"model": model, "port": "/dev/ttyUSB0", **stored}
    driver = build_driver(DeviceRow.from_db(row))
    assert type(driver) is MODELS[model].driver()
    # the device's page shows its own values chosen
    page = b.get("/devices/N1-TS").data.decode()
    assert re.search(rf'<option value="{model}" selected>', page)
    for key, value in stored.items():
        shown = "" if value is None else str(value)
        assert (f'name="setting.{model}.{key}"' in page
                and (f'<option value="{shown}" selected>' in page
                     or f'value="{shown}"' in page)), key


@pytest.mark.parametrize("model, key, value, words", [
    ("modbus", "unit", "300", "Board address (Modbus unit): 300 is above 247."),
    ("modbus", "pulse_ms", "soon", "Unlock pulse (ms): soon is not a whole number."),
    ("modbus", "baudrate", "9601", "Baud rate: choose one of the values offered."),
    ("onetech", "answer_timeout_s", "0", "Answer timeout (s): 0 is below 1."),
    ("usb_relay", "channel_a", "9", "Relay, direction A: choose one of the values offered."),
    ("usb_relay", "pulse_ms", "50", "Unlock pulse (ms): 50 is below 100."),
])
def test_a_bad_value_is_refused_naming_its_setting_and_nothing_is_stored(
        as_role, appliance, model, key, value, words):
    b = as_role("admin")
    r = b.post("/devices/", {"id": "N1-TS", "kind": "turnstile", "connection": "/dev/ttyUSB0",
                             "model": model, f"setting.{model}.{key}": value})
    assert r.status_code == 400
    page = r.data.decode()
    assert esc(words) in page, page
    assert f'name="setting.{model}.{key}"' in page  # the form is shown again, with the value
    assert appliance["conn"].execute("SELECT count(*) FROM devices").fetchone() == (0,)
    r = b.post("/devices/", {"id": "N1-TS", "kind": "turnstile", "model": "toaster"})
    assert r.status_code == 400 and esc("Choose the turnstile's model.") in r.data.decode()


def test_the_json_settings_are_not_a_turnstiles(as_role, appliance):
    b = as_role("admin")
    r = b.post("/devices/", {"id": "N1-TS", "kind": "turnstile", "connection": "/dev/ttyUSB0",
                             "model": "usb_relay", "settings": '{"channel_a": 4}'})
    assert r.status_code == 303
    config = json.loads(appliance["conn"].execute("SELECT config FROM devices").fetchone()[0])
    assert config == {"model": "usb_relay", "port": "/dev/ttyUSB0"}


def test_every_declared_setting_is_an_argument_and_its_words_are_in_chinese():
    zh = translations_from_po(PO)
    for spec in MODELS.values():
        words = [spec.label, spec.help]
        for ff in driver_settings.form_fields(spec.driver()):
            words += [w for w in (ff.field.label, ff.field.help, ff.field.none_label) if w]
        for w in words:
            assert zh.gettext(w) != w, w


def test_a_form_value_becomes_a_typed_setting_or_a_field_error():
    from drivers.modbus_turnstile import ModbusTurnstile

    assert driver_settings.from_form(ModbusTurnstile, {}) == {}
    assert driver_settings.from_form(ModbusTurnstile, {"unit": " 12 ", "alarm_input": ""}) == {
        "unit": 12, "alarm_input": None}
    with pytest.raises(driver_settings.FieldError) as e:
        driver_settings.from_form(ModbusTurnstile, {"reply_timeout_ms": "1e9"})
    assert (e.value.name, e.value.problem) == ("reply_timeout_ms", "whole_number")

    class Broken:
        FORM = {"nonsense": driver_settings.Field("Nonsense")}

        def __init__(self, device_id: str, port: str):
            pass

    with pytest.raises(TypeError):
        driver_settings.form_fields(Broken)
