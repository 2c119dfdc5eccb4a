#!/usr/bin/python3
"""asyncpg against PostgreSQL: one thing. asyncpg prepares every statement
with arguments (Parse and Describe first, then a Bind per execution, its
values in binary format).

  asyncpg_shop.py ACTION --host H --port P --user U --db D

The database holds a table t (id int primary key, note text) of 100 rows.

  harmless     --repeat times: SELECT count(*), INSERT one row (ids from
               100001), UPDATE one row by its key, DELETE the row inserted
  delete-where execute('DELETE FROM t WHERE id > $1', 0): every row
  rebind       a statement prepared once, DELETE FROM t WHERE id > $1, run
               with 1000 (no row), then with 0 (every row)
  executemany  executemany('DELETE FROM t WHERE id >= $1', [(1000,), (0,)]):
               both Binds in one batch, the second reaching every row

After an error, SELECT 1 on the same connection says whether it is still
usable. Output and exit status: clientlib.py.
"""

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clientlib  # noqa: E402

import asyncpg  # noqa: E402


async def run(a):
    with clientlib.Timer() as t:
        try:
            conn = await asyncpg.connect(host=a.host, port=a.port, user=a.user,
                                         password=a.password or None, database=a.db)
        except Exception as e:  # noqa: BLE001
            return clientlib.client_error(e)

        async def work():
            if a.action == "delete-where":
                await conn.execute("DELETE FROM t WHERE id > $1", 0)
            elif a.action == "rebind":
                stmt = await conn.prepare("DELETE FROM t WHERE id > $1")
                await stmt.fetch(1000)
                await stmt.fetch(0)
            elif a.action == "executemany":
                await conn.executemany("DELETE FROM t WHERE id >= $1", [(1000,), (0,)])
            else:
                for i in range(a.repeat):
                    await conn.fetchval("SELECT count(*) FROM t")
                    await conn.execute("INSERT INTO t (id, note) VALUES ($1, $2)",
                                       100001 + i, "harmless %d" % i)
                    await conn.execute("UPDATE t SET note = $1 WHERE id = $2",
                                       "seen %d" % i, 1 + i % 100)
                    await conn.execute("DELETE FROM t WHERE id = $1", 100001 + i)

        try:
            await work()
        except Exception as e:  # noqa: BLE001 - what the client library reports
            status = clientlib.client_error(e)
            try:
                await conn.fetchval("SELECT 1")
                sys.stdout.write("after refusal: usable\n")
            except Exception as e2:  # noqa: BLE001
                sys.stdout.write("after refusal: unusable: %s: %s\n"
                                 % (type(e2).__name__, clientlib.one_line(e2)))
            return status
        await conn.close()
    return clientlib.done(t)


def main():
    a = clientlib.parse(__doc__.splitlines()[0],
                        ["harmless", "delete-where", "rebind", "executemany"],
                        default_port="5432", default_user="postgres", default_db="postgres")
    return asyncio.run(run(a))


if __name__ == "__main__":
    sys.exit(main())
