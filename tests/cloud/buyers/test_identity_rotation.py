"""A data key rotation seals identities and their photos again under the new key: after the
old key is dropped, every identity still opens, is found by its number, and its photo opens."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from PIL import Image

from cloud.buyers.identities import find_identity, person, request_verification
from cloud.buyers.review import photo, upload_photo
from cloud.buyers.tables import identities, identity_photos
from cloud.core.db import init_db, make_engine
from cloud.core.seal import ENV, create_key_file, key_id_of, load_keyring, read_key_file
from tests.cloud.buyers.conftest import resident_id

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[3]


def test_a_rotation_reseals_identities_and_their_photos(hub_url, tmp_path):
    key = str(tmp_path / "rotating.key")
    create_key_file(key)
    init_db(hub_url, key)
    engine = make_engine(hub_url, key)
    old = load_keyring(key).current_id
    number = resident_id()
    out = io.BytesIO()
    Image.new("RGB", (20, 10), (1, 2, 3)).save(out, "PNG")
    try:
        with engine.begin() as conn:
            a = request_verification(conn, name="张三", doc_type="resident_id", number=number,
                                     now=NOW)
            b = request_verification(conn, name="John Smith", doc_type="passport",
                                     number="E12345678", now=NOW)
            upload_photo(conn, b, out.getvalue(), actor="buyer:1", now=NOW)
        done = subprocess.run(
            [sys.executable, "-m", "cloud.cli", "--db", hub_url, "--data-key", key,
             "rotate-data-key", "--batch", "1"], cwd=ROOT, env={**os.environ, ENV: key},
            capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        (new,) = [kid for kid, _ in read_key_file(key)]
        assert new != old
        with engine.connect() as conn:
            sealed = conn.execute(sa.select(identities.c.sealed_name,
                                            identities.c.sealed_doc_number)).all()
            assert {key_id_of(v) for r in sealed for v in r} == {new}
            assert key_id_of(conn.execute(sa.select(identity_photos.c.sealed_photo)).scalar()) \
                == new
            assert find_identity(conn, "resident_id", number) == a
            assert (person(conn, a).name, person(conn, a).doc_number) == ("张三", number)
            assert photo(conn, b) == ("image/png", out.getvalue())
    finally:
        engine.dispose()
