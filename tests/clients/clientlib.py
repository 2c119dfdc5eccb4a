"""What the Python scenario scripts share: connection parameters, timing and
how a failure is reported.

Connection parameters come from the command line, else from the environment:
  --host (KS_DB_HOST, default 127.0.0.1)  --port (KS_DB_PORT)
  --socket (KS_DB_SOCKET: a unix socket path, used instead of host and port)
  --user (KS_DB_USER)  --password (KS_DB_PASSWORD)  --db (KS_DB_NAME)
  --repeat (KS_DB_REPEAT, default 100: round trips of a harmless case)

What a script prints (tests/e2e/db_clients_test.cpp reads it):
  stdout  op_ms N                   how long the one thing took (after imports)
  stdout  after refusal: usable     a harmless request on the same connection
          after refusal: unusable: TEXT   worked, or did not, after an error
  stderr  client error: TEXT        the error the client library (or the
                                    client program) reported, one line each;
                                    a client program's stderr lines that the
                                    killswitch daemon wrote ("killswitch: ...")
                                    are passed through as they are
Exit status: 0 done; 3 the client reported an error (the lines above); any
other status is the process dying on its own (a crash, a signal).
"""

import argparse
import os
import sys
import time

FAILED = 3


def parse(description, actions, default_port=None, default_user=None, default_db=None):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("action", choices=actions)
    env = os.environ.get
    p.add_argument("--host", default=env("KS_DB_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(env("KS_DB_PORT", default_port or 0)))
    p.add_argument("--socket", default=env("KS_DB_SOCKET"),
                   help="unix socket path, instead of --host/--port")
    p.add_argument("--user", default=env("KS_DB_USER", default_user))
    p.add_argument("--password", default=env("KS_DB_PASSWORD", ""))
    p.add_argument("--db", default=env("KS_DB_NAME", default_db))
    p.add_argument("--repeat", type=int, default=int(env("KS_DB_REPEAT", "100")))
    return p.parse_args()


def one_line(text):
    return " ".join(str(text).split())


def client_error(exc_or_text, prefix=None):
    """Prints what the client reported and exits with FAILED."""
    if isinstance(exc_or_text, BaseException):
        e = exc_or_text
        lines = ["%s: %s" % (type(e).__name__, one_line(e))]
        cause = e.__cause__ or e.__context__
        if cause is not None and one_line(cause) not in lines[0]:
            lines.append("%s: %s" % (type(cause).__name__, one_line(cause)))
    else:
        # A client program's stderr. Lines the killswitch daemon wrote there
        # itself ("killswitch: ...", its notice to a refused process) are not
        # the client's: they pass through as they are.
        lines = []
        for l in str(exc_or_text).splitlines():
            if l.startswith("killswitch: "):
                sys.stderr.write(l + "\n")
            elif l.strip():
                lines.append(l.strip())
        lines = lines or ["(no text)"]
    # One write per line: the line reaches stderr whole, whatever else is
    # written there meanwhile.
    for l in lines:
        sys.stderr.write("client error: " + (prefix + ": " if prefix else "") + l + "\n")
        sys.stderr.flush()
    sys.stdout.flush()
    return FAILED


def after_refusal(probe):
    """A harmless request on the connection that reported an error."""
    try:
        probe()
        sys.stdout.write("after refusal: usable\n")
    except Exception as e:  # noqa: BLE001 - any failure is the answer
        sys.stdout.write("after refusal: unusable: %s: %s\n" % (type(e).__name__, one_line(e)))


def attempt(work, probe):
    """Runs work(); when the client reports an error, prints it, tries probe()
    on the same connection and returns FAILED; None when it went through."""
    try:
        work()
        return None
    except Exception as e:  # noqa: BLE001 - what the client library reports
        status = client_error(e)
        after_refusal(probe)
        return status


class Timer:
    def __enter__(self):
        self.t0 = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.ms = (time.monotonic() - self.t0) * 1000.0
        return False


def done(timer):
    print("op_ms %.1f" % timer.ms)
    sys.stdout.flush()
    return 0
