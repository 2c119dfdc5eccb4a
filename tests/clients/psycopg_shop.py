#!/usr/bin/python3
"""psycopg 3 against PostgreSQL: one thing. psycopg 3 binds its arguments on
the server (the extended protocol: Parse, Bind, Execute, Sync), in text
(%s) or binary (%b), prepares statements it runs often (or when asked), and
sends many statements before one Sync in pipeline mode.

  psycopg_shop.py ACTION --host H --port P --user U --db D

The database holds a table t (id int primary key, note text) of 100 rows.

  harmless      --repeat times: SELECT count(*), INSERT one row (ids from
                100001), UPDATE one row by its key; then the same INSERTs
                and UPDATEs again in one pipeline; committed
  delete-where  DELETE FROM t WHERE id > %s with 0: every row
  binary        DELETE FROM t WHERE id > %b with 0, the value in binary
  prepared      DELETE FROM t WHERE id > %s prepared (prepare=True), run
                with 1000 (no row), then with 0 (every row)
  pipeline      in one pipeline: an INSERT, then DELETE FROM t WHERE id > %s
                with 0

After an error, SELECT 1 on the same connection (after a rollback) says
whether it is still usable. Output and exit status: clientlib.py.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clientlib  # noqa: E402

import psycopg  # noqa: E402


def main():
    a = clientlib.parse(__doc__.splitlines()[0],
                        ["harmless", "delete-where", "binary", "prepared", "pipeline"],
                        default_port="5432", default_user="postgres", default_db="postgres")
    with clientlib.Timer() as t:
        try:
            conn = psycopg.connect(host=a.host, port=a.port, user=a.user,
                                   password=a.password or None, dbname=a.db)
        except Exception as e:  # noqa: BLE001
            return clientlib.client_error(e)
        cur = conn.cursor()

        def work():
            if a.action == "delete-where":
                cur.execute("DELETE FROM t WHERE id > %s", (0,))
            elif a.action == "binary":
                cur.execute("DELETE FROM t WHERE id > %b", (0,))
            elif a.action == "prepared":
                cur.execute("DELETE FROM t WHERE id > %s", (1000,), prepare=True)
                cur.execute("DELETE FROM t WHERE id > %s", (0,), prepare=True)
            elif a.action == "pipeline":
                with conn.pipeline():
                    cur.execute("INSERT INTO t (id, note) VALUES (%s, %s)", (100001, "new"))
                    cur.execute("DELETE FROM t WHERE id > %s", (0,))
            else:
                for i in range(a.repeat):
                    cur.execute("SELECT count(*) FROM t")
                    cur.fetchone()
                    cur.execute("INSERT INTO t (id, note) VALUES (%s, %s)",
                                (100001 + i, "harmless %d" % i))
                    cur.execute("UPDATE t SET note = %s WHERE id = %s",
                                ("seen %d" % i, 1 + i % 100))
                with conn.pipeline():
                    for i in range(a.repeat):
                        cur.execute("INSERT INTO t (id, note) VALUES (%s, %s)",
                                    (200001 + i, "piped %d" % i))
                        cur.execute("UPDATE t SET note = %s WHERE id = %s",
                                    ("piped %d" % i, 1 + i % 100))
            conn.commit()

        def probe():
            conn.rollback()
            conn.execute("SELECT 1")

        failed = clientlib.attempt(work, probe)
        if failed is not None:
            return failed
    conn.close()
    return clientlib.done(t)


if __name__ == "__main__":
    sys.exit(main())
