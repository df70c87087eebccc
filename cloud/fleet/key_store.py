"""Where the hub's ticket-signing private keys live, behind one interface.

The key stores and their settings. Two, chosen by the hub's configuration (the environment), never by the database:

- ``token``: a PKCS#11 token (a hardware security module in production, SoftHSM2 in tests and
  the demo), when ``$WICKET_HUB_PKCS11_MODULE`` names its library. The key pair is generated
  inside the token, the private half sensitive and not extractable: it never leaves the token,
  and the database keeps only the object's id there (``cloud/fleet/token_store.py``).
- ``wrapped``: otherwise. The private key is kept in the database encrypted (AES-GCM) under a
  key-encryption key in an owner-only file outside it (``cloud/fleet/wrapped_store.py``).

Each signing key's row says which store holds it, so a hub that gains a token keeps signing
with its wrapped key until a key made in the token is activated. A store answers four calls:
``generate`` (a new key pair: its public key and what the row keeps), ``signer`` (something
that signs with a row's key), ``destroy`` (a retired key's private half) and ``describe``.

Settings (environment):

``WICKET_HUB_PKCS11_MODULE``  the PKCS#11 library (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so)
``WICKET_HUB_PKCS11_TOKEN``   the token's label
``WICKET_HUB_PKCS11_PIN`` or ``WICKET_HUB_PKCS11_PIN_FILE``   the user PIN (the file owner-only)
``WICKET_HUB_KEK_FILE``       the key-encryption key's file; default ``<database file>.kek``
                              beside a SQLite database, else ``signing.kek`` in
                              ``$WICKET_HUB_INSTANCE`` (or the hub's instance folder)
"""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import sqlalchemy as sa

from cloud.core.errors import Code, HubError
from sync.keys import Signer

TOKEN, WRAPPED = "token", "wrapped"


class SigningKeyError(HubError):
    codes = {
        "no_free_key_id": Code(409, "all 255 key ids are in use"),
        "unknown_key": Code(404, "no key %(key_id)s"),
        "key_not_published": Code(
            409, "key %(key_id)s is %(state)s; only a published key can sign"),
        "key_not_reported": Code(
            409, "key %(key_id)s: %(count)s active appliance(s) have not yet reported having it "
                 "(appliance %(first)s first); activate it after they have synced"),
        "key_is_active": Code(409, "key %(key_id)s is the active key; activate another one "
                                   "first"),
        "no_active_key": Code(409, "no active signing key: create one and activate it"),
        "signing_token_unavailable": Code(
            409, "the PKCS#11 token %(token)s cannot be used (%(reason)s)"),
        "no_signing_token": Code(
            409, "key %(key_id)s is held in a PKCS#11 token, and this hub has none configured"),
        "key_not_in_token": Code(409, "key %(key_id)s is not in the token %(token)s"),
        "key_file_unusable": Code(
            409, "the key-encryption key file %(path)s cannot be used (%(reason)s)"),
        "key_does_not_unwrap": Code(
            409, "key %(key_id)s does not open with the key-encryption key in %(path)s"),
        "key_does_not_sign": Code(
            409, "key %(key_id)s signs with a private key that does not match its public key"),
    }


@dataclass(frozen=True)
class TokenSettings:
    module: str
    label: str
    pin: str = field(repr=False)


@dataclass(frozen=True)
class NewKey:
    """A key pair just made: its raw public key and what its row keeps to find the private
    half again (the token's object id, or the wrapped private key)."""

    public_raw: bytes
    token_object: str | None = None
    wrapped_private: bytes | None = None


class KeyRow(Protocol):
    key_id: int
    public_key: str
    store: str
    token_object: str | None
    wrapped_private: bytes | None


class Keystore(Protocol):
    name: str

    def generate(self, key_id: int) -> NewKey: ...

    def signer(self, row: KeyRow) -> Signer: ...

    def destroy(self, row: KeyRow) -> None: ...

    def describe(self) -> str: ...


def token_settings() -> TokenSettings | None:
    """The configured token, or None when the hub has none."""
    module = os.environ.get("WICKET_HUB_PKCS11_MODULE", "").strip()
    if not module:
        return None
    label = os.environ.get("WICKET_HUB_PKCS11_TOKEN", "").strip()
    if not label:
        raise SigningKeyError("signing_token_unavailable", token="(none)",
                              reason="WICKET_HUB_PKCS11_TOKEN names no token label")
    return TokenSettings(module, label, _pin(label))


def _pin(label: str) -> str:
    pin = os.environ.get("WICKET_HUB_PKCS11_PIN")
    if pin:
        return pin
    path = os.environ.get("WICKET_HUB_PKCS11_PIN_FILE", "").strip()
    if not path:
        raise SigningKeyError("signing_token_unavailable", token=label,
                              reason="no PIN: set WICKET_HUB_PKCS11_PIN or _PIN_FILE")
    try:
        mode = os.stat(path).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SigningKeyError("signing_token_unavailable", token=label,
                                  reason=f"{path} is readable by others; chmod 600 it")
        return Path(path).read_text("utf-8").strip()
    except OSError as e:
        raise SigningKeyError("signing_token_unavailable", token=label,
                              reason=f"{path}: {e.strerror}") from None


def instance_dir() -> Path:
    """``$WICKET_HUB_INSTANCE``, else the folder Flask picks as the hub's instance folder
    (``instance/`` beside a source checkout, ``<prefix>/var/cloud-instance`` when installed),
    worked out here without Flask; a test checks the two agree."""
    env = os.environ.get("WICKET_HUB_INSTANCE")
    if env:
        return Path(env)
    package_parent = Path(__file__).resolve().parents[2]
    prefix = Path(sys.prefix).resolve()
    if package_parent.is_relative_to(prefix):
        return prefix / "var" / "cloud-instance"
    if package_parent.name.lower() == "site-packages" and package_parent.parent.parent.name \
            .lower() == "lib":
        return package_parent.parents[2] / "var" / "cloud-instance"
    return package_parent / "instance"


def kek_path(database_url: str | sa.URL) -> Path:
    """Where the key-encryption key is kept: never in the database."""
    env = os.environ.get("WICKET_HUB_KEK_FILE", "").strip()
    if env:
        return Path(env)
    url = sa.engine.make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        db = Path(url.database).resolve()
        return db.with_name(db.name + ".kek")
    return instance_dir() / "signing.kek"
