#!/usr/bin/env python3
"""Run one real agent CLI against the scripted model server.

  run_agent.py --agent claude|codex|gemini|opencode --command CMD --result FILE
               [--tty] [--timeout S] [--workdir DIR] [--ptree] [--keep]

The agent comes from the cache that install_agents.sh fills (KS_AGENT_CACHE,
default /var/cache/killswitch-tests/agents).  It runs with a private HOME and
config under a temporary folder, an environment built from scratch (no proxy,
no real key), and talks only to the model server on 127.0.0.1.  The model
server makes it call its shell tool once with CMD, records the tool result,
then ends the turn.

Without --tty the agent gets stdin /dev/null and pipes; with --tty it gets a
fresh pseudo-terminal as its controlling terminal, and the terminal modes are
compared before and after the run.

FILE receives one JSON object (see README.md).  Exit status 0 when the run
completed: the agent reached its final turn, exited by itself with status 0
before the timeout.  1 otherwise, 77 when the agent is not installed.
Standard library only.
"""

import argparse
import errno
import fcntl
import json
import os
import pty
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CACHE = "/var/cache/killswitch-tests/agents"
MODEL = "test-model"
PROMPT = "Run the shell command that the test needs, then say done."

AGENTS = {
    # agent: (npm package, bin name)
    "claude": ("@anthropic-ai/claude-code", "claude"),
    "codex": ("@openai/codex", "codex"),
    "gemini": ("@google/gemini-cli", "gemini"),
    "opencode": ("opencode-ai", "opencode"),
}

TAIL = 4000


def cache_dir():
    return os.environ.get("KS_AGENT_CACHE") or DEFAULT_CACHE


def agent_paths(agent):
    pkg, binname = AGENTS[agent]
    prefix = os.path.join(cache_dir(), agent)
    binpath = os.path.join(prefix, "node_modules", ".bin", binname)
    version = None
    try:
        with open(os.path.join(prefix, "node_modules", pkg, "package.json")) as f:
            version = json.load(f).get("version")
    except (OSError, ValueError):
        pass
    return binpath, version


# ------------------------------------------------------------ agent set-up

def base_env(home, tty):
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": home,
        "USER": os.environ.get("USER", "root"),
        "LOGNAME": os.environ.get("LOGNAME", os.environ.get("USER", "root")),
        "SHELL": "/bin/bash",
        "LANG": "C.UTF-8",
        "TMPDIR": os.path.join(home, "tmp"),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "TERM": "xterm-256color" if tty else "dumb",
    }
    if tty:
        env["COLORTERM"] = "truecolor"
    else:
        env["NO_COLOR"] = "1"
    os.makedirs(env["TMPDIR"], exist_ok=True)
    return env


def setup_claude(binpath, base_url, home, env, workdir, model):
    env.update({
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": "sk-ant-test-key",
        # Root refuses --dangerously-skip-permissions unless this is set.
        "IS_SANDBOX": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CONFIG_DIR": os.path.join(home, ".claude"),
    })
    # No --model: the default model name keeps Claude Code from warning about
    # an unknown model (the server answers whatever model is asked for).
    argv = [binpath, "-p", PROMPT, "--dangerously-skip-permissions"]
    return argv + (["--model", model] if model else [])


def setup_codex(binpath, base_url, home, env, workdir, model):
    codex_home = os.path.join(home, ".codex")
    os.makedirs(codex_home, exist_ok=True)
    # No model: codex picks its default (an OpenAI model, which it drives in
    # "code mode": one JavaScript "exec" tool that calls exec_command).  An
    # unknown model name (--model test-model) gets plain function tools.
    model_line = 'model = "%s"\n' % model if model else ""
    with open(os.path.join(codex_home, "config.toml"), "w") as f:
        f.write(model_line + f'''model_provider = "ks"
check_for_update_on_startup = false

[model_providers.ks]
name = "ks"
base_url = "{base_url}/v1"
env_key = "KS_MODEL_API_KEY"
wire_api = "responses"

[analytics]
enabled = false

[feedback]
enabled = false

[features]
# Without these codex clones a plugin marketplace from the network.
plugins = false
remote_plugin = false
apps = false
plugin_sharing = false
tool_suggest = false
''')
    env.update({"CODEX_HOME": codex_home, "KS_MODEL_API_KEY": "sk-test-key"})
    return [binpath, "exec", "--dangerously-bypass-approvals-and-sandbox",
            "--skip-git-repo-check", "--color", "never", PROMPT]


