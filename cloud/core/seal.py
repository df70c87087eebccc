"""Personal data sealed at rest on the hub: the data key file, sealing, opening and the keyed
document hash.

The data key lives outside the database, in an owner-only file the configuration names
(``--data-key``, else ``$WICKET_HUB_DATA_KEY``, else ``wicket-hub-data.key`` in the current
directory; ``wicket-hub init`` makes one when there is none). The file holds one key per line,
``<key id> <base64 key>``; the first line is the current key, the others are older keys kept
only while ``wicket-hub rotate-data-key`` re-seals what they sealed.

A sealed value is text, so that it fits a column and a JSON change record alike:
``s1:<key id>:<base64url of 96-bit nonce || AES-256-GCM ciphertext and tag>``. The record it
belongs to (``holders:55:name``, ``change_log:9:doc_number``) is the associated data: a value
copied to another row or column does not open. Lookups by document number use an
HMAC-SHA256 of the normalised number under a second HKDF subkey of the same key, so the
database holds no number and no unkeyed hash of one (the appliance does the same in its own
holder module). No error raised here carries a key or a clear value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from cloud.core.errors import Code, HubError

ENV = "WICKET_HUB_DATA_KEY"
DEFAULT_PATH = "wicket-hub-data.key"
CONN_INFO = "wicket_data_key"  # where make_engine puts the configured path on each connection
PREFIX = "s1"
KEY_BYTES = 32
_NONCE = 12
_SEAL_INFO = b"wicket hub seal v1"
_INDEX_INFO = b"wicket hub index v1"

# The personal fields of each kind of change record (sync/changes.py), sealed in the log: a
# holder's, and the document a holder block names (a risk flag's entry block; other blocks
# carry none, and a field that is absent is left alone).
PERSONAL_FIELDS = {"holder": ("name", "doc_number"), "block": ("doc_number",)}


class SealError(HubError):
    """The data key cannot be used, or a sealed value does not open with it."""

    codes = {
        "data_key_unusable": Code(409, "the data key file %(path)s cannot be used: "
                                       "%(problem)s"),
        "sealed_value_unopenable": Code(409, "a sealed value of %(context)s does not open: "
                                             "%(problem)s"),
    }


def data_key_path(path: str | None = None) -> str:
    """The data key file the configuration names."""
    return path or os.environ.get(ENV) or DEFAULT_PATH


def _subkey(raw: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(raw)


@dataclass(frozen=True)
class _Key:
    key_id: str
    aead: AESGCM
    index_key: bytes


class Keyring:
    """The current data key and the older ones still being rotated away."""

    def __init__(self, keys: list[tuple[str, bytes]]):
        if not keys:
            raise ValueError("a keyring needs at least one key")
        self._keys = {kid: _Key(kid, AESGCM(_subkey(raw, _SEAL_INFO)),
                                _subkey(raw, _INDEX_INFO)) for kid, raw in keys}
        self.current_id = keys[0][0]
        self.ids = tuple(kid for kid, _ in keys)

    def __repr__(self) -> str:
        return f"Keyring(current={self.current_id}, <keys hidden>)"

    def seal(self, value: str, context: str) -> str:
        """``value`` sealed under the current key for ``context`` (``table:row id:column``)."""
        return self.seal_bytes(value.encode("utf-8"), context)

    def seal_bytes(self, value: bytes, context: str) -> str:
        """Bytes (a document's photo) sealed as text, in the same form as :meth:`seal`."""
        key = self._keys[self.current_id]
        nonce = os.urandom(_NONCE)
        blob = nonce + key.aead.encrypt(nonce, value, context.encode())
        return f"{PREFIX}:{key.key_id}:{base64.urlsafe_b64encode(blob).decode('ascii')}"

    def open(self, sealed: str, context: str) -> str:
        """The clear text of a value sealed for ``context``, or SealError."""
        return self.open_bytes(sealed, context).decode("utf-8")

    def open_bytes(self, sealed: str, context: str) -> bytes:
        """The bytes of a value sealed for ``context``, or SealError."""
        kid = key_id_of(sealed)
        if kid is None:
            raise SealError("sealed_value_unopenable", context=context, problem="not sealed")
        key = self._keys.get(kid)
        if key is None:
            raise SealError("sealed_value_unopenable", context=context,
                            problem=f"key {kid} is not in the data key file")
        try:
            blob = base64.urlsafe_b64decode(sealed.split(":", 2)[2])
            return key.aead.decrypt(blob[:_NONCE], blob[_NONCE:], context.encode())
        except (InvalidTag, binascii.Error, ValueError):
            raise SealError("sealed_value_unopenable", context=context,
                            problem="wrong key, sealed for another record, or tampered "
                                    "with") from None

    def reseal(self, sealed: str, context: str) -> str:
        """The same value sealed under the current key (unchanged if it already is)."""
        if key_id_of(sealed) == self.current_id:
            return sealed
        return self.seal(self.open(sealed, context), context)

    def doc_hash(self, number: str) -> str:
        """The keyed hash (hex) of a normalised document number, under the current key."""
        return self._hash(self.current_id, number)

    def doc_hashes(self, number: str) -> list[str]:
        """The number's hash under every key: a lookup during a rotation finds both."""
        return [self._hash(kid, number) for kid in self.ids]

    def _hash(self, kid: str, number: str) -> str:
        return hmac.new(self._keys[kid].index_key, number.encode("utf-8"),
                        hashlib.sha256).hexdigest()


def key_id_of(value: object) -> str | None:
    """The id of the key a sealed value was sealed with; None for anything not sealed."""
    if not isinstance(value, str) or not value.startswith(PREFIX + ":"):
        return None
    parts = value.split(":", 2)
    return parts[1] if len(parts) == 3 else None


def context(table: str, row_id: int, column: str) -> str:
    return f"{table}:{row_id}:{column}"


# -- the key file ---------------------------------------------------------------------------

def _unusable(path: str, problem: str) -> SealError:
    return SealError("data_key_unusable", path=path, problem=problem)


def read_key_file(path: str) -> list[tuple[str, bytes]]:
    """The (key id, raw key) pairs of an owner-only key file, current first."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise _unusable(path, "no such file (`wicket-hub init` makes one)") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise _unusable(path, f"mode {stat.S_IMODE(st.st_mode):o} lets others read it; "
                              "chmod 600 it")
    keys = []
    for n, line in enumerate(Path(path).read_text("ascii").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        kid, _, text = line.strip().partition(" ")
        try:
            raw = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != KEY_BYTES or not kid.isalnum() or not any(raw):
            raise _unusable(path, f"line {n} is not '<key id> <base64 of 32 bytes>'")
        keys.append((kid, raw))
    if not keys:
        raise _unusable(path, "it holds no key")
    return keys


_cache: dict[str, tuple[tuple[int, int], Keyring]] = {}


def load_keyring(path: str | None = None) -> Keyring:
    """The keyring of a key file, read again only when the file changes."""
    path = data_key_path(path)
    try:
        st = os.stat(path)
        stamp = (st.st_mtime_ns, st.st_size)
    except FileNotFoundError:
        stamp = (0, 0)
    hit = _cache.get(path)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    ring = Keyring(read_key_file(path))
    _cache[path] = (stamp, ring)
    return ring


def keyring_for(conn: sa.Connection) -> Keyring:
    """The keyring configured for the engine of ``conn`` (see ``make_engine``)."""
    return load_keyring(conn.info.get(CONN_INFO))


def _new_line() -> str:
    return f"{os.urandom(4).hex()} {base64.b64encode(os.urandom(KEY_BYTES)).decode('ascii')}"


def _write(path: str, lines: Iterable[str]) -> None:
    """Replace the key file in one step, owner-only from its first byte."""
    tmp = f"{path}.tmp"
    if os.path.exists(tmp):
        os.unlink(tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write("".join(line + "\n" for line in lines))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def create_key_file(path: str) -> bool:
    """Make a key file with one new key unless one exists; True when made."""
    if os.path.exists(path):
        return False
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    _write(path, ["# wicket hub data key: current key first; keep it owner-only and backed up "
                  "apart from the database", _new_line()])
    return True


def add_key(path: str) -> str:
    """Put a new current key first in the key file, keeping the old ones; its id."""
    old = read_key_file(path)
    line = _new_line()
    _write(path, [line] + [f"{kid} {base64.b64encode(raw).decode('ascii')}" for kid, raw in old])
    return line.split(" ", 1)[0]


def drop_old_keys(path: str) -> list[str]:
    """Keep only the current key in the file; the ids dropped."""
    keys = read_key_file(path)
    kid, raw = keys[0]
    _write(path, [f"{kid} {base64.b64encode(raw).decode('ascii')}"])
    return [k for k, _ in keys[1:]]


# -- change log records --------------------------------------------------------------------

def seal_record(ring: Keyring, seq: int, record: dict) -> dict:
    """A change record with its personal fields sealed for its place in the log."""
    fields = PERSONAL_FIELDS.get(record.get("type"), ())
    return {**record, **{f: ring.seal(record[f], context("change_log", seq, f))
                         for f in fields if isinstance(record.get(f), str)}}


def open_record(ring: Keyring, record: dict) -> dict:
    """A change record as the appliance receives it: its personal fields in clear (served
    only over an appliance's authenticated channel)."""
    fields = PERSONAL_FIELDS.get(record.get("type"), ())
    return {**record, **{f: ring.open(record[f], context("change_log", record["seq"], f))
                         for f in fields if key_id_of(record.get(f)) is not None}}
