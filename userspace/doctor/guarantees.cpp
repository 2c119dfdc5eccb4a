#include "doctor/guarantees.h"

#include <array>
#include <utility>

namespace ks {
namespace {

// Which operations this build enforces. Flip an entry in the same change that
// lands the layer enforcing it, together with a test that shows the outcome.
struct Implemented {
    std::string_view operation;
    bool implemented;
};
constexpr std::array kImplemented = {
    Implemented{"exec-destructive-command", true},
    Implemented{"unlink-via-libc", true},
    Implemented{"unlink-raw-syscall", true},
    Implemented{"rename", true},
    Implemented{"truncate", true},
    Implemented{"open-truncate-or-write", true},
    Implemented{"system-settings", true},
    Implemented{"mount-over-data", true},
    Implemented{"metadata", true},
    Implemented{"block-device-write", true},
    Implemented{"space-budget", true},
    Implemented{"io_uring-ops", true},
    Implemented{"db-statement-tcp", true},
    Implemented{"db-statement-unix-socket", true},
    Implemented{"db-effect", true},
    Implemented{"session-freeze", true},
    Implemented{"guard-inheritance", true},
    Implemented{"self-signal-via-libc", true},
    Implemented{"self-signal-raw-syscall", true},
    Implemented{"self-bpf-detach", true},
    Implemented{"reach-via-libc", true},
    Implemented{"reach-raw-syscall", true},
    Implemented{"deputy-connect", true},
    Implemented{"fail-closed", true},
    Implemented{"uprobes-in-guarded-only", true},
    Implemented{"run-session-seccomp", true},
};

bool is_implemented(std::string_view operation) {
    for (const auto& i : kImplemented)
        if (i.operation == operation) return i.implemented;
    return false;
}

class Builder {
  public:
    explicit Builder(const Features& f) : f_(f) {}

    void add(std::string operation, std::string mechanism, Effect effect, bool available,
             std::string note) {
        Guarantee g;
        g.implemented = is_implemented(operation);
        g.operation = std::move(operation);
        g.mechanism = std::move(mechanism);
        g.effect = effect;
        g.preventive = effect == Effect::kPrevents;
        g.available = available;
        g.note = std::move(note);
        rows_.push_back(std::move(g));
    }

    // A file operation that the kernel performs inside one syscall: an LSM
    // hook or an fmod_ret program on its security_* function refuses it;
    // without either, a kill at syscall entry only lands when the syscall
    // returns, after the damage.
    void add_file_op(std::string operation, const std::string& hooks, const std::string& syscalls) {
        if (refusing()) {
            add(std::move(operation), hook_mechanism(hooks) + " returns -EPERM", Effect::kPrevents,
                true,
                "The kernel refuses the operation before it touches the file, whatever the "
                "caller (libc, raw syscall, static binary, io_uring); the daemon uses this layer "
                "on this kernel.");
        } else {
            add(std::move(operation), "syscall tracepoint " + syscalls + " + SIGKILL",
                Effect::kStopsAfter, signal_at_syscall(),
                "Not preventive: the agent is killed at syscall entry but the signal lands on "
                "return, so at most the one call in flight completes." +
                    lsm_missing());
        }
    }

    // The hooks as the layer in use names them: "LSM path_unlink" or
    // "fmod_ret on security_path_unlink".
    std::string hook_mechanism(const std::string& hooks) const {
        return (lsm() ? "LSM " : "fmod_ret on security_") + hooks;
    }

    // BPF LSM programs run here: "bpf" is in the active list and a program
    // attached to path_unlink ran (doctor's probe; the daemon makes its own).
    bool lsm() const { return has(FeatureId::kLsm); }
    // Without it, an fmod_ret program on security_path_unlink refused an
    // unlink (doctor's probe): the daemon's fentry layer refuses as the LSM
    // layer would.
    bool fentry() const { return !lsm() && has(FeatureId::kFentry); }
    // One of the two layers that refuse a call in the kernel.
    bool refusing() const { return lsm() || fentry(); }
    std::string lsm_missing() const {
        return " An LSM or fmod_ret program would refuse the call outright; this kernel runs "
               "neither (" +
               f_[FeatureId::kLsm].detail + "; fentry: " + f_[FeatureId::kFentry].detail + ").";
    }

