"""Which key store holds a signing key, and the one new keys are made in (see
``cloud/fleet/key_store.py`` for the stores and their settings). One store per configuration
and process, made on first use."""

from __future__ import annotations

import os
import threading

import sqlalchemy as sa

from cloud.fleet.key_store import (
    TOKEN,
    WRAPPED,
    KeyRow,
    Keystore,
    SigningKeyError,
    TokenSettings,
    kek_path,
    token_settings,
)
from cloud.fleet.token_store import TokenKeystore
from cloud.fleet.wrapped_store import WrappedKeystore

__all__ = ["TOKEN", "WRAPPED", "SigningKeyError", "default_store", "store_for"]

_lock = threading.Lock()
_stores: dict[tuple, Keystore] = {}


def _cached(key: tuple, make) -> Keystore:
    with _lock:
        store = _stores.get(key)
        if store is None:
            store = _stores[key] = make()
        return store


def _token_store(settings: TokenSettings) -> Keystore:
    # keyed by process too: a forked worker opens the library and its session afresh
    return _cached((TOKEN, settings, os.getpid()), lambda: TokenKeystore(settings))


def _wrapped_store(conn: sa.Connection) -> Keystore:
    path = kek_path(conn.engine.url)
    return _cached((WRAPPED, str(path)), lambda: WrappedKeystore(path))


def default_store(conn: sa.Connection) -> Keystore:
    """The store new keys are made in: the token when one is configured."""
    settings = token_settings()
    return _token_store(settings) if settings is not None else _wrapped_store(conn)


def store_for(conn: sa.Connection, row: KeyRow) -> Keystore:
    """The store that holds a row's private key."""
    if row.store == TOKEN:
        settings = token_settings()
        if settings is None:
            raise SigningKeyError("no_signing_token", key_id=row.key_id)
        return _token_store(settings)
    return _wrapped_store(conn)
