"""A data key rotation reaches the buyers: numbers, e-mail addresses, companions' names and
documents are sealed again under the new key with their hashes made again, so that once the
old key is dropped every account still signs in and every companion still opens."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from cloud.buyers import accounts, companions, reseal
from cloud.buyers.errors import BuyerError
from cloud.buyers.tables import buyers
from cloud.buyers.tables import companions as companion_rows
from cloud.core.db import init_db, make_engine
from cloud.core.seal import add_key, create_key_file, drop_old_keys, key_id_of, load_keyring
from tests.cloud.buyers.buyerkit import MOBILE, NOW, PASSWORD, new_buyer
from tests.cloud.buyers.test_companions import resident_id


def _pass(engine) -> int:
    changed = 0
    for step in (reseal.reseal_buyers, reseal.reseal_companions):
        after: int | None = 0
        while after is not None:
            with engine.begin() as conn:
                after, _looked, n = step(conn, after, 1)
            changed += n
    return changed


def test_a_rotation_seals_buyers_and_companions_again(hub_url, tmp_path):
    key = str(tmp_path / "rotating.key")
    create_key_file(key)
    init_db(hub_url, key)
    engine = make_engine(hub_url, key)
    try:
        buyer_id = new_buyer(engine, password=PASSWORD)
        new_buyer(engine, "13900139000")
        with engine.begin() as conn:
            accounts.set_email(conn, buyer_id, "buyer@example.com")
            companions.add_companion(conn, buyer_id, name="张小三", doc_type="resident_id",
                                     doc_number=resident_id(1), now=NOW)
            assert reseal.count_sealed(conn) == 3
        old = load_keyring(key).current_id
        add_key(key)
        new = load_keyring(key).current_id
        # during the rotation, the number is found under either key
        accounts.sign_in_by_password(engine, mobile=MOBILE, password=PASSWORD, now=NOW)
        assert _pass(engine) == 3
        assert _pass(engine) == 0  # a second pass finds nothing under the old key
        drop_old_keys(key)
        with engine.begin() as conn:
            sealed = [v for r in conn.execute(sa.select(buyers)).all()
                      for v in (r.sealed_mobile, r.sealed_email) if v is not None]
            sealed += [v for r in conn.execute(sa.select(companion_rows)).all()
                       for v in (r.sealed_name, r.sealed_doc_number)]
            assert {key_id_of(v) for v in sealed} == {new} != {old}
            me = accounts.profile(conn, buyer_id)
            assert (me.mobile, me.email) == (MOBILE, "buyer@example.com")
            [shown] = companions.list_companions(conn, buyer_id)
            assert shown.name == "张*三"
            # the document is still found: adding it again is refused
            with pytest.raises(BuyerError) as refused:
                companions.add_companion(conn, buyer_id, name="张小三", doc_type="resident_id",
                                         doc_number=resident_id(1), now=NOW)
            assert refused.value.code == "companion_exists"
        assert accounts.sign_in_by_password(engine, mobile=MOBILE, password=PASSWORD,
                                            now=NOW)[0] == buyer_id
    finally:
        engine.dispose()