def setup_gemini(binpath, base_url, home, env, workdir, model):
    gdir = os.path.join(home, ".gemini")
    os.makedirs(gdir, exist_ok=True)
    settings = {
        # GOOGLE_GEMINI_BASE_URL alone selects the "gateway" auth type, which
        # the non-interactive mode rejects: pin the API-key type instead.
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "privacy": {"usageStatisticsEnabled": False},
        "telemetry": {"enabled": False},
        "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
    }
    with open(os.path.join(gdir, "settings.json"), "w") as f:
        json.dump(settings, f, indent=1)
    env.update({
        "GEMINI_API_KEY": "test-key",
        "GOOGLE_GEMINI_BASE_URL": base_url,
        "GEMINI_CLI_TRUST_WORKSPACE": "true",
    })
    argv = [binpath, "-p", PROMPT, "--yolo"]
    return argv + (["--model", model] if model else [])


def setup_opencode(binpath, base_url, home, env, workdir, model):
    model = model or MODEL  # a custom provider needs a model name
    cfg_dir = os.path.join(home, ".config", "opencode")
    os.makedirs(os.path.join(cfg_dir, "node_modules"), exist_ok=True)
    # opencode npm-installs @opencode-ai/plugin into each config folder unless
    # package.json and package-lock.json already list it.
    with open(os.path.join(cfg_dir, "package.json"), "w") as f:
        json.dump({"dependencies": {"@opencode-ai/plugin": "*"}}, f)
    with open(os.path.join(cfg_dir, "package-lock.json"), "w") as f:
        json.dump({"lockfileVersion": 3,
                   "packages": {"": {"dependencies": {"@opencode-ai/plugin": "*"}}}}, f)
    config = {
        "$schema": "https://opencode.ai/config.json",
        "provider": {"ks": {
            "npm": "@ai-sdk/openai-compatible",
            "name": "ks",
            "options": {"baseURL": base_url + "/v1", "apiKey": "sk-test-key"},
            "models": {model: {"name": model, "tool_call": True}},
        }},
        "model": "ks/" + model,
        "small_model": "ks/" + model,
        "permission": {"*": "allow", "bash": "allow", "external_directory": "allow"},
        "autoupdate": False,
        "share": "disabled",
        "snapshot": False,
    }
    path = os.path.join(home, "opencode.json")
    with open(path, "w") as f:
        json.dump(config, f, indent=1)
    env.update({
        "OPENCODE_CONFIG": path,
        "OPENCODE_DISABLE_MODELS_FETCH": "1",
        "OPENCODE_DISABLE_AUTOUPDATE": "1",
        "OPENCODE_DISABLE_DEFAULT_PLUGINS": "1",
        "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
        "OPENCODE_DISABLE_SHARE": "1",
        "OPENCODE_DISABLE_CLAUDE_CODE": "1",
    })
    return [binpath, "run", PROMPT]


SETUP = {"claude": setup_claude, "codex": setup_codex, "gemini": setup_gemini,
         "opencode": setup_opencode}


# ------------------------------------------------------------ model server

def start_server(tmp, command, workdir):
    port_file = os.path.join(tmp, "server.port")
    argv = [sys.executable, os.path.join(HERE, "model_server.py"),
            "--command", command,
            "--result", os.path.join(tmp, "server.json"),
            "--port-file", port_file,
            "--log", os.path.join(tmp, "server.log"),
            "--dump-dir", os.path.join(tmp, "requests"),
            "--model-name", MODEL]
    if workdir:
        argv += ["--workdir", workdir]
    with open(os.path.join(tmp, "server.err"), "wb") as err:
        srv = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=err, start_new_session=True)
    line = srv.stdout.readline().decode()
    if not line.startswith("PORT "):
        srv.kill()
        srv.wait()
        raise RuntimeError("model server did not start: %r" % line)
    return srv, int(line.split()[1])


