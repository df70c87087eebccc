"""Signing keys leave the database in clear: each row says which store holds its private key,
a PKCS#11 token (``token_object``: its id there) or the database wrapped under a
key-encryption key kept outside it (``wrapped_private``). Existing clear PEM keys are wrapped
(the key-encryption key file is made if absent) and the PEM column dropped; a retired key's
private half is dropped. On SQLite, freed pages are overwritten (``secure_delete``) so no clear
key is left in the file.

Revision ID: 0016
Revises: 0014
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op
from alembic.util import CommandError
from cryptography.hazmat.primitives import serialization

from cloud.fleet.key_store import kek_path, token_settings
from cloud.fleet.wrapped_store import make_kek, read_kek, wrap_private

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

keys = sa.table("signing_keys", sa.column("key_id", sa.Integer),
                sa.column("public_key", sa.String), sa.column("private_pem", sa.Text),
                sa.column("state", sa.String), sa.column("store", sa.String),
                sa.column("wrapped_private", sa.LargeBinary))


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        bind.exec_driver_sql("PRAGMA secure_delete = ON")
    with op.batch_alter_table("signing_keys") as batch:
        batch.add_column(sa.Column("store", sa.String(8), nullable=False,
                                   server_default="wrapped"))
        batch.add_column(sa.Column("token_object", sa.String(64)))
        batch.add_column(sa.Column("wrapped_private", sa.LargeBinary))
    rows = bind.execute(sa.select(keys.c.key_id, keys.c.public_key, keys.c.private_pem,
                                  keys.c.state)).all()
    path = kek_path(bind.engine.url)
    if rows or token_settings() is None:
        make_kek(path)  # `wicket-hub init` makes the key file of a hub without a token
    for row in rows:
        wrapped = None
        if row.state != "retired":
            private = serialization.load_pem_private_key(row.private_pem.encode("ascii"), None)
            public = private.public_key().public_bytes_raw()
            wrapped = wrap_private(read_kek(path), row.key_id, private.private_bytes_raw(),
                                   public)
        bind.execute(sa.update(keys).where(keys.c.key_id == row.key_id)
                     .values(wrapped_private=wrapped, private_pem="", store="wrapped"))
    with op.batch_alter_table("signing_keys") as batch:
        batch.drop_column("private_pem")
        batch.alter_column("store", server_default=None)
        batch.create_check_constraint("ck_signing_keys_store_known",
                                      "store IN ('token', 'wrapped')")
        batch.create_check_constraint(
            "ck_signing_keys_private_kept",
            "state = 'retired' OR (store = 'token' AND token_object IS NOT NULL) "
            "OR (store = 'wrapped' AND wrapped_private IS NOT NULL)")


def downgrade() -> None:
    # Going back would mean writing the private keys into the database in clear, which is what
    # this revision exists to end; a hub that must return to 0014 restores its backup instead.
    raise CommandError("revision 0016 is not undone: going back to 0014 would write the signing "
                       "keys into the database in clear; restore a backup taken before the "
                       "upgrade instead")
