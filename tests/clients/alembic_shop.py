#!/usr/bin/python3
"""Alembic against PostgreSQL: `alembic upgrade head` or `alembic downgrade base`.

  alembic_shop.py ACTION --host H --port P --user U --db D

The migration environment is made in a temporary folder at each run, always
the same: alembic.ini, env.py (online mode, one transaction) and two
revisions: 0001 creates table accounts, 0002 creates table notes (a foreign
key to accounts); their downgrades drop them.

  upgrade    alembic upgrade head
  downgrade  alembic downgrade base

Alembic's own command line runs in this process (alembic.config.main, with
--raiseerr so that the error comes back here). Output and exit status:
clientlib.py.
"""

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clientlib  # noqa: E402

INI = """\
[alembic]
script_location = %(here)s/migrations
sqlalchemy.url = {url}
"""

ENV = """\
from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config
engine = engine_from_config(config.get_section(config.config_ini_section),
                            prefix="sqlalchemy.", poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()
"""

REV_1 = """\
\"\"\"accounts\"\"\"
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(120), nullable=False, unique=True),
    )


def downgrade():
    op.drop_table("accounts")
"""

REV_2 = """\
\"\"\"notes\"\"\"
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "notes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )


def downgrade():
    op.drop_table("notes")
"""


def main():
    a = clientlib.parse(__doc__.splitlines()[0], ["upgrade", "downgrade"],
                        default_port="5432", default_user="postgres", default_db="shop")
    from alembic.config import main as alembic_main

    url = "postgresql+psycopg2://%s:%s@%s:%d/%s" % (a.user, a.password, a.host, a.port, a.db)
    with tempfile.TemporaryDirectory(prefix="ks-alembic-") as root:
        os.makedirs(os.path.join(root, "migrations", "versions"))
        files = {"alembic.ini": INI.format(url=url), "migrations/env.py": ENV,
                 "migrations/versions/0001_accounts.py": REV_1,
                 "migrations/versions/0002_notes.py": REV_2}
        for name, text in files.items():
            with open(os.path.join(root, name), "w") as f:
                f.write(text)
        argv = ["--raiseerr", "-c", os.path.join(root, "alembic.ini")]
        argv += ["upgrade", "head"] if a.action == "upgrade" else ["downgrade", "base"]
        with clientlib.Timer() as t:
            try:
                alembic_main(argv=argv, prog="alembic")
            except SystemExit as e:
                if e.code:
                    return clientlib.client_error("alembic exited with status %s" % e.code)
            except Exception as e:  # noqa: BLE001 - what Alembic reports
                return clientlib.client_error(e)
    return clientlib.done(t)


if __name__ == "__main__":
    sys.exit(main())
