"""The channels' sealed values in a data key rotation (both databases): API key and webhook
secrets and the partners' and contract customers' contacts sealed again under the new key,
still opening after the old key is gone; and a partner's contact, as its profile seals it,
is the one its balance warning goes to."""

from __future__ import annotations

import sqlalchemy as sa

from cloud.channels import accounts, customers, partner_terms, reseal, webhooks
from cloud.channels.api_keys import create_key
from cloud.channels.channels import create_channel
from cloud.channels.tables import api_keys, contract_customers, partner_profiles, partner_webhooks
from cloud.core.db import init_db, make_engine
from cloud.core.seal import (
    add_key,
    context,
    create_key_file,
    drop_old_keys,
    key_id_of,
    keyring_for,
    load_keyring,
)
from cloud.ledger.partners import create_partner
from tests.cloud.orderkit import NOW


def _pass(engine) -> int:
    changed, after = 0, 0
    while after is not None:
        with engine.begin() as conn:
            after, _looked, n = reseal.reseal_channels(conn, after, 2)
        changed += n
    return changed


def _sealed(conn) -> list[str]:
    values = []
    for table, column in ((api_keys, "sealed_secret"), (partner_webhooks, "sealed_secret"),
                          (partner_profiles, "sealed_contact"),
                          (contract_customers, "sealed_contact")):
        values += [v for v in conn.execute(sa.select(table.c[column])).scalars() if v]
    return values


def test_a_rotation_seals_the_channels_secrets_and_contacts_again(hub_url, tmp_path):
    key = str(tmp_path / "rotating.key")
    create_key_file(key)
    init_db(hub_url, key)
    engine = make_engine(hub_url, key)
    try:
        with engine.begin() as conn:
            travel = create_partner(conn, "SUNNY", "Sunny Travel", "distributor", 0, "t", NOW)
            partner_terms.set_profile(conn, travel, actor="t", now=NOW, contact_name="王芳",
                                      contact_phone="13800138000",
                                      contact_email="ops@sunny.example")
            channel = create_channel(conn, "sunny", "Sunny", "api", partner_id=travel,
                                     actor="t", now=NOW)
            _key_id, secret = create_key(conn, travel, channel, "k", ["orders:write"], 60, "t",
                                         NOW)
            hook = webhooks.register_webhook(conn, travel, "https://ota.example/hook",
                                             ["order.confirmed"], "t", NOW)
            customer = customers.create_customer(conn, "HARBOUR", "Harbour Corp",
                                                 ("李雷", "13900139000"), "t", NOW)
            assert reseal.count_sealed(conn) == 4
        old = load_keyring(key).current_id
        add_key(key)
        new = load_keyring(key).current_id
        assert _pass(engine) == 4
        assert _pass(engine) == 0  # a second pass finds nothing under the old key
        drop_old_keys(key)
        with engine.begin() as conn:
            assert {key_id_of(v) for v in _sealed(conn)} == {new} != {old}
            shown = partner_terms.profile(conn, travel, masked=False)
            assert shown["contact"]["email"] == "ops@sunny.example"
            assert customers.contact_of(conn, customers.customer(conn, customer)) == (
                "李雷", "13900139000")
            ring = keyring_for(conn)
            hooked = conn.execute(sa.select(partner_webhooks.c.sealed_secret)).scalar_one()
            assert ring.open(hooked, context("partner_webhooks", hook["id"], "secret")) == \
                hook["secret"]
            keyed = conn.execute(sa.select(api_keys.c.id, api_keys.c.sealed_secret)).one()
            assert ring.open(keyed.sealed_secret,
                             context("api_keys", keyed.id, "sealed_secret")) == secret
    finally:
        engine.dispose()


def test_the_warning_goes_to_the_contact_the_profile_sealed(engine):
    with engine.begin() as conn:
        travel = create_partner(conn, "SUNNY", "Sunny Travel", "distributor", 0, "t", NOW)
        partner_terms.set_profile(conn, travel, actor="t", now=NOW,
                                  contact_email="ops@sunny.example")
        sealed = conn.execute(sa.select(partner_profiles.c.sealed_contact)).scalar_one()
        assert accounts.contact_address(conn, travel, sealed) == ("email", "ops@sunny.example")
