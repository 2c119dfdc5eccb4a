#include "cli/commands.h"
#include "daemon/daemon.h"
#include "process_guard/sessions.h"

namespace ks::cli {

void add_daemon_command(CLI::App& app, Registry& reg) {
    auto opts = std::make_shared<DaemonOptions>();
    auto* cmd = app.add_subcommand(
        "daemon",
        "Run the killswitch daemon in the foreground (as root).\n"
        "It mounts tracefs and bpffs when missing, finds the cgroup v2 mount, loads its BPF\n"
        "programs, follows guarded processes and writes the audit log until SIGINT or\n"
        "SIGTERM. SIGHUP reopens the audit log (for log rotation). Exit status 1 with one\n"
        "error line when the policy is invalid, a kernel feature is missing or another\n"
        "daemon holds the lock.\n"
        "\n"
        "Fail-closed: the programs and their state are pinned in bpffs (--pin-dir). When\n"
        "the daemon stops, or is killed, the kernel goes on enforcing: guarded processes\n"
        "are still stopped, and tasks held for a decision stay stopped. A daemon that\n"
        "starts adopts what it finds there without a gap. `killswitch daemon --uninstall`\n"
        "is the way to remove them (with no daemon running).");
    // Not checked here: with --host-root the files are the host's, seen once
    // the daemon has joined its mount namespace (the policy loader says
    // which file it could not read).
    cmd->add_option("--policy", opts->policy_file,
                    "Policy file (YAML); default: the built-in policy (`killswitch policy "
                    "show-default`)");
    cmd->add_option("--policy-dir", opts->policy_dir,
                    "Drop-in policy files: every DIR/*.yaml, read after --policy in the byte "
                    "order of their names (00-base.yaml before 50-postgres.yaml). A drop-in's "
                    "keys replace the ones before it, but its lists (protect.paths, "
                    "agents.names...) add to them. `killswitch policy reload` reads them again; "
                    "status shows the files and the SHA-256 of their texts (the packaged "
                    "service uses /etc/killswitch/policy.d)");
    cmd->add_option("--audit-log", opts->audit_log,
                    "Audit log, one JSON object per line (default: the policy's, "
                    "/var/log/killswitch/audit.jsonl)");
    cmd->add_option("--protect", opts->protect, "Protect this path as well (repeatable)");
    cmd->add_option("--mode", opts->mode,
                    "enforce: act on matches; monitor: only record what would have been done "
                    "(default: the policy's)")
        ->check(CLI::IsMember({"enforce", "monitor"}));
    cmd->add_flag("!--no-libc-uprobes", opts->libc_uprobes,
                  "Do not attach the libc layer (uprobes trap in every process that calls the "
                  "hooked libc functions, guarded or not; see docs/performance.md)");
    cmd->add_flag("!--global-uprobes", opts->scoped_uprobes,
                  "Attach the libc uprobes for every process, as on kernels before 6.6, "
                  "instead of to each guarded process alone (for comparison: every process that "
                  "calls the hooked functions then traps; see docs/performance.md)");
    cmd->add_flag("!--no-lsm", opts->lsm,
                  "Do not use the LSM layer even where the kernel runs BPF LSM (bpf in "
                  "/sys/kernel/security/lsm). With it, the kernel refuses a guarded process's "
                  "destructive operations with EPERM; without it, the fentry layer does the "
                  "same where the kernel has BPF trampolines, else the exec, libc and syscall "
                  "tracepoint layers stop the process (a raw system call completes first). "
                  "`killswitch doctor` says which this host has");
    cmd->add_flag("!--no-fentry", opts->fentry,
                  "Where the LSM layer is not used, do not put the file and self-protection "
                  "checks on the kernel's security_* functions as fmod_ret programs (which "
                  "refuse the call with EPERM, like the LSM layer); use the libc uprobes and "
                  "syscall tracepoints instead, which stop a raw system call only right after "
                  "it and send every system call of every process down the slow path");
    cmd->add_flag("--seccomp-sessions", opts->seccomp_sessions,
                  "Where neither the LSM nor the fentry layer runs, put `killswitch run` "
                  "sessions under a seccomp filter: the daemon answers each destructive system "
                  "call of such a session before it runs (refused with EPERM, raw calls and "
                  "static binaries included), and while every session is one of these and "
                  "protect.min_free is off, no syscall tracepoint is attached: other processes "
                  "pay nothing. The price: each such call waits for the daemon's answer (about "
                  "35 us on a 2-vCPU guest), and while the daemon is down (a restart, an "
                  "upgrade) those calls wait for the next one, which `killswitch run` hands the "
                  "session (after 60 s with no daemon they fail with ENOSYS). See "
                  "docs/guarantees.md and docs/performance.md");
    cmd->add_option("--db", opts->db,
                    "Watch this database, as KIND=ADDRESS (repeatable; replaces the policy's "
                    "databases.endpoints). KIND: postgres, mysql, redis, mongodb. ADDRESS: "
                    "HOST:PORT, [IPV6]:PORT, *:PORT (every address) or a unix socket path. "
                    "Default: ports 5432, 3306, 6379, 27017 on every address and the standard "
                    "unix sockets, and every other port and socket a running server listens on "
                    "(databases.discover), which --db turns off");
    cmd->add_option("--output", opts->outputs,
                    "Send state and decisions here too, as KIND=TARGET (repeatable; added to the "
                    "policy's outputs). metrics=HOST:PORT serves Prometheus metrics at "
                    "http://HOST:PORT/metrics (every status counter, layers up, sessions, holds, "
                    "the policy's SHA-256); metrics-file=PATH writes the same text each second "
                    "for node-exporter's textfile collector; syslog=udp|tcp|tls://HOST:PORT "
                    "sends every record as RFC 5424 (tls: ?ca=FILE&cert=FILE&key=FILE); "
                    "webhook=http(s)://HOST/PATH POSTs decisions and a notification for each "
                    "hold and frozen session with the command to run; ocsf=PATH appends OCSF "
                    "1.8.0 events; journald writes journal entries with fields. Each has a "
                    "bounded queue and never holds enforcement up. See docs/outputs.md");
    cmd->add_option("--host-root", opts->host_root,
                    "In a container that guards its host: where the host's / is mounted (/host). "
                    "The daemon first joins the mount namespace of the host's PID 1 (the "
                    "container needs hostPID and privileges), so every path it is given or "
                    "finds (policy, audit log, runtime dir, protected data, libc, libpq) is the "
                    "host's. See docs/operations.md (Kubernetes, podman)");
    cmd->add_flag("!--no-db-client-probes", opts->db_client_probes,
                  "Do not attach the libpq uprobes (they trap in every libpq client while a "
                  "session exists; without them libpq clients over unix sockets and TLS are not "
                  "inspected)");
    cmd->add_option("--pin-dir", opts->pin_dir,
                    "bpffs directory where the programs and their state are pinned; an empty "
                    "value pins nothing (the programs then go with the daemon)")
        ->capture_default_str();
    cmd->add_flag("--uninstall", opts->uninstall,
                  "Remove the pinned programs and state from --pin-dir and exit: the kernel stops "
                  "enforcing. Refused while a daemon runs (stop it first) and to a guarded "
                  "process. Recorded in the audit log (--audit-log, or the policy's).");
    cmd->add_option("--cgroup-parent", opts->cgroup_parent,
                    "The cgroup that holds session cgroups: a path under the cgroup v2 root, or "
                    "./NAME under the daemon's own cgroup (a systemd unit with Delegate=yes owns "
                    "that subtree; the packaged unit uses ./sessions). With --uninstall, "
                    "default: where the last daemon kept them")
        ->capture_default_str();
    cmd->callback([&reg, opts, cmd] {
        if (opts->uninstall && cmd->count("--cgroup-parent") == 0)
            opts->cgroup_parent =
                recorded_session_parent(reg.global.runtime_dir, opts->cgroup_parent);
        reg.action = [&reg, opts] {
            opts->runtime_dir = reg.global.runtime_dir;
            return opts->uninstall ? uninstall_daemon(*opts) : run_daemon(*opts);
        };
    });
}

}  // namespace ks::cli