    bool has(FeatureId id) const { return f_.has(id); }
    const std::string& detail(FeatureId id) const { return f_[id].detail; }
    bool signal_at_syscall() const {
        return (has(FeatureId::kTracepoint) || has(FeatureId::kRawTracepoint)) &&
               has(FeatureId::kBpfSendSignal);
    }

    std::vector<Guarantee> take() { return std::move(rows_); }

  private:
    const Features& f_;
    std::vector<Guarantee> rows_;
};

}  // namespace

std::string_view effect_name(Effect e) {
    switch (e) {
        case Effect::kPrevents:
            return "prevents";
        case Effect::kStopsAfter:
            return "stops-after";
        case Effect::kContains:
            return "contains";
        case Effect::kCovers:
            return "covers";
    }
    return "unknown";
}

std::vector<Guarantee> guarantees_for(const Features& f) {
    Builder b(f);

    // A signal raised at the exit of execve is delivered before the new image's
    // first instruction.
    b.add("exec-destructive-command",
          "raw tracepoint sched_process_exec: SIGSTOP, argv rules in the daemon, then SIGKILL",
          Effect::kPrevents, b.signal_at_syscall(),
          "The destructive program (dropdb, rm -rf on a data directory) never runs a single "
          "instruction.");

    // Where a hook layer refuses the call itself these uprobes are not
    // attached: every process that opens a file would trap for nothing.
    b.add("unlink-via-libc",
          "uprobe on libc unlink/unlinkat/rmdir/rename/truncate/open/link + SIGKILL",
          Effect::kPrevents,
          !b.refusing() && b.has(FeatureId::kUprobe) && b.has(FeatureId::kBpfSendSignal),
          b.refusing() ? "Not needed: the hook layer refuses the call itself (unlink-raw-syscall)."
                       : "The caller dies before the syscall, but only callers that go through "
                         "the shared libc: static binaries and raw syscalls bypass it.");

    b.add(
        "uprobes-in-guarded-only",
        "uprobe_multi links with a pid, one per guarded process; a new child held at its "
        "return from fork until its own are attached",
        Effect::kCovers, !b.refusing() && b.has(FeatureId::kUprobeMulti),
        b.refusing()
            ? "Not needed: the hook layer refuses the calls, no libc uprobe is attached for files."
        : b.has(FeatureId::kUprobeMulti)
            ? "The libc uprobes are in guarded processes alone: an unguarded process, the "
              "database server included, never traps. Each new child of a guarded process "
              "waits for its links (under a millisecond here, more on a busy host), and with "
              "the daemon killed it waits for the next one (a clean stop leaves them for "
              "every process)."
            : "This kernel has no uprobe_multi links for one process (" +
                  std::string(b.detail(FeatureId::kUprobeMulti)) +
                  "): the libc uprobes are in every process that maps libc, and each call of "
                  "unlink, open, kill... traps, guarded or not (see docs/performance.md).");

    b.add("run-session-seccomp",
          "seccomp filter in each `killswitch run` session (SECCOMP_RET_USER_NOTIF): the daemon "
          "answers the destructive calls before they run",
          Effect::kPrevents, !b.refusing() && b.has(FeatureId::kSeccompNotify),
          b.refusing() ? "Not needed: the hook layer refuses the calls itself."
          : b.has(FeatureId::kSeccompNotify)
              ? "Opt-in (killswitch daemon --seccomp-sessions). The file operations, signals and "
                "traces aimed at other processes, bpf(), module and kexec calls of a run "
                "session are refused with EPERM before they run, raw calls and static binaries "
                "included, and a held call waits in the kernel. While every session is a run "
                "session and protect.min_free is off, no syscall tracepoint is attached: other "
                "processes pay nothing. While the daemon is down (restart, upgrade) those calls "
                "wait, and `killswitch run` hands the session to the next daemon (after 60 s "
                "with none they fail with ENOSYS). Limits: a thread that rewrites a path "
                "between the daemon's look and the call gets past it (the tracepoints, where "
                "attached, still stop it after); agents found at exec and guard_uids or "
                "guard_cgroups sessions are covered by the other layers."
              : "NOT available: " + std::string(b.detail(FeatureId::kSeccompNotify)) + ".");

    b.add_file_op("unlink-raw-syscall", "path_unlink/path_rmdir",
                  "sys_enter_unlink/unlinkat/rmdir");
    b.add_file_op("rename", "path_rename", "sys_enter_rename/renameat/renameat2");
    b.add_file_op("truncate", "path_truncate", "sys_enter_truncate/ftruncate");
    b.add_file_op("open-truncate-or-write", "file_open",
                  "sys_enter_open/openat/openat2 (O_TRUNC or write access)");

    // Mode, owner, ACLs, extended attributes and inode flags of protected
    // data: the database cannot read what it no longer owns.
    if (b.refusing()) {
        b.add("metadata",
              b.hook_mechanism("path_chmod/path_chown/inode_setxattr/inode_removexattr/"
                               "inode_set_acl/inode_remove_acl/file_ioctl") +
                  " returns -EPERM",
              Effect::kPrevents, true,
              "chmod, chown, ACL and extended-attribute changes and chattr flags on protected "
              "data are refused before they change anything, whatever the caller; a chmod or "
              "chown to what the object already has goes through. The ACL hooks are Linux "
              "6.2+; before, an ACL is an extended attribute and meets inode_setxattr.");
    } else {
        b.add("metadata",
              "uprobes on libc chmod/fchmod/fchmodat/chown/lchown/fchown/fchownat/setxattr/"
              "lsetxattr/fsetxattr/removexattr/lremovexattr/fremovexattr (SIGSTOP: the daemon "
              "looks at the object), syscall tracepoints "
              "sys_enter_chmod*/chown*/*setxattr*/*removexattr*/ioctl + SIGKILL",
              Effect::kStopsAfter, b.signal_at_syscall(),
              "Through libc (chmod, chown, setfacl, setfattr, Python's os.chmod) the call never "
              "happens; a chmod or chown to what the object already has goes on (the daemon "
              "looks while the caller is stopped, and its system call passes the tracepoint "
              "with a one-call ticket). A raw system call, and chattr's ioctl (which libc does "
              "not wrap), is stopped after it: the one change in flight stays, and there even "
              "a change that changes nothing stops the caller." +
                  b.lsm_missing());
    }

    // protect.block_devices: writing under a file system destroys it. The
    // open is not the damage: the writes, discards and zeroing that follow
    // it are, and the descriptor they need dies with its process.
    if (b.refusing()) {
        b.add("block-device-write", b.hook_mechanism("file_open") + " returns -EPERM",
              Effect::kPrevents, true,
              "A guarded process cannot open a block device for writing (dd of=, mkfs, "
              "blkdiscard, a shell's '>'), whatever the caller; the exec layer refuses dd, "
              "shred and mkswap of a device, mkfs, wipefs and blkdiscard before they run.");
    } else {
        b.add("block-device-write",
              "syscall tracepoints sys_exit_open/openat/openat2/creat + SIGKILL as the open "
              "returns",
              Effect::kPrevents, b.signal_at_syscall(),
              "The open completes but its process dies as it returns, before it can write, "
              "discard or zero through the descriptor (another thread sharing the descriptor "
              "table could use it in that instant); the exec layer refuses dd, shred and mkswap "
              "of a device, mkfs, wipefs and blkdiscard before they run." +
                  b.lsm_missing());
    }

    // protect.min_free: counted at the write system calls' tracepoints, or,
    // where a hook layer refuses (and those tracepoints are not attached:
    // each puts every thread on the syscall slow path), at file_permission,
    // which every write asks before it writes.
    if (b.refusing()) {
        b.add("space-budget",
              b.hook_mechanism("file_permission") +
                  " counts the bytes guarded processes write on a file system holding "
                  "protected data (the size read from the system call's registers) and returns "
                  "-EPERM for the call that would pass the budget",
              Effect::kPrevents, true,
              "A write, writev, pwrite, fallocate, copy_file_range, sendfile or splice that "
              "would bring such a file system under protect.min_free is refused before it "
              "writes anything, whatever the caller (static programs, O_DIRECT and raw "
              "fallocate included); the process goes on and is told EPERM. Not counted: "
              "stores through a shared mapping, AIO; writers that are not guarded (the "
              "database itself) are seen at the next look at the free space, each second. "
              "With protect.min_free on, every read and write on the host passes the "
              "program (reads leave at its first test); off at start, it is not loaded.");
    } else {
        b.add("space-budget",
              "syscall tracepoints sys_enter_write/pwrite64/writev/pwritev/pwritev2/fallocate/"
              "copy_file_range/sendfile64/splice count the bytes guarded processes write on a "
              "file system holding protected data, SIGKILL at the entry of the call that would "
              "pass the budget; uprobes on libc fallocate/posix_fallocate",
              Effect::kPrevents, b.signal_at_syscall(),
              "A guarded process is killed at the entry of the write that would bring such a "
              "file system under protect.min_free; buffered writes test for the kill before "
              "their first chunk, so nothing of that call is written (measured on ext4 and "
              "tmpfs), and libc's fallocate never makes the call. A direct (O_DIRECT) write "
              "and a raw fallocate system call run to their end first: that one call can go "
              "under the floor. Not counted: stores through a shared mapping, AIO; writers "
              "that are not guarded (the database itself) are seen at the next look at the "
              "free space, each second.");
    }

    // protect.system: kernel settings and the schedulers' directories. A
    // setting opened at a syscall tracepoint is opened, but its process dies
    // before it writes; a link made there stays.
    if (b.refusing()) {
        b.add("system-settings",
              b.hook_mechanism("file_open/path_mknod/path_link/path_symlink") +
                  " returns -EPERM under protect.system",
              Effect::kPrevents, true,
              "A guarded process cannot write a kernel setting (/proc/sys, SysRq, /sys), nor "
              "write, link or symlink a cron, at or systemd entry into place, whatever the "
              "caller (libc, raw syscall, static binary).");
    } else {
        b.add("system-settings",
              "uprobes on libc open/openat/link/linkat/symlink/symlinkat, syscall tracepoints "
              "sys_enter_open*/link*/symlink* + SIGKILL, under protect.system",
              Effect::kStopsAfter, b.signal_at_syscall(),
              "Through libc (sysctl, a shell's '>', ln, crontab) the call never happens. A raw "
              "system call is stopped after it: a setting's open completes but its process "
              "dies before it writes anything; a link or file made in a scheduler's directory "
              "remains (cron or systemd may run it)." +
                  b.lsm_missing());
    }

    // io_uring operations do not pass through syscall tracepoints at all.
    if (!f.has(FeatureId::kIoUring)) {
        b.add("io_uring-ops", "io_uring disabled on this host", Effect::kPrevents, true,
              "io_uring_setup fails here (" + f[FeatureId::kIoUring].detail +
                  "), so no process can submit io_uring operations.");
    } else if (b.refusing()) {
        b.add("io_uring-ops",
              std::string(b.lsm() ? "LSM file hooks" : "fmod_ret on the security_* file hooks") +
                  ", which io_uring operations also pass",
              Effect::kPrevents, true,
              "io_uring unlink, rename and open reach the same hooks as the syscalls.");
    } else {
        b.add("io_uring-ops",
              "refuse io_uring to guarded processes: SIGKILL at io_uring_setup/enter/register",
              Effect::kPrevents, b.signal_at_syscall(),
              "Preventive by policy: a guarded process dies before it submits anything; a "
              "kernel-polled (SQPOLL) ring set up by an unguarded process and passed in is not "
              "covered.");
    }

    b.add("db-statement-tcp",
          "cgroup/connect4+6 send a guarded process's connections to watched endpoints to the "
          "daemon's relay, which judges each request whole with the full parsers; while the "
          "daemon is down, sockops and sk_msg judge each request with a bounded tokenizer",
          Effect::kPrevents, b.has(FeatureId::kSkMsg) && b.has(FeatureId::kSockops),
          "Preventive for every client over TCP (PostgreSQL, MySQL/MariaDB, Redis, MongoDB wire "
          "protocols, whatever library or none): a refused request never reaches the server; "
          "through the relay the client reads the protocol's own error and its connection goes "
          "on (databases.action hold: it waits for a person); without it sendmsg fails with "
          "EACCES and the connection is closed, and requests longer than 4096 bytes are "
          "refused. TLS and compression are declined or refused by default.");

    if (b.has(FeatureId::kConnectUnix))
        b.add("db-statement-unix-socket",
              "cgroup/connect_unix sends a guarded process's connections to watched unix sockets "
              "to the daemon's relay (bpf_sock_addr_set_sun_path), which connects with the "
              "client's identity and judges each request whole",
              Effect::kPrevents, true,
              "Preventive for every client over unix sockets, as over TCP. While the daemon is "
              "down the connection itself is refused.");
    else
        b.add("db-statement-unix-socket",
              "uprobes on libpq PQsendQuery/PQsendQueryParams/PQsendPrepare read its statements: "
              "SIGSTOP, PostgreSQL grammar in the daemon, then the client exits (status 126)",
              Effect::kPrevents, b.has(FeatureId::kUprobe) && b.has(FeatureId::kBpfSendSignal),
              "Preventive for libpq clients (psql, psycopg2...) over unix sockets and TLS alike, "
              "but the client ends instead of reading an error. Other clients on watched unix "
              "sockets are NOT covered: this kernel has no cgroup/connect_unix (Linux 6.7+).");

    b.add("db-effect",
          "the relay asks the server, on the client's own connection, what a DELETE or UPDATE "
          "would reach before it is sent (PostgreSQL: EXPLAIN in a block it rolls back, ANALYZE "
          "first where the table has no statistics; MySQL/MariaDB: the rows counted, read only)",
          Effect::kPrevents, b.has(FeatureId::kSkMsg) && b.has(FeatureId::kSockops),
          "A DELETE or UPDATE whose WHERE reaches every row in a spelling the text cannot show "
          "(id > 0, col IS NOT NULL) is refused by the rows the server says it reaches "
          "(databases.effect: 90% of the table and 2 rows, or 100000 rows, by default); the "
          "client waits one or two round trips to the server (none for a WHERE that holds a "
          "unique key equal to constants, once the connection knows the key). PostgreSQL: each "
          "Bind of a prepared DELETE or UPDATE is judged with its own values (text, or binary "
          "of the common types); one whose values cannot be read, or that comes after a "
          "statement bound or run before the same Sync (a pipeline), is refused unless a known "
          "key pins it; so is a MySQL execute whose values cannot be read (long data). MySQL "
          "DELETEs and UPDATEs of several tables are counted table by table "
          "against the rows of their join. A function, procedure, rule, trigger or event whose "
          "body DELETEs or UPDATEs is judged when created: by what that statement would reach "
          "now, or, when its WHERE reads a call's values, refused unless a unique key pins it "
          "to a row a call (in a loop, only constants pin it; calls are not counted); a DO "
          "block likewise, as it runs. Judged by their text alone (a WHERE that is always "
          "true as written): connections the relay does not carry (libpq over a unix socket "
          "before Linux 6.7, anything while the daemon is down).");

    b.add("session-freeze", "cgroup.freeze on the agent's session cgroup", Effect::kContains,
          f.has(FeatureId::kCgroupFreeze),
          "Contains: every process of the session stops at once, but what already ran stays "
          "done.");

    b.add("self-signal-via-libc",
          "uprobes on libc kill/tgkill/sigqueue/pidfd_open/ptrace/process_vm_writev/reboot/"
          "init_module/delete_module + SIGKILL",
          Effect::kPrevents,
          !b.refusing() && b.has(FeatureId::kUprobe) && b.has(FeatureId::kBpfSendSignal),
          b.refusing() ? "Not needed: the hook layer refuses the call itself "
                         "(self-signal-raw-syscall)."
                       : "A guarded process that signals or ptraces the daemon (bash kill, "
                         "/bin/kill, strace, os.kill), loads a module or reboots dies before the "
                         "call.");

    b.add("reach-via-libc",
          "uprobes on libc kill/tgkill/sigqueue/pidfd_open/ptrace/process_vm_writev + SIGSTOP, "
          "the daemon judges the target",
          Effect::kPrevents,
          !b.refusing() && b.has(FeatureId::kUprobe) && b.has(FeatureId::kBpfSendSignal),
          b.refusing() ? "Not needed: the hook layer refuses the call itself (reach-raw-syscall)."
                       : "A guarded process that signals, ptraces or writes into a process outside "
                         "its session (the database server: kill -9, kill -STOP, pg_ctl stop, "
                         "strace -p, gdb -p) through libc is stopped before the call and exits "
                         "(126) when the target is outside; a process of its own session goes on. "
                         "A caller inside a pid namespace is judged only by the LSM and fentry "
                         "(fmod_ret) layers.");

    b.add("deputy-connect", "cgroup/connect_unix refuses connect() to a deputy's socket",
          Effect::kPrevents, b.has(FeatureId::kConnectUnix),
          b.has(FeatureId::kConnectUnix)
              ? "A guarded process cannot ask a service that acts for whoever asks (systemd, "
                "D-Bus, Docker, containerd, Podman: policy processes.deputies) to run something "
                "for it: systemctl, systemd-run, busctl, docker run are refused at connect. The "
                "socket is matched by the path given to connect() (a path relative to another "
                "directory is not recognised). Refused too: the servers of tmux (and of screen "
                "where it listens on a unix socket; not tested here) running outside every "
                "session (processes.multiplexers), found from their processes within 5 s. "
                "Listed below: the deputy sockets of this host."
              : "NOT covered: this kernel has no cgroup/connect_unix (Linux 6.7+); a guarded "
                "process can ask systemd, D-Bus or a container runtime to act for it.");

    if (b.refusing()) {
        b.add("reach-raw-syscall",
              b.hook_mechanism("task_kill, ptrace_access_check") + " return -EPERM",
              Effect::kPrevents, true,
              "Every signal (raw kill, process groups, pidfd_send_signal), ptrace attach, "
              "process_vm_readv/writev and /proc/<pid>/mem write aimed at a process outside "
              "the caller's session is refused; the caller is told and goes on.");
        b.add("mount-over-data",
              b.hook_mechanism("sb_mount/move_mount/sb_umount, capable (mount_setattr, fspick)") +
                  " returns -EPERM",
              Effect::kPrevents, true,
              "A guarded process cannot mount over, move or unmount protected data, or a "
              "directory above it (in the daemon's mount namespace; one of the process's own "
              "hides nothing from the database server), with mount(2) or the new mount API "
              "(open_tree copies and move_mount meet the move_mount hook; mount --move, whose "
              "source the hook sees only as text, is refused in the daemon's namespace as "
              "unresolved; mount_setattr, which has no hook, is refused there where it asks for "
              "CAP_SYS_ADMIN). A remount of the file system that holds the data (mount -o "
              "remount, fspick then fsconfig) changes it for every namespace: refused from the "
              "caller's own namespace too, and every fspick (whose path is not resolved when it "
              "asks for CAP_SYS_ADMIN) is refused as unresolved.");
        b.add("self-signal-raw-syscall",
              b.hook_mechanism("task_kill, ptrace_access_check, kernel_read_file/kernel_load_data, "
                               "capable") +
                  " return -EPERM + SIGKILL",
              Effect::kPrevents, true,
              "Every signal to the daemon (kill, tkill, tgkill, sigqueue, pidfd_send_signal), "
              "ptrace, process_vm_writev and /proc/<pid>/mem of it, and module or kexec loads "
              "by a guarded process are refused and the caller killed; reboot and "
              "delete_module, which have no hook of their own, where they ask for "
              "CAP_SYS_BOOT or CAP_SYS_MODULE (capable).");
        b.add("self-bpf-detach", b.hook_mechanism("bpf") + " returns -EPERM + SIGKILL",
              Effect::kPrevents, true,
              "Every bpf() command of a guarded process is refused: it cannot detach, replace "
              "or read killswitch's programs and maps.");
    } else {
        b.add("reach-raw-syscall",
              "syscall tracepoints sys_enter_kill/tgkill/ptrace/process_vm_writev + SIGKILL",
              Effect::kStopsAfter, b.signal_at_syscall(),
              "Partial: a raw system call (a static binary, Go's syscall.Kill) is seen only when "
              "it aims at another session's process, and the caller dies after it; one aimed "
              "at an unguarded process (the database server) is NOT stopped, and neither is a "
              "write to /proc/<pid>/mem: that needs the LSM or fentry (fmod_ret) layer." +
                  b.lsm_missing());
        b.add(
            "mount-over-data",
            "uprobes on libc mount/umount/umount2/open_tree/move_mount/mount_setattr/fspick, "
            "syscall tracepoints sys_enter_mount/umount/open_tree/move_mount/mount_setattr/fspick "
            "+ SIGKILL",
            Effect::kStopsAfter, b.signal_at_syscall(),
            "Through libc (the mount and umount commands, glibc's open_tree, move_mount and "
            "mount_setattr) the call never happens. A raw system call is not preventive: the "
            "mount, move or read-only change completes and the agent dies as it returns (the "
            "data underneath is untouched, but hidden or read-only until it is undone); a "
            "copy made by a raw open_tree goes with the dying process, and a raw fspick dies "
            "before the fsconfig that would remount. A remount of the data's file system is "
            "judged from the caller's own mount namespace too (it changes the file system for "
            "all of them)." +
                b.lsm_missing());
        b.add("self-signal-raw-syscall",
              "syscall tracepoints sys_enter_kill/tkill/tgkill/rt_sigqueueinfo/pidfd_open/ptrace/"
              "process_vm_writev/reboot (+ module and kexec calls where the kernel has them) + "
              "SIGKILL",
              Effect::kStopsAfter, b.signal_at_syscall(),
              "Not preventive: the raw call runs and the caller dies as it returns. A daemon "
              "killed this way leaves the kernel enforcing (fail-closed) and is adopted by the "
              "next one." +
                  b.lsm_missing());
        b.add("self-bpf-detach", "syscall tracepoint sys_enter_bpf + SIGKILL", Effect::kStopsAfter,
              b.signal_at_syscall(),
              "The first bpf() call of a guarded process completes and it dies as it returns. A "
              "detach or replace needs an object descriptor that only an earlier bpf() call "
              "gives, so in practice no guarded process gets that far.");
    }

    b.add("fail-closed", "programs and state pinned in bpffs", Effect::kCovers,
          f.has(FeatureId::kBpffs),
          "Not a block itself: the other rows go on when the daemon stops or is killed; tasks "
          "held for a decision stay stopped until a daemon or a person decides.");

    b.add("guard-inheritance", "raw tracepoint sched_process_fork", Effect::kCovers,
          f.has(FeatureId::kRawTracepoint),
          "Not a block itself: a child is marked guarded before it first runs, so forking "
          "does not escape the other rows.");

    return b.take();
}

nlohmann::json to_json(const std::vector<Guarantee>& rows) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& g : rows) {
        out.push_back({{"operation", g.operation},
                       {"mechanism", g.mechanism},
                       {"preventive", g.preventive},
                       {"available", g.available},
                       {"implemented", g.implemented},
                       {"note", g.note},
                       {"effect", effect_name(g.effect)}});
    }
    return out;
}

}  // namespace ks