def stop_server(srv):
    if srv.poll() is None:
        srv.terminate()
        try:
            srv.wait(5)
        except subprocess.TimeoutExpired:
            srv.kill()
            srv.wait()


# ------------------------------------------------------------ processes

def proc_stat(pid):
    """(comm, state, ppid, pgrp, session) of a pid, or None."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read().decode(errors="replace")
    except OSError:
        return None
    lp, rp = data.index("("), data.rindex(")")
    comm = data[lp + 1:rp]
    rest = data[rp + 2:].split()
    return comm, rest[0], int(rest[1]), int(rest[2]), int(rest[3])


def all_pids():
    for name in os.listdir("/proc"):
        if name.isdigit():
            yield int(name)


def read_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0")[:-1]]
    except OSError:
        return None


def read_exe(pid):
    try:
        return os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return None


class TreeSampler:
    """Samples the processes descending from the agent (pid, ppid, comm...)."""

    def __init__(self, root):
        self.root = root
        self.seen = {}  # pid -> record
        self.order = []

    def sample(self):
        stats = {}
        for pid in all_pids():
            st = proc_stat(pid)
            if st:
                stats[pid] = st
        inside = {self.root}
        changed = True
        while changed:
            changed = False
            for pid, st in stats.items():
                if pid not in inside and st[2] in inside:
                    inside.add(pid)
                    changed = True
        t = time.time()
        for pid in inside:
            st = stats.get(pid)
            if not st:
                continue
            rec = self.seen.get(pid)
            argv = read_cmdline(pid)
            if rec is None:
                rec = {"pid": pid, "ppid": st[2], "pgrp": st[3], "sid": st[4],
                       "comm": st[0], "comms": [st[0]], "exe": read_exe(pid),
                       "argv": argv, "first_seen": t}
                self.seen[pid] = rec
                self.order.append(pid)
            else:
                # ppid, group and session as last seen (codex's process setup
                # helper calls setsid after it was first seen, for instance)
                rec["ppid"], rec["pgrp"], rec["sid"] = st[2], st[3], st[4]
                if st[0] not in rec["comms"]:
                    rec["comms"].append(st[0])
                    rec["comm"] = st[0]
                exe = read_exe(pid)
                if exe and exe != rec["exe"]:
                    rec.setdefault("exes", [rec["exe"]]).append(exe)
                    rec["exe"] = exe
                if argv and argv != rec["argv"]:
                    rec["argv"] = argv

    def records(self):
        out = []
        for pid in self.order:
            r = dict(self.seen[pid])
            if r["argv"]:
                r["argv"] = [a if len(a) < 300 else a[:300] + "..." for a in r["argv"]]
            out.append(r)
        return out


def descendants(root):
    children = {}
    for pid in all_pids():
        st = proc_stat(pid)
        if st:
            children.setdefault(st[2], []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def tcp_peers():
    """socket inode -> "local -> remote state" for the TCP sockets of the host."""
    states = {"01": "ESTABLISHED", "02": "SYN_SENT", "06": "TIME_WAIT", "08": "CLOSE_WAIT",
              "0A": "LISTEN"}
    peers = {}
    for name in ("tcp", "tcp6"):
        try:
            with open("/proc/net/" + name) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    peers[parts[9]] = "%s -> %s %s" % (
                        _addr(parts[1]), _addr(parts[2]), states.get(parts[3], parts[3]))
        except OSError:
            pass
    return peers


def _addr(hexaddr):
    ip, port = hexaddr.split(":")
    if len(ip) == 8:
        ip = ".".join(str(int(ip[i:i + 2], 16)) for i in (6, 4, 2, 0))
    else:
        ip = "[v6:%s]" % ip
    return "%s:%d" % (ip, int(port, 16))


def diagnose(root):
    """What the agent's processes are doing when it runs out of time."""
    peers = tcp_peers()
    out = []
    for pid in descendants(root):
        st = proc_stat(pid)
        if not st:
            continue
        rec = {"pid": pid, "ppid": st[2], "comm": st[0], "state": st[1]}
        try:
            with open("/proc/%d/wchan" % pid) as f:
                rec["wchan"] = f.read()
        except OSError:
            pass
        socks = []
        try:
            for fd in os.listdir("/proc/%d/fd" % pid):
                try:
                    target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
                except OSError:
                    continue
                if target.startswith("socket:["):
                    socks.append(peers.get(target[8:-1], target))
        except OSError:
            pass
        rec["sockets"] = socks
        rec["argv"] = (read_cmdline(pid) or [])[:4]
        out.append(rec)
    return out


