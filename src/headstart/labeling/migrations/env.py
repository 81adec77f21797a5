"""Alembic environment: the connection comes from ``config.attributes`` (see ``store.migrate``).

To write a new migration against a scratch SQLite file::

    alembic -c /dev/null -x url=sqlite:///scratch.db revision --autogenerate -m "what changed"

(or by hand, following ``versions/0001_initial.py``). ``render_as_batch`` lets ALTERs work on SQLite.
"""

from alembic import context
from sqlalchemy import create_engine

from headstart.labeling.models import Base

config = context.config
connection = config.attributes.get("connection")


def run(conn) -> None:
    context.configure(connection=conn, target_metadata=Base.metadata, render_as_batch=True,
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    run(connection)
else:  # the alembic command line
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    with create_engine(url).connect() as conn:
        run(conn)
