"""Signing keys in their stores: made in a PKCS#11 token (SoftHSM2 here) and never readable out
of it, or wrapped under a key-encryption key outside the database; either way no clear private
key in the database file or its dump, before and after migration 0016."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pkcs11
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.util import CommandError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pkcs11 import Attribute, ObjectClass

from cloud.core.audit import audit_log
from cloud.core.db import alembic_config, init_db, make_engine
from cloud.core.trust import signing_keys
from cloud.demo import load_demo
from cloud.fleet import keys
from cloud.fleet.key_store import instance_dir, kek_path
from cloud.fleet.keys import SigningKeyError, activate_key, active_key, create_key, retire_key
from cloud.fleet.wrapped_store import read_kek, unwrap_private
from sync import codes
from sync.keys import KeyRing

BOTH = pytest.mark.parametrize("key_store", ["wrapped", "token"], indirect=True)
PAYLOAD = codes.TicketPayload(ticket_id=7, kind=codes.Kind.SESSION, scope=(3,), zone=1)


def _row(conn, key_id):
    return conn.execute(sa.select(signing_keys).where(signing_keys.c.key_id == key_id)).one()


def _token_objects(softhsm, token_object: str):
    lib = pkcs11.lib(softhsm.module)
    token = lib.get_token(token_label=softhsm.label)
    try:
        session = token.open(user_pin=softhsm.pin)
    except pkcs11.UserAlreadyLoggedIn:  # by the hub's own session in this process
        session = token.open()
    return session, list(session.get_objects({Attribute.ID: bytes.fromhex(token_object)}))


@BOTH
def test_a_key_is_made_activated_signs_and_is_destroyed_at_retirement(hub_url, key_store,
                                                                     request):
    init_db(hub_url)
    engine = make_engine(hub_url)
    with engine.begin() as conn:
        first = create_key(conn)
        activate_key(conn, first)
        key = active_key(conn)
        code = codes.encode(PAYLOAD, key)
        row = _row(conn, first)
        assert row.store == key_store
        assert (row.token_object is not None) == (key_store == "token")
        assert (row.wrapped_private is not None) == (key_store == "wrapped")
    # the appliance's side, unchanged: the public key from the row verifies the code
    assert codes.decode(code, KeyRing({first: row.public_key})) == replace(PAYLOAD, key_id=first)
    with engine.begin() as conn:
        second = create_key(conn)
        activate_key(conn, second)
        retire_key(conn, first)
        retired = _row(conn, first)
        assert retired.wrapped_private is None
        actions = conn.execute(sa.select(audit_log.c.action, audit_log.c.after)
                               .where(audit_log.c.subject == f"key:{first}")).all()
    assert [a.action for a in actions] == ["key.create", "key.activate", "key.retire"]
    assert actions[0].after["store"] == key_store
    if key_store == "token":
        session, left = _token_objects(request.getfixturevalue("softhsm"), row.token_object)
        session.close()
        assert left == []
    engine.dispose()


class _BadSigner:
    """A store's signer whose signatures do not check against its public key (a token that
    answers wrongly)."""

    def __init__(self, real):
        self.real = real

    def public_key(self):
        return self.real.public_key()

    def sign(self, data: bytes) -> bytes:
        return bytes(64)


def test_a_key_whose_signatures_do_not_check_is_refused_at_activation(tmp_path, monkeypatch):
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    init_db(str(engine.url))
    with engine.begin() as conn:
        key_id = create_key(conn)
    real_store_for = keys.store_for

    class Store:
        def __init__(self, store):
            self.store = store

        def signer(self, row):
            return _BadSigner(self.store.signer(row))

    monkeypatch.setattr(keys, "store_for", lambda conn, row: Store(real_store_for(conn, row)))
    with engine.begin() as conn, pytest.raises(SigningKeyError) as refused:
        activate_key(conn, key_id)
    assert refused.value.code == "key_does_not_sign"
    with engine.connect() as conn:
        assert _row(conn, key_id).state == "published"
    engine.dispose()


def test_a_token_key_is_made_in_the_token_and_cannot_be_read_out(tmp_path, softhsm,
                                                                 monkeypatch):
    for name, value in softhsm.env().items():
        monkeypatch.setenv(name, value)
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    init_db(str(engine.url))
    with engine.begin() as conn:
        row = _row(conn, create_key(conn))
    session, objects = _token_objects(softhsm, row.token_object)
    try:
        private = next(o for o in objects if o.object_class == ObjectClass.PRIVATE_KEY)
        assert private[Attribute.SENSITIVE] and private[Attribute.NEVER_EXTRACTABLE]
        assert not private[Attribute.EXTRACTABLE]
        assert private[Attribute.LOCAL]  # generated inside the token, never imported
        with pytest.raises(pkcs11.AttributeSensitive):
            private[Attribute.VALUE]
    finally:
        session.close()
    assert not kek_path(engine.url).exists()  # a hub with a token needs no key file
    engine.dispose()


def _clear_forms(private: Ed25519PrivateKey) -> list[bytes]:
    raw = private.private_bytes_raw()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    der = private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return [raw, raw.hex().encode(), base64.b64encode(raw), pem.split(b"\n")[1], der,
            b"PRIVATE KEY"]


def database_bytes(url: str) -> bytes:
    """Everything the database holds as it would leave in a backup: the SQLite file (and its
    WAL), or a pg_dump of the PostgreSQL database."""
    u = sa.engine.make_url(url)
    if u.get_backend_name() == "sqlite":
        return b"".join(Path(p).read_bytes() for p in (u.database, u.database + "-wal")
                        if os.path.exists(p))
    env = {**os.environ, "PGPASSWORD": u.password or ""}
    return subprocess.run(["pg_dump", "-h", u.host or "127.0.0.1", "-p", str(u.port or 5432),
                           "-U", u.username, "-d", u.database], env=env, check=True,
                          capture_output=True).stdout


@pytest.mark.empty_hub
def test_migration_0016_wraps_clear_keys_and_leaves_none_in_the_database(hub_url, key_store):
    cfg = alembic_config(hub_url)
    engine = make_engine(hub_url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0014")
    old = {1: ("retired", Ed25519PrivateKey.generate()),
           2: ("active", Ed25519PrivateKey.generate())}
    with engine.begin() as conn:
        for key_id, (state, private) in old.items():
            pem = private.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode("ascii")
            public = base64.b64encode(private.public_key().public_bytes_raw()).decode()
            conn.execute(sa.text(
                "INSERT INTO signing_keys (key_id, public_key, private_pem, state, created_at) "
                "VALUES (:k, :p, :pem, :s, CURRENT_TIMESTAMP)"),
                {"k": key_id, "p": public, "pem": pem, "s": state})
    engine.dispose()
    assert b"PRIVATE KEY" in database_bytes(hub_url)  # the test sees a clear key when there
    assert "0016" in init_db(hub_url)
    engine = make_engine(hub_url)
    with engine.begin() as conn:
        assert _row(conn, 1).wrapped_private is None  # a retired key is not kept at all
        key = active_key(conn)
        assert key.key_id == 2
        assert key.public_key_b64() == _row(conn, 2).public_key
        assert key.private_key.private_bytes_raw() == old[2][1].private_bytes_raw()
        assert _row(conn, 2).store == "wrapped"
    engine.dispose()
    dump = database_bytes(hub_url)
    for _, private in old.values():
        for form in _clear_forms(private):
            assert form not in dump


def test_migration_0016_refuses_to_be_undone_and_leaves_the_keys_wrapped(hub_url, key_store):
    init_db(hub_url)
    engine = make_engine(hub_url)
    with engine.begin() as conn:
        create_key(conn)
    cfg = alembic_config(hub_url)
    with engine.begin() as conn, pytest.raises(CommandError, match="in clear"):
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0014")
    with engine.begin() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "0016"
        assert _row(conn, 1).store in ("wrapped", "token")
    engine.dispose()


def test_the_demo_data_leaves_no_clear_private_key_in_the_database(hub_url):
    init_db(hub_url)
    engine = make_engine(hub_url)
    with engine.begin() as conn:
        load_demo(conn, tickets=20)  # makes and activates the key, and signs with it
        row = _row(conn, 1)
        kek = read_kek(kek_path(engine.url))
    engine.dispose()
    raw = unwrap_private(kek, 1, row.wrapped_private, base64.b64decode(row.public_key))
    dump = database_bytes(hub_url)
    for form in _clear_forms(Ed25519PrivateKey.from_private_bytes(raw))[:-1]:
        assert form not in dump
    assert base64.b64encode(kek) not in dump and kek not in dump


def test_a_missing_foreign_or_open_key_file_is_refused_by_its_code(tmp_path, key_store):
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    init_db(url)
    path = kek_path(url)
    assert path == tmp_path / "hub.db.kek" and path.stat().st_mode & 0o777 == 0o600
    engine = make_engine(url)
    with engine.begin() as conn:
        activate_key(conn, create_key(conn))
    good = path.read_bytes()
    path.chmod(0o644)
    with pytest.raises(SigningKeyError) as err, engine.begin() as conn:
        active_key(conn)
    assert err.value.code == "key_file_unusable" and "readable by others" in str(err.value)
    path.unlink()
    with engine.begin() as conn:
        with pytest.raises(SigningKeyError, match="missing"):
            create_key(conn)  # a new key file would never open the keys under the lost one
    assert not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, base64.b64encode(os.urandom(32)) + b"\n")
    os.close(fd)
    with pytest.raises(SigningKeyError) as err, engine.begin() as conn:
        active_key(conn)
    assert err.value.code == "key_does_not_unwrap"
    path.write_bytes(good)
    with engine.begin() as conn:
        assert active_key(conn).key_id == 1
    engine.dispose()


def test_a_token_key_needs_the_token_configured_and_the_right_pin(tmp_path, softhsm,
                                                                 monkeypatch):
    for name, value in softhsm.env().items():
        monkeypatch.setenv(name, value)
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    init_db(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        activate_key(conn, create_key(conn))
    monkeypatch.delenv("WICKET_HUB_PKCS11_MODULE")
    with pytest.raises(SigningKeyError) as err, engine.begin() as conn:
        active_key(conn)
    assert err.value.code == "no_signing_token"
    engine.dispose()
    # a wrong PIN, in a process of its own (PKCS#11 keeps a process signed in to a token)
    script = ("import sys, sqlalchemy as sa\n"
              "from cloud.core.db import make_engine\n"
              "from cloud.fleet.keys import SigningKeyError, active_key\n"
              "with make_engine(sys.argv[1]).begin() as conn:\n"
              "    try:\n        active_key(conn)\n"
              "    except SigningKeyError as e:\n        print(e.code, e)\n")
    env = {**os.environ, **softhsm.env(), "WICKET_HUB_PKCS11_PIN": "wrong-pin",
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run([sys.executable, "-c", script, url], env=env, capture_output=True,
                         text=True, check=True).stdout
    assert out.startswith("signing_token_unavailable") and "PinIncorrect" in out


def test_the_instance_folder_is_the_one_flask_picks(monkeypatch):
    from flask import Flask

    monkeypatch.delenv("WICKET_HUB_INSTANCE", raising=False)
    assert instance_dir() == Path(Flask("cloud").instance_path)