def killswitch_pids():
    """A killswitch daemon guards these agents by name: one running on the
    host (another test, say) can kill or hold them."""
    return [pid for pid in all_pids() if (proc_stat(pid) or ("",))[0] == "killswitch"]


def become_subreaper():
    """Orphans of what we start come to us, not to init: nothing we started
    can outlive the run unseen."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def sweep(pgid, sid, server_pid):
    """Kill (SIGKILL) and reap what is left of the processes we started:
    members of our group/session, and our orphaned descendants.  Returns
    what was found."""
    found = []
    me = os.getpid()
    for _ in range(20):
        left = []
        for pid in all_pids():
            st = proc_stat(pid)
            if not st or pid in (me, server_pid):
                continue
            if st[2] == me or ((st[3] == pgid or st[4] == sid) and st[1] != "Z"):
                left.append(pid)
        if not left:
            break
        for pid in left:
            st = proc_stat(pid)
            if st and st[1] != "Z" and pid not in [f["pid"] for f in found]:
                found.append({"pid": pid, "comm": st[0], "ppid": st[2],
                              "argv": read_cmdline(pid)})
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
        for pid in left:
            if (proc_stat(pid) or (None, None, None))[2] == me:
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
    return found


def kill_group(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


# ------------------------------------------------------------ terminal

TERM_ANSWERS = [
    (b"\x1b[6n", b"\x1b[1;1R"),                      # cursor position
    (b"\x1b[c", b"\x1b[?62;22c"),                     # primary device attributes
    (b"\x1b[0c", b"\x1b[?62;22c"),
    (b"\x1b]11;?\x07", b"\x1b]11;rgb:0000/0000/0000\x07"),  # background colour
    (b"\x1b]11;?\x1b\\", b"\x1b]11;rgb:0000/0000/0000\x1b\\"),
    (b"\x1b]10;?\x07", b"\x1b]10;rgb:ffff/ffff/ffff\x07"),  # foreground colour
    (b"\x1b]10;?\x1b\\", b"\x1b]10;rgb:ffff/ffff/ffff\x1b\\"),
]

TERMIOS_FIELDS = ("iflag", "oflag", "cflag", "lflag", "ispeed", "ospeed")


def termios_snapshot(fd):
    a = termios.tcgetattr(fd)
    d = dict(zip(TERMIOS_FIELDS, a[:6]))
    d["cc"] = [c if isinstance(c, int) else c[0] for c in a[6]]
    return d


def termios_diff(before, after):
    diff = {}
    for k in TERMIOS_FIELDS:
        if before[k] != after[k]:
            diff[k] = {"before": before[k], "after": after[k]}
    cc = [i for i, (x, y) in enumerate(zip(before["cc"], after["cc"])) if x != y]
    if cc:
        diff["cc"] = {str(i): [before["cc"][i], after["cc"][i]] for i in cc}
    return diff


def lflag_names(lflag):
    return {n: bool(lflag & getattr(termios, n)) for n in ("ECHO", "ICANON", "ISIG", "IEXTEN")}


def make_ctty():
    # Runs in the child after setsid(): the pty slave (fd 0) becomes the
    # controlling terminal, as it would for a login shell.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


# ------------------------------------------------------------ the run

def run(args):
    binpath, version = agent_paths(args.agent)
    if not (os.path.exists(binpath) and version):
        print("agent %s not installed in %s (run tests/agents/install_agents.sh)"
              % (args.agent, cache_dir()), file=sys.stderr)
        return 77, None

    become_subreaper()
    # Not under /tmp: codex refuses to set up its helper commands (PATH
    # aliases) under /tmp, which would make its runs unlike a user's.
    base = args.tmp_base or os.environ.get("KS_AGENT_TMP") or "/var/tmp"
    os.makedirs(base, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="ks-agent-%s-" % args.agent, dir=base)
    home = os.path.join(tmp, "home")
    os.makedirs(home)
    workdir = args.workdir or os.path.join(tmp, "work")
    os.makedirs(workdir, exist_ok=True)
    workdir = os.path.abspath(workdir)

    srv, port = start_server(tmp, args.command, workdir)
    base_url = "http://127.0.0.1:%d" % port
    env = base_env(home, args.tty)
    argv = SETUP[args.agent](binpath, base_url, home, env, workdir, args.model)

    out = {"agent": args.agent, "version": version, "tty": bool(args.tty),
           "command": args.command, "argv": argv, "workdir": workdir,
           "killswitch_running_at_start": killswitch_pids()}
    master = slave = proc = None
    bufs = {}
    fds = {}
    t0 = time.time()
    try:
        if args.tty:
            master, slave = pty.openpty()
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
            before = termios_snapshot(slave)
            proc = subprocess.Popen(argv, cwd=workdir, env=env, stdin=slave, stdout=slave,
                                    stderr=slave, start_new_session=True,
                                    preexec_fn=make_ctty, close_fds=True)
            fds = {master: "tty"}
        else:
            proc = subprocess.Popen(argv, cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    start_new_session=True, close_fds=True)
            fds = {proc.stdout.fileno(): "stdout", proc.stderr.fileno(): "stderr"}
        pgid = sid = proc.pid
        bufs = {name: bytearray() for name in fds.values()}
        sampler = TreeSampler(proc.pid) if args.ptree else None
        deadline = t0 + args.timeout
        timed_out = False
        status = None
        next_sample = 0.0
        while True:
            now = time.time()
            if sampler and now >= next_sample:
                sampler.sample()
                next_sample = now + args.ptree_interval
            status = proc.poll()
            if status is not None:
                break
            if now >= deadline:
                timed_out = True
                out["timeout_diagnosis"] = diagnose(proc.pid)
                kill_group(pgid, signal.SIGTERM)
                try:
                    status = proc.wait(3)
                except subprocess.TimeoutExpired:
                    kill_group(pgid, signal.SIGKILL)
                    status = proc.wait()
                break
            r, _, _ = select.select(list(fds), [], [], 0.02)
            for fd in r:
                try:
                    data = os.read(fd, 65536)
                except OSError as e:
                    if e.errno != errno.EIO:
                        raise
                    data = b""
                if not data:
                    del fds[fd]
                    continue
                bufs_name = fds[fd]
                bufs[bufs_name] += data
                if master is not None and fd == master:
                    for q, a in TERM_ANSWERS:
                        if q in data:
                            os.write(master, a)
        elapsed = time.time() - t0
        # drain what is left without blocking
        end = time.time() + 1.0
        while fds and time.time() < end:
            r, _, _ = select.select(list(fds), [], [], 0.05)
            if not r:
                if master is not None:
                    break
                continue
            for fd in r:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    data = b""
                if not data:
                    del fds[fd]
                else:
                    bufs[fds[fd]] += data
        # processes the agent left behind: in the session we created, or
        # (sessions of their own, as the agents give their shell commands)
        # orphans that came to us as their subreaper
        out["leftover_processes"] = sweep(pgid, sid, srv.pid)
        out["killswitch_running_at_end"] = killswitch_pids()
        if args.tty:
            after = termios_snapshot(slave)
            diff = termios_diff(before, after)
            out["terminal_sane"] = not diff
            out["termios_diff"] = diff
            out["terminal_after"] = lflag_names(after["lflag"])
        else:
            out["terminal_sane"] = None
        if sampler:
            out["process_tree"] = sampler.records()
    finally:
        for fd in (master, slave):
            if fd is not None:
                os.close(fd)
        for pipe in (getattr(proc, "stdout", None), getattr(proc, "stderr", None)):
            if pipe:
                pipe.close()
        stop_server(srv)
        srv.stdout.close()

    try:
        with open(os.path.join(tmp, "server.json")) as f:
            sres = json.load(f)
    except (OSError, ValueError):
        sres = {}
    tool_calls = [r for r in sres.get("requests", []) if r.get("kind") == "tool_call"]
    out.update({
        "exit_status": status,
        "timed_out": timed_out,
        "elapsed_s": round(elapsed, 3),
        "started_at": t0,
        "first_request_s": (round(sres["requests"][0]["t"] - t0, 3)
                            if sres.get("requests") else None),
        "final_sent_s": (round(sres["final_at"] - t0, 3) if sres.get("final_at") else None),
        "tool_call_sent": bool(sres.get("tool_call_sent_at")),
        "tool_name": sres.get("tool_name"),
        "tool_arguments": tool_calls[0].get("arguments") if tool_calls else None,
        "tool_result": sres.get("tool_result"),
        "tool_result_is_error": sres.get("tool_result_is_error"),
        "latency_next_turn_s": sres.get("latency_s"),
        "reached_final_turn": bool(sres.get("final_sent")),
        "main_requests": [{k: r.get(k) for k in ("path", "kind", "has_tool_result", "latency_s")}
                          for r in sres.get("requests", [])],
        "aux_requests": [a.get("path") for a in sres.get("aux", [])],
    })
    for name, b in bufs.items():
        out[name + "_tail"] = b[-TAIL:].decode(errors="replace")
    try:
        with open(os.path.join(tmp, "server.log")) as f:
            out["server_log"] = [line.rstrip("\n") for line in f][-40:]
    except OSError:
        out["server_log"] = []
    completed = out["reached_final_turn"] and not timed_out and status == 0
    out["completed"] = completed
    if args.keep or not completed:
        out["tmpdir"] = tmp
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return (0 if completed else 1), out


def main():
    ap = argparse.ArgumentParser(description="Run a real agent CLI against a scripted model.")
    ap.add_argument("--agent", required=True, choices=sorted(AGENTS))
    ap.add_argument("--command", required=True, help="command the model asks the agent to run")
    ap.add_argument("--result", required=True, help="write the JSON report here")
    ap.add_argument("--tty", action="store_true", help="run the agent on a pseudo-terminal")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds before the agent is killed")
    ap.add_argument("--workdir", help="agent working directory (default: a temporary one)")
    ap.add_argument("--model", help="model name the agent asks for (default: the agent's "
                    "own default; test-model for opencode)")
    ap.add_argument("--ptree", action="store_true",
                    help="sample the agent's process tree (pid, comm, exe, argv) while it runs")
    ap.add_argument("--ptree-interval", type=float, default=0.01)
    ap.add_argument("--tmp-base", help="folder for the run's temporary folder "
                    "(default: KS_AGENT_TMP or /var/tmp)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temporary folder (HOME, server log, request dumps)")
    args = ap.parse_args()
    code, out = run(args)
    if out is not None:
        tmp = args.result + ".tmp"
        with open(tmp, "w") as f:
            json.dump(out, f, indent=1)
        os.replace(tmp, args.result)
        print("%s tty=%s completed=%s exit=%s elapsed=%.1fs latency=%s result=%r" % (
            out["agent"], out["tty"], out["completed"], out["exit_status"], out["elapsed_s"],
            None if out["latency_next_turn_s"] is None else round(out["latency_next_turn_s"], 3),
            (out["tool_result"] or "")[:120]))
        if out["killswitch_running_at_start"] or out["killswitch_running_at_end"]:
            print("note: a killswitch daemon was running on the host during the run (it "
                  "guards these agents by name and may kill or hold them)")
    return code


if __name__ == "__main__":
    sys.exit(main())
