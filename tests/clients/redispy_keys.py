#!/usr/bin/python3
"""redis-py against Redis, over TCP or a unix socket: one thing.

  redispy_keys.py ACTION (--host H --port P | --socket PATH)

  harmless      --repeat times: SET harmless:<i>, then GET it
  flushall      FLUSHALL
  del-pipeline  every key matching key:* (SCAN), one DEL each, all in one
                pipeline (redis-py's default pipeline(): MULTI ... EXEC)
  del-batches   every key matching key:* (SCAN), DEL of 100 keys at a time,
                one command after another

After an error, PING on the same client says whether it is still usable.
Output and exit status: clientlib.py.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clientlib  # noqa: E402

import redis  # noqa: E402


def work(r, a):
    if a.action == "harmless":
        for i in range(a.repeat):
            r.set("harmless:%d" % i, "v%d" % i)
            r.get("harmless:%d" % i)
        return
    if a.action == "flushall":
        r.flushall()
        return
    keys = list(r.scan_iter(match="key:*", count=1000))
    print("keys %d" % len(keys))
    if a.action == "del-pipeline":
        pipe = r.pipeline()
        for k in keys:
            pipe.delete(k)
        results = pipe.execute(raise_on_error=False)
        errors = [x for x in results if isinstance(x, Exception)]
        print("deleted %d" % sum(x for x in results if isinstance(x, int)))
        if errors:
            print("refused %d" % len(errors))
            raise errors[0]
        return
    deleted = 0
    try:
        for i in range(0, len(keys), 100):
            deleted += r.delete(*keys[i:i + 100])
    finally:
        print("deleted %d" % deleted)


def main():
    a = clientlib.parse(__doc__.splitlines()[0],
                        ["harmless", "flushall", "del-pipeline", "del-batches"],
                        default_port="6379")
    with clientlib.Timer() as t:
        if a.socket:
            r = redis.Redis(unix_socket_path=a.socket, password=a.password or None)
        else:
            r = redis.Redis(host=a.host, port=a.port, password=a.password or None)
        failed = clientlib.attempt(lambda: work(r, a), r.ping)
        if failed is not None:
            return failed
    return clientlib.done(t)


if __name__ == "__main__":
    sys.exit(main())
