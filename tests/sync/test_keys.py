import pytest

from sync import cli, codes
from sync.codes import TicketPayload
from sync.keys import (
    KeyFileError,
    KeyRing,
    generate_signing_key,
    load_public_key,
    load_signing_key,
    save_signing_key,
)


def test_save_and_load_round_trip_owner_only(tmp_path):
    key = generate_signing_key(7)
    path = tmp_path / "keys" / "hub-key.json"
    save_signing_key(key, path)
    assert path.stat().st_mode & 0o777 == 0o600
    loaded = load_signing_key(path)
    assert loaded.key_id == 7 and loaded.public_key_b64() == key.public_key_b64()
    with pytest.raises(KeyFileError, match="already exists"):
        save_signing_key(generate_signing_key(7), path)


@pytest.mark.parametrize("content, message", [
    ("not json", "not a Wicket signing key file"),
    ('{"key_id": 1}', "private_key_pem"),
    ('{"key_id": 1, "private_key_pem": "-----BEGIN PRIVATE KEY-----\\nAAAA\\n"}', "damaged"),
    ('{"key_id": 0, "private_key_pem": "x"}', "damaged"),
])
def test_garbled_key_files_get_clear_errors(tmp_path, content, message):
    path = tmp_path / "k.json"
    path.write_text(content)
    with pytest.raises(KeyFileError, match=message):
        load_signing_key(path)


def test_missing_key_file(tmp_path):
    with pytest.raises(KeyFileError, match="no such key file"):
        load_signing_key(tmp_path / "nope.json")


@pytest.mark.parametrize("text", ["", "AAAA", "!!!", "A" * 44])
def test_bad_public_keys(text):
    with pytest.raises(KeyFileError):
        load_public_key(text)


def test_key_ids_are_1_to_255():
    for bad in (0, 256, -1, True):
        with pytest.raises(KeyFileError):
            generate_signing_key(bad)


def test_keyring_holds_keys_by_id():
    a, b = generate_signing_key(1), generate_signing_key(2)
    ring = KeyRing({1: a.public_key_b64()})
    ring.add(2, b.public_key())
    assert 1 in ring and 2 in ring and 3 not in ring and len(ring) == 2
    assert ring.key_ids() == [1, 2] and list(ring) == [1, 2]
    assert ring.get(3) is None
    code = codes.encode(TicketPayload(ticket_id=1, scope=(1,)), b)
    assert codes.decode(code, ring).key_id == 2


def test_cli_keygen_sign_verify(tmp_path, capsys):
    key_file = tmp_path / "hub-key.json"
    assert cli.main(["keygen", "--key-id", "4", "--out", str(key_file)]) == 0
    public = capsys.readouterr().out.split("public key 4: ")[1].strip()
    assert cli.main(["sign", "--key", str(key_file), "--ticket", "1001", "--session", "7",
                     "--zone", "3", "--seat", "45", "--realname"]) == 0
    code = capsys.readouterr().out.strip()
    assert cli.main(["verify", "--pubkey", f"4:{public}", code]) == 0
    out = capsys.readouterr().out
    assert out.startswith("VALID") and "ticket 1001" in out and "real-name yes" in out
    assert cli.main(["verify", "--pubkey", f"4:{public}", code[:-3] + "000"]) == 1
    assert capsys.readouterr().out.startswith("INVALID")
    assert cli.main(["sign", "--key", str(key_file), "--ticket", "1", "--venues", "1"]) == 2
    assert "validity window" in capsys.readouterr().err
    assert cli.main(["keygen", "--key-id", "4", "--out", str(key_file)]) == 2
    assert "already exists" in capsys.readouterr().err
