"""The appliance's web app over a real appliance database, for the handheld tests."""

from __future__ import annotations

from flask import Flask

from edge import config as config_mod
from edge.web.app import create_app


def make_app(database, holder_key: str) -> Flask:
    return create_app({"DATABASE": str(database), "HOLDER_KEY": holder_key, "TESTING": True,
                       "IDLE_MINUTES": 30, "SESSION_HOURS": 12, "PASSWORD_MAX_AGE_DAYS": 180})


def write_config(path, database, holder_key: str) -> None:
    """An appliance configuration file, for `wicket-edge web` in a real process."""
    config_mod.write_new(path, {"database": str(database), "holder_key": holder_key})
