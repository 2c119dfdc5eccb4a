#!/usr/bin/env python3
"""Runs every installed agent through run_agent.py, with and without a
terminal, for a harmless command and a failing one, and checks what the
model received.  Prints one line per run and "N passed, N failed".

  verify_agents.py [--agents claude,codex,...] [--timeout S] [--out DIR]

Exit 0 when all pass, 1 when one fails, 77 when no agent is installed
(run install_agents.sh first).  Standard library only."""

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run_agent  # noqa: E402

CASES = [
    # name, command, texts the tool result must contain
    ("echo", "echo hello-from-agent", ["hello-from-agent"]),
    ("fail", "ls /nonexistent-dir-xyz; echo rc=$?",
     ["No such file or directory", "rc=2"]),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents", default=",".join(sorted(run_agent.AGENTS)))
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--out", help="keep the JSON reports here")
    args = ap.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="ks-verify-agents-")
    os.makedirs(out, exist_ok=True)

    agents = [a for a in args.agents.split(",") if a]
    installed = [a for a in agents if run_agent.agent_paths(a)[1]]
    if not installed:
        print("verify_agents: no agent installed in %s: run tests/agents/install_agents.sh"
              % run_agent.cache_dir())
        return 77
    passed = failed = skipped = 0
    runs = []
    for agent in agents:
        if agent not in installed:
            print("SKIP %s: not installed" % agent)
            skipped += 1
            continue
        for tty in (False, True):
            for name, command, texts in CASES:
                runs.append((agent, None, tty, name, command, texts))
        if agent == "codex":
            # codex's default model runs in "code mode" (a JavaScript exec
            # tool); an unknown model name gets the plain exec_command tool
            for tty in (False, True):
                runs.append((agent, "test-model", tty, "fail", CASES[1][1], CASES[1][2]))
    for agent, model, tty, name, command, texts in runs:
        what = agent + ("/" + model if model else "")
        label = "%s %s %s" % (what, "tty" if tty else "notty", name)
        res = os.path.join(out, "%s-%s-%s.json" % (
            what.replace("/", "-"), "tty" if tty else "notty", name))
        argv = [sys.executable, os.path.join(HERE, "run_agent.py"), "--agent", agent,
                "--command", command, "--result", res, "--timeout", str(args.timeout)]
        if tty:
            argv.append("--tty")
        if model:
            argv += ["--model", model]
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            with open(res) as f:
                r = json.load(f)
        except (OSError, ValueError):
            r = {}
        why = []
        if p.returncode != 0 or not r.get("completed"):
            why.append("run not completed (exit %s, agent status %s, timed out %s)" % (
                p.returncode, r.get("exit_status"), r.get("timed_out")))
        result = r.get("tool_result") or ""
        for t in texts:
            if t not in result:
                why.append("tool result lacks %r" % t)
        if tty and r.get("terminal_sane") is not True:
            why.append("terminal left changed: %s" % r.get("termios_diff"))
        if why:
            failed += 1
            print("FAIL %s: %s; tool result %r; report %s" % (
                label, "; ".join(why), result[:200], res))
            if r.get("killswitch_running_at_start") or r.get("killswitch_running_at_end"):
                print("     a killswitch daemon was running on the host meanwhile: it guards "
                      "these agents by name, run again when it is gone")
            tail = p.stdout.decode(errors="replace").strip()
            if tail:
                print("     " + tail[-600:].replace("\n", "\n     "))
        else:
            passed += 1
            print("ok   %s: %.1fs, next turn after %.2fs, result %r" % (
                label, r["elapsed_s"], r["latency_next_turn_s"] or -1,
                result.replace("\n", "\\n")[:90]))
    line = "%d passed, %d failed" % (passed, failed)
    if skipped:
        line += ", %d skipped" % skipped
    print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
