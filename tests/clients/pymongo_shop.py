#!/usr/bin/python3
"""pymongo against MongoDB (here the tests' stand-in server,
tests/helpers/mongo_standin.py: there is no MongoDB server in Debian): one
thing.

  pymongo_shop.py ACTION --host H --port P

  harmless       --repeat times: ping, then a count of the shop's orders
  drop-database  dropDatabase of shop
  drop-orders    drop of the orders collection

After an error, ping on the same client says whether it is still usable.
Output and exit status: clientlib.py.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clientlib  # noqa: E402

import pymongo  # noqa: E402


def work(client, a):
    shop = client["shop"]
    if a.action == "harmless":
        for _ in range(a.repeat):
            client.admin.command("ping")
            shop.command("count", "orders")
    elif a.action == "drop-database":
        shop.command("dropDatabase")
    else:
        shop.command("drop", "orders")


def main():
    a = clientlib.parse(__doc__.splitlines()[0],
                        ["harmless", "drop-database", "drop-orders"], default_port="27017")
    with clientlib.Timer() as t:
        client = pymongo.MongoClient(
            "mongodb://%s:%d/?directConnection=true" % (a.host, a.port),
            serverSelectionTimeoutMS=5000, retryWrites=False, retryReads=False)
        failed = clientlib.attempt(lambda: work(client, a),
                                   lambda: client.admin.command("ping"))
        if failed is not None:
            return failed
    return clientlib.done(t)


if __name__ == "__main__":
    sys.exit(main())
