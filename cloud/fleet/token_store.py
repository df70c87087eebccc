"""Signing keys inside a PKCS#11 token, through python-pkcs11.

The key pair is generated in the token (``CKM_EC_EDWARDS_KEY_PAIR_GEN`` on Ed25519) as token
objects; the private half is sensitive, not extractable and marked for signing only, so no
call of this module (or any other) can read it out. The row keeps the objects' ``CKA_ID``
(random, so several hubs may share a token) and the public key; a signature is one
``CKM_EDDSA`` call in the token.

One logged-in session per process, opened on first use: python-pkcs11 serialises the
operations of a session with its own lock, so request threads share it. A forked process gets
a store of its own (:mod:`cloud.fleet.signers` keys its cache by process) and initialises the
library afresh, as PKCS#11 asks after ``fork``.
"""

from __future__ import annotations

import os
import secrets
import threading

import pkcs11
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

from cloud.fleet.key_store import TOKEN, KeyRow, NewKey, SigningKeyError, TokenSettings
from sync.keys import load_public_key

ED25519_OID = "1.3.101.112"
_initialised_in: dict[str, int] = {}


def _raw_point(point: bytes) -> bytes:
    """The 32-byte public key from ``CKA_EC_POINT``: DER (an OCTET STRING) or raw, as tokens
    differ."""
    if len(point) == 34 and point[:2] == b"\x04\x20":
        return point[2:]
    return point


class TokenSigner:
    """Signs with a private key that stays in the token."""

    def __init__(self, key, public: Ed25519PublicKey):
        self._key, self._public = key, public

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data, mechanism=Mechanism.EDDSA)

    def public_key(self) -> Ed25519PublicKey:
        return self._public


class TokenKeystore:
    name = TOKEN

    def __init__(self, settings: TokenSettings):
        self.settings = settings
        self._lock = threading.Lock()
        self._session = None
        self._signers: dict[str, TokenSigner] = {}

    def describe(self) -> str:
        return f"PKCS#11 token {self.settings.label!r} ({self.settings.module})"

    def _unavailable(self, reason: str) -> SigningKeyError:
        return SigningKeyError("signing_token_unavailable", token=self.settings.label,
                               reason=reason)

    def session(self):
        with self._lock:
            if self._session is None:
                self._session = self._open()
            return self._session

    def _open(self):
        module = self.settings.module
        try:
            lib = pkcs11.lib(module)
            if _initialised_in.setdefault(module, os.getpid()) != os.getpid():
                lib.reinitialize()  # a forked child must not use its parent's library state
                _initialised_in[module] = os.getpid()
            token = lib.get_token(token_label=self.settings.label)
            try:
                return token.open(user_pin=self.settings.pin, rw=True)
            except pkcs11.UserAlreadyLoggedIn:
                # PKCS#11 logs in the process, not the session: another store of this process
                # (a test's, or one from before a setting changed) is signed in already
                return token.open(rw=True)
        except pkcs11.PKCS11Error as e:
            raise self._unavailable(type(e).__name__) from None
        except OSError as e:  # the library cannot be loaded
            raise self._unavailable(str(e)) from None

    def generate(self, key_id: int) -> NewKey:
        object_id = secrets.token_bytes(16)
        session = self.session()
        try:
            params = session.create_domain_parameters(
                KeyType.EC_EDWARDS,
                {Attribute.EC_PARAMS: encode_named_curve_parameters(ED25519_OID)}, local=True)
            public, _private = params.generate_keypair(
                mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN, store=True, id=object_id,
                label=f"wicket-hub signing key {key_id}",
                public_template={Attribute.VERIFY: True, Attribute.TOKEN: True},
                private_template={Attribute.SIGN: True, Attribute.TOKEN: True,
                                  Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
                                  Attribute.EXTRACTABLE: False})
            raw = _raw_point(public[Attribute.EC_POINT])
        except pkcs11.PKCS11Error as e:
            raise self._unavailable(type(e).__name__) from None
        return NewKey(public_raw=raw, token_object=object_id.hex())

    def _find(self, row: KeyRow, object_class: ObjectClass):
        try:
            return self.session().get_key(object_class=object_class,
                                          id=bytes.fromhex(row.token_object or ""))
        except pkcs11.NoSuchKey:
            raise SigningKeyError("key_not_in_token", key_id=row.key_id,
                                  token=self.settings.label) from None
        except pkcs11.PKCS11Error as e:
            raise self._unavailable(type(e).__name__) from None

    def signer(self, row: KeyRow) -> TokenSigner:
        """A signer for the row's key; the token's public key must be the row's, so a row
        can never sign with another key that happens to share its object id."""
        cached = self._signers.get(row.token_object or "")
        if cached is not None:
            return cached
        public = load_public_key(row.public_key)
        point = _raw_point(self._find(row, ObjectClass.PUBLIC_KEY)[Attribute.EC_POINT])
        if point != public.public_bytes_raw():
            raise SigningKeyError("key_not_in_token", key_id=row.key_id,
                                  token=self.settings.label)
        signer = TokenSigner(self._find(row, ObjectClass.PRIVATE_KEY), public)
        self._signers[row.token_object or ""] = signer
        return signer

    def destroy(self, row: KeyRow) -> None:
        """Destroy the key pair in the token; a key already gone is fine."""
        self._signers.pop(row.token_object or "", None)
        for object_class in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY):
            try:
                self._find(row, object_class).destroy()
            except SigningKeyError as e:
                if e.code != "key_not_in_token":
                    raise
            except pkcs11.PKCS11Error as e:
                raise self._unavailable(type(e).__name__) from None
