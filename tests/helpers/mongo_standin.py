#!/usr/bin/python3
"""A stand-in MongoDB server for the tests: there is no MongoDB server in
Debian, so real clients (pymongo) are run against this instead. It speaks
just enough of the wire protocol for a driver: the handshake (isMaster or
hello, over OP_QUERY or OP_MSG) and any other command, answered {ok: 1}.
Every command it receives is written, one name per line, to LOG; whatever
never reaches it never ran.

  mongo_standin.py LOG        prints "port N" once it listens on 127.0.0.1

BSON by pymongo's own bson module (python3-pymongo).
"""
import datetime
import socket
import struct
import sys
import threading

import bson

OP_REPLY, OP_QUERY, OP_MSG = 1, 2004, 2013
HELLO = {"isMaster", "ismaster", "hello"}
lock = threading.Lock()
next_id = [1]


def recv_exact(c, n):
    out = b""
    while len(out) < n:
        got = c.recv(n - len(out))
        if not got:
            raise ConnectionError("closed")
        out += got
    return out


def answer(name, conn_id):
    if name in HELLO:
        return {"ismaster": True, "isWritablePrimary": True, "helloOk": True,
                "maxBsonObjectSize": 16777216, "maxMessageSizeBytes": 48000000,
                "maxWriteBatchSize": 100000, "localTime": datetime.datetime.utcnow(),
                "logicalSessionTimeoutMinutes": 30, "connectionId": conn_id,
                "minWireVersion": 0, "maxWireVersion": 13, "readOnly": False, "ok": 1.0}
    return {"ok": 1.0}


def serve(c, conn_id, log):
    try:
        while True:
            length, req_id, _, op = struct.unpack("<iiii", recv_exact(c, 16))
            body = recv_exact(c, length - 16)
            if op == OP_QUERY:
                at = body.index(b"\0", 4) + 1 + 8  # flags, collection name, skip, return
                doc = bson.decode(body[at:at + struct.unpack("<i", body[at:at + 4])[0]])
            elif op == OP_MSG:
                flags = struct.unpack("<I", body[:4])[0]
                at, doc = 4, None
                while at < len(body) - (4 if flags & 1 else 0):
                    kind = body[at]
                    size = struct.unpack("<i", body[at + 1:at + 5])[0]
                    if kind == 0:
                        doc = bson.decode(body[at + 1:at + 1 + size])
                    at += 1 + size
            else:
                return
            name = next(iter(doc)) if doc else "?"
            with lock:
                log.write(name + "\n")
                log.flush()
                my_id = next_id[0]
                next_id[0] += 1
            reply = bson.encode(answer(name, conn_id))
            if op == OP_QUERY:
                out = struct.pack("<iqii", 0, 0, 0, 1) + reply
                head = struct.pack("<iiii", 16 + len(out), my_id, req_id, OP_REPLY)
            else:
                out = struct.pack("<I", 0) + b"\0" + reply
                head = struct.pack("<iiii", 16 + len(out), my_id, req_id, OP_MSG)
            c.sendall(head + out)
    except (ConnectionError, OSError):
        pass
    finally:
        c.close()


def main():
    log = open(sys.argv[1], "a")
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    print("port %d" % s.getsockname()[1], flush=True)
    n = 0
    while True:
        c, _ = s.accept()
        n += 1
        threading.Thread(target=serve, args=(c, n, log), daemon=True).start()


if __name__ == "__main__":
    main()
