#!/usr/bin/env python3
"""Speaks database wire protocols by hand, the way a program that bypasses
every client library would, and reports what happened to each request.

    wire_client.py postgres HOST PORT REQUESTS.json
    wire_client.py mongodb HOST PORT REQUESTS.json

REQUESTS.json is a list of objects:
    {"sql": "...", "mode": "simple" | "split" | "extended" | "raw"}   (postgres)
    {"hex": "..."}                                                    (raw bytes; mongodb: one OP_MSG)
"simple" sends one Query message; "split" sends it in two writes 50 ms apart;
"extended" sends Parse/Bind/Execute/Sync; "raw" sends the bytes of "hex" after
the startup exchange; "tls" sends an SSLRequest first and, whatever the server
answers, the bytes of "hex" (a TLS handshake record) as its next message.

Each request goes on a new connection. One JSON object per line on stdout:
    {"i": N, "outcome": "refused", "error": "..."}   a send failed, or the
        connection was closed before any answer came
    {"i": N, "outcome": "answered", "server_error": "..."|null}
"""
import json
import socket
import struct
import sys
import time


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return buf


def pg_message(s):
    head = recv_exact(s, 5)
    length = struct.unpack("!I", head[1:])[0]
    return head[:1], recv_exact(s, length - 4)


def pg_until_ready(s):
    """Reads messages up to ReadyForQuery; returns the first error text."""
    error = None
    while True:
        kind, body = pg_message(s)
        if kind == b"E" and error is None:
            fields = body.split(b"\0")
            error = next((f[1:].decode(errors="replace") for f in fields if f[:1] == b"M"), "error")
        if kind == b"Z":
            return error


def pg_startup(s):
    body = struct.pack("!I", 196608) + b"user\0postgres\0database\0postgres\0\0"
    s.sendall(struct.pack("!I", len(body) + 4) + body)
    pg_until_ready(s)


def pg_msg(kind, body):
    return kind + struct.pack("!I", len(body) + 4) + body


def pg_request(req):
    if req.get("mode") == "raw":
        return [bytes.fromhex(req["hex"])]
    sql = req["sql"].encode()
    if req.get("mode") == "extended":
        return [pg_msg(b"P", b"\0" + sql + b"\0" + struct.pack("!H", 0)) +
                pg_msg(b"B", b"\0\0" + struct.pack("!HHH", 0, 0, 0)) +
                pg_msg(b"E", b"\0" + struct.pack("!I", 0)) + pg_msg(b"S", b"")]
    q = pg_msg(b"Q", sql + b"\0")
    if req.get("mode") == "split":
        half = len(q) // 2
        return [q[:half], q[half:]]
    return [q]


def run_postgres(host, port, req):
    s = socket.create_connection((host, port), timeout=10)
    try:
        if req.get("mode") == "tls":
            s.sendall(struct.pack("!II", 8, 80877103))
            answer = recv_exact(s, 1)
            s.sendall(bytes.fromhex(req["hex"]))
            return {"outcome": "answered", "server_error": None, "ssl_answer": answer.decode()}
        pg_startup(s)
        for i, part in enumerate(pg_request(req)):
            if i:
                time.sleep(0.05)
            s.sendall(part)
        return {"outcome": "answered", "server_error": pg_until_ready(s)}
    except (OSError, ConnectionError) as e:
        return {"outcome": "refused", "error": str(e)}
    finally:
        s.close()


def run_mongodb(host, port, req):
    s = socket.create_connection((host, port), timeout=10)
    try:
        s.sendall(bytes.fromhex(req["hex"]))
        # the test's stand-in server answers every message with one byte
        return {"outcome": "answered", "server_error": None, "reply": recv_exact(s, 1).hex()}
    except (OSError, ConnectionError) as e:
        return {"outcome": "refused", "error": str(e)}
    finally:
        s.close()


def main():
    kind, host, port, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    with open(path) as f:
        requests = json.load(f)
    run = run_postgres if kind == "postgres" else run_mongodb
    for i, req in enumerate(requests):
        out = run(host, port, req)
        out["i"] = i
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
