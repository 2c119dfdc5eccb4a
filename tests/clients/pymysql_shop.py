#!/usr/bin/python3
"""PyMySQL against MySQL/MariaDB, over TCP or a unix socket: one thing.

  pymysql_shop.py ACTION (--host H --port P | --socket PATH) --user U --db D

The database holds a table t (id int primary key, note text).

  harmless        --repeat times: SELECT count(*) FROM t, INSERT one row
                  (ids from 100001), UPDATE one row by its key; committed
  drop-database   DROP DATABASE <db>
  delete-all      DELETE FROM t; COMMIT
  delete-where    DELETE FROM t WHERE id > %s with 0 (the driver fills it
                  in: every row); COMMIT

After an error, SELECT 1 on the same connection says whether it is still
usable. Output and exit status: clientlib.py.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clientlib  # noqa: E402

import pymysql  # noqa: E402


def main():
    a = clientlib.parse(__doc__.splitlines()[0], ["harmless", "drop-database", "delete-all",
                                        "delete-where"],
                        default_port="3306", default_user="root", default_db="shop")
    with clientlib.Timer() as t:
        try:
            if a.socket:
                conn = pymysql.connect(unix_socket=a.socket, user=a.user, password=a.password,
                                       database=a.db)
            else:
                conn = pymysql.connect(host=a.host, port=a.port, user=a.user,
                                       password=a.password, database=a.db)
        except Exception as e:  # noqa: BLE001
            return clientlib.client_error(e)
        cur = conn.cursor()

        def work():
            if a.action == "drop-database":
                cur.execute("DROP DATABASE `%s`" % a.db)
            elif a.action == "delete-all":
                cur.execute("DELETE FROM t")
                conn.commit()
            elif a.action == "delete-where":
                cur.execute("DELETE FROM t WHERE id > %s", (0,))
                conn.commit()
            else:
                for i in range(a.repeat):
                    cur.execute("SELECT count(*) FROM t")
                    cur.fetchone()
                    cur.execute("INSERT INTO t (id, note) VALUES (%s, %s)",
                                (100001 + i, "harmless %d" % i))
                    cur.execute("UPDATE t SET note = %s WHERE id = %s",
                                ("seen %d" % i, 1 + i % 100))
                conn.commit()

        failed = clientlib.attempt(work, lambda: conn.cursor().execute("SELECT 1"))
        if failed is not None:
            return failed
    conn.close()
    return clientlib.done(t)


if __name__ == "__main__":
    sys.exit(main())
