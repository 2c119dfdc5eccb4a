#include "doctor/features.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <sstream>
#include <thread>
#include <utility>

#include "common/bpf_util.h"
#include "common/fd.h"
#include "common/log.h"
#include "common/result.h"
#include "common/sysfs.h"
#include "common/uprobe_scope.h"
#include "probe.skel.h"
#include "seccomp_guard/filter.h"

// The uprobe probe attaches here. It must be a real call the compiler cannot
// inline or drop, at an address we can turn into a file offset.
extern "C" __attribute__((noinline, used)) void ks_doctor_uprobe_target() {
    asm volatile("" ::: "memory");
}

namespace ks {
namespace {

constexpr std::array<std::string_view, kFeatureCount> kNames = {
    "btf",
    "tracefs",
    "bpffs",
    "cgroup_v2",
    "cgroup_freeze",
    "cgroup_kill",
    "tracepoint",
    "raw_tracepoint",
    "uprobe",
    "sk_msg",
    "cgroup_skb",
    "sockops",
    "lsm",
    "fentry",
    "ring_buffer",
    "bpf_send_signal",
    "bpf_loop",
    "io_uring",
    "connect_unix",
    "uprobe_multi",
    "seccomp_notify",
};

constexpr const char* kTracefsPath = "/sys/kernel/tracing";
constexpr const char* kBpffsPath = "/sys/fs/bpf";
constexpr const char* kScratchPrefix = "killswitch-doctor-";
constexpr auto kSettleTimeout = std::chrono::milliseconds(1000);

struct ProbeDeleter {
    void operator()(probe* p) const { probe__destroy(p); }
};
using ProbeSkel = std::unique_ptr<probe, ProbeDeleter>;

struct LinkDeleter {
    void operator()(bpf_link* l) const { bpf_link__destroy(l); }
};
using Link = std::unique_ptr<bpf_link, LinkDeleter>;

// "EPERM" reads better in a one-line detail than "Operation not permitted".
std::string errno_name(int code) {
    if (code < 0) code = -code;
    if (const char* n = strerrorname_np(code)) return n;
    return "errno " + std::to_string(code);
}

std::string why(const Error& e) {
    return e.code == 0 ? e.message : e.message + ": " + errno_name(e.code);
}

using ProgPicker = bpf_program* (*)(probe*);

// One skeleton per probe with only the program under test autoloaded, so a
// program kind this kernel rejects cannot make the others fail to load. The
// maps are still created; they are small.
Result<ProbeSkel> open_and_load(ProgPicker pick) {
    ProbeSkel skel(probe__open());
    if (!skel) return sys_error("open");
    bpf_program* keep = pick(skel.get());
    bpf_program* prog = nullptr;
    bpf_object__for_each_program(prog, skel->obj) bpf_program__set_autoload(prog, prog == keep);
    skel->rodata->target_tgid = static_cast<__u32>(::getpid());
    if (int err = probe__load(skel.get()); err != 0) return Error{-err, "load"};
    return skel;
}

// Only one program is loaded per skeleton, so any nonzero counter is its own.
uint64_t hit_count(const probe* skel) {
    uint64_t total = 0;
    for (const auto& h : skel->bss->hits) total += __atomic_load_n(&h, __ATOMIC_RELAXED);
    return total;
}

template <typename Pred>
bool wait_until(Pred pred) {
    auto deadline = std::chrono::steady_clock::now() + kSettleTimeout;
    while (!pred()) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

// A scratch cgroup under the cgroup2 mount, removed in every path.
class ScratchCgroup {
  public:
    static Result<ScratchCgroup> create(const std::string& root) {
        remove_stale(root);
        std::string path = root + "/" + kScratchPrefix + std::to_string(::getpid());
        if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) return sys_error("mkdir " + path);
        ScratchCgroup cg(path);
        cg.dir_.reset(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!cg.dir_.valid()) return sys_error("open " + path);
        return cg;
    }

    ScratchCgroup(ScratchCgroup&& o) noexcept
        : path_(std::exchange(o.path_, {})), dir_(std::move(o.dir_)) {}
    ScratchCgroup& operator=(ScratchCgroup&&) = delete;
    ~ScratchCgroup() {
        dir_.reset();
        if (!path_.empty()) remove_dir(path_);
    }

    [[nodiscard]] const std::string& path() const { return path_; }
    [[nodiscard]] int fd() const { return dir_.get(); }

  private:
    explicit ScratchCgroup(std::string path) : path_(std::move(path)) {}

    // A reaped task can keep its cgroup busy for a moment after waitpid.
    static void remove_dir(const std::string& path) {
        wait_until([&] { return ::rmdir(path.c_str()) == 0 || errno != EBUSY; });
    }

    // A doctor killed mid-probe leaves its cgroup behind; the next run cleans it.
    static void remove_stale(const std::string& root) {
        std::error_code ec;
        for (const auto& entry : std::filesystem::directory_iterator(root, ec)) {
            std::string name = entry.path().filename();
            if (name.rfind(kScratchPrefix, 0) != 0) continue;
            char* end = nullptr;
            long pid = std::strtol(name.c_str() + std::strlen(kScratchPrefix), &end, 10);
            if (pid <= 0 || *end != '\0') continue;
            if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)
                ::rmdir(entry.path().c_str());
        }
    }

    std::string path_;
    Fd dir_;
};

// A child that only sleeps, killed and reaped in every path.
class SleepingChild {
  public:
    static Result<SleepingChild> spawn() {
        pid_t pid = ::fork();
        if (pid < 0) return sys_error("fork");
        if (pid == 0) {
            for (;;) ::pause();
        }
        return SleepingChild(pid);
    }
    SleepingChild(SleepingChild&& o) noexcept : pid_(std::exchange(o.pid_, -1)) {}
    SleepingChild& operator=(SleepingChild&&) = delete;
    ~SleepingChild() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }

    [[nodiscard]] pid_t pid() const { return pid_; }

    // True when the child died of SIGKILL within the timeout; it is reaped then.
    bool reaped_by_sigkill() {
        int status = 0;
        bool done = wait_until([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; });
        if (!done) return false;
        pid_ = -1;
        return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    }

  private:
    explicit SleepingChild(pid_t pid) : pid_(pid) {}
    pid_t pid_;
};

bool file_exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

Result<std::string> make_temp_file() {
    char path[] = "/tmp/killswitch-doctor-XXXXXX";
    Fd fd(::mkstemp(path));
    if (!fd.valid()) return sys_error("mkstemp");
    return std::string(path);
}

class Prober {
  public:
    Features run() {
        probe_filesystems();
        probe_cgroups();
        probe_tracepoint();
        probe_raw_tracepoint();
        probe_uprobe();
        probe_sk_msg();
        probe_lsm();
        probe_fentry();
        probe_helpers();
        probe_io_uring();
        probe_connect_unix();
        probe_uprobe_multi();
        probe_seccomp_notify();
        return std::move(f_);
    }

  private:
    void probe_filesystems() {
        bool btf = file_exists("/sys/kernel/btf/vmlinux");
        f_.set(
            FeatureId::kBtf, btf,
            btf ? "/sys/kernel/btf/vmlinux" : "no /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF)");
        set_mounted(FeatureId::kTracefs, "tracefs", kTracefsPath, true);
        set_mounted(FeatureId::kBpffs, "bpf", kBpffsPath, false);
    }

    // The daemon needs these filesystems anyway, so a missing one is mounted
    // rather than only reported.
    void set_mounted(FeatureId id, const std::string& fstype, const std::string& target,
                     bool any_target) {
        bool was_mounted = false;
        for (const auto& m : read_mounts())
            if (m.fstype == fstype && (any_target || m.target == target)) was_mounted = true;
        auto r = ensure_mounted(fstype, target, any_target);
        if (!r) {
            f_.set(id, false, why(r.error()));
            return;
        }
        f_.set(id, true, (was_mounted ? "mounted at " : "mounted it at ") + *r);
    }

    void probe_cgroups() {
        auto root = cgroup2_mount();
        if (!root) {
            f_.set(FeatureId::kCgroupV2, false, root.error().message);
            no_cgroup("no cgroup v2");
            return;
        }
        f_.set(FeatureId::kCgroupV2, true, "mounted at " + *root);
        auto cg = ScratchCgroup::create(*root);
        if (!cg) {
            no_cgroup("scratch cgroup: " + why(cg.error()));
            return;
        }
        probe_freeze_and_kill(*cg);
        probe_cgroup_prog(*cg, FeatureId::kCgroupSkb,
                          [](probe* s) { return s->progs.probe_cgroup_skb; });
        probe_cgroup_prog(*cg, FeatureId::kSockops,
                          [](probe* s) { return s->progs.probe_sockops; });
    }

    void no_cgroup(const std::string& detail) {
        for (auto id : {FeatureId::kCgroupFreeze, FeatureId::kCgroupKill, FeatureId::kCgroupSkb,
                        FeatureId::kSockops})
            f_.set(id, false, detail);
    }

    // Freezes and kills a real sleeping process, since that is what a session
    // freeze or kill has to do.
    void probe_freeze_and_kill(const ScratchCgroup& cg) {
        const std::string freeze = cg.path() + "/cgroup.freeze";
        const std::string kill = cg.path() + "/cgroup.kill";
        const std::string events = cg.path() + "/cgroup.events";
        bool has_freeze = file_exists(freeze);
        bool has_kill = file_exists(kill);
        if (!has_freeze) f_.set(FeatureId::kCgroupFreeze, false, "no cgroup.freeze (kernel < 5.2)");
        if (!has_kill) f_.set(FeatureId::kCgroupKill, false, "no cgroup.kill (kernel < 5.14)");
        if (!has_freeze && !has_kill) return;

        auto child = SleepingChild::spawn();
        if (!child) {
            if (has_freeze) f_.set(FeatureId::kCgroupFreeze, false, why(child.error()));
            if (has_kill) f_.set(FeatureId::kCgroupKill, false, why(child.error()));
            return;
        }
        if (auto st = write_file(cg.path() + "/cgroup.procs", std::to_string(child->pid())); !st) {
            std::string d = "move a process into the scratch cgroup: " + why(st.error());
            if (has_freeze) f_.set(FeatureId::kCgroupFreeze, false, d);
            if (has_kill) f_.set(FeatureId::kCgroupKill, false, d);
            return;
        }

        if (has_freeze) {
            if (auto st = write_file(freeze, "1"); !st) {
                f_.set(FeatureId::kCgroupFreeze, false, why(st.error()));
            } else {
                bool frozen = wait_until([&] {
                    auto text = read_file(events);
                    return text && text->find("frozen 1") != std::string::npos;
                });
                f_.set(FeatureId::kCgroupFreeze, frozen,
                       frozen ? "froze a process (cgroup.events: frozen 1)"
                              : "wrote cgroup.freeze but cgroup.events never said frozen 1");
            }
        }
        if (has_kill) {
            // cgroup.kill must work on a frozen cgroup: that is how a frozen
            // session is ended.
            if (auto st = write_file(kill, "1"); !st) {
                f_.set(FeatureId::kCgroupKill, false, why(st.error()));
            } else {
                bool killed = child->reaped_by_sigkill();
                f_.set(FeatureId::kCgroupKill, killed,
                       killed ? "killed a process (SIGKILL)"
                              : "wrote cgroup.kill but the process did not die");
            }
        }
    }

    void probe_cgroup_prog(const ScratchCgroup& cg, FeatureId id, ProgPicker pick) {
        QuietLibbpf quiet;
        auto skel = open_and_load(pick);
        if (!skel) return f_.set(id, false, why(skel.error()));
        Link link(bpf_program__attach_cgroup(pick(skel->get()), cg.fd()));
        if (!link) return f_.set(id, false, "attach: " + errno_name(errno));
        // Triggering needs a process inside the cgroup doing network I/O; the
        // attach is what varies between kernels, so it is what counts here.
        f_.set(id, true, "attached to a scratch cgroup");
    }

    // Attaches with the given function, runs trigger, and requires a hit.
    template <typename Attach, typename Trigger>
    void probe_prog(FeatureId id, ProgPicker pick, Attach attach, Trigger trigger,
                    const std::string& ran) {
        QuietLibbpf quiet;
        auto skel = open_and_load(pick);
        if (!skel) return f_.set(id, false, why(skel.error()));
        Link link(attach(pick(skel->get())));
        if (!link) return f_.set(id, false, "attach: " + errno_name(errno));
        if (auto st = trigger(); !st) return f_.set(id, false, "trigger: " + why(st.error()));
        if (hit_count(skel->get()) == 0) return f_.set(id, false, "attached but never ran");
        f_.set(id, true, ran);
    }

    void probe_tracepoint() {
        probe_prog(
            FeatureId::kTracepoint, [](probe* s) { return s->progs.probe_tracepoint; },
            [](bpf_program* p) { return bpf_program__attach(p); },
            []() -> Status {
                ::syscall(SYS_getppid);
                return {};
            },
            "ran on sys_enter_getppid");
    }

    void probe_raw_tracepoint() {
        probe_prog(
            FeatureId::kRawTracepoint, [](probe* s) { return s->progs.probe_raw_tracepoint; },
            [](bpf_program* p) { return bpf_program__attach(p); },
            []() -> Status {
                ::syscall(SYS_getppid);
                return {};
            },
            "ran on sys_enter");
    }

    void probe_uprobe() {
        auto offset = self_file_offset(reinterpret_cast<uintptr_t>(&ks_doctor_uprobe_target));
        if (!offset) return f_.set(FeatureId::kUprobe, false, why(offset.error()));
        probe_prog(
            FeatureId::kUprobe, [](probe* s) { return s->progs.probe_uprobe; },
            [&](bpf_program* p) {
                LIBBPF_OPTS(bpf_uprobe_opts, opts);
                return bpf_program__attach_uprobe_opts(p, 0, "/proc/self/exe", *offset, &opts);
            },
            []() -> Status {
                ks_doctor_uprobe_target();
                return {};
            },
            "ran on a function of this binary");
    }

    // The uprobe offset is a file offset; computing it from our own mapping
    // works on stripped binaries too, where a symbol lookup would not.
    static Result<size_t> self_file_offset(uintptr_t addr) {
        auto maps = read_file("/proc/self/maps");
        if (!maps) return maps.error();
        std::istringstream in(*maps);
        std::string line;
        while (std::getline(in, line)) {
            unsigned long start = 0, end = 0, pgoff = 0;
            char perms[8] = {};
            if (std::sscanf(line.c_str(), "%lx-%lx %7s %lx", &start, &end, perms, &pgoff) != 4)
                continue;
            if (addr >= start && addr < end) return static_cast<size_t>(addr - start + pgoff);
        }
        return make_error("own code not found in /proc/self/maps");
    }

    void probe_sk_msg() {
        QuietLibbpf quiet;
        auto skel = open_and_load([](probe* s) { return s->progs.probe_sk_msg; });
        if (!skel) return f_.set(FeatureId::kSkMsg, false, why(skel.error()));
        int prog_fd = bpf_program__fd((*skel)->progs.probe_sk_msg);
        int map_fd = bpf_map__fd((*skel)->maps.probe_socks);
        if (int err = bpf_prog_attach(prog_fd, map_fd, BPF_SK_MSG_VERDICT, 0); err != 0)
            return f_.set(FeatureId::kSkMsg, false, "attach: " + errno_name(err));

        // The verdict only runs for sockets in the map, so make one.
        Fd client;
        Fd server;
        if (auto st = tcp_pair(client, server); !st)
            return f_.set(FeatureId::kSkMsg, false, "loopback TCP: " + why(st.error()));
        __u64 key = 0;
        __u64 value = static_cast<__u64>(client.get());
        if (bpf_map_update_elem(map_fd, &key, &value, BPF_ANY) != 0)
            return f_.set(FeatureId::kSkMsg, false, "add socket to sockhash: " + errno_name(errno));
        if (::send(client.get(), "x", 1, MSG_NOSIGNAL) != 1)
            return f_.set(FeatureId::kSkMsg, false, "send: " + errno_name(errno));
        if (hit_count(skel->get()) == 0)
            return f_.set(FeatureId::kSkMsg, false, "attached but never ran");
        f_.set(FeatureId::kSkMsg, true, "verdict ran on a loopback TCP send");
    }

    static Status tcp_pair(Fd& client, Fd& server) {
        Fd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!listener.valid()) return sys_error("socket");
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof(addr);
        auto* sa = reinterpret_cast<sockaddr*>(&addr);
        if (::bind(listener.get(), sa, len) != 0) return sys_error("bind");
        if (::listen(listener.get(), 1) != 0) return sys_error("listen");
        if (::getsockname(listener.get(), sa, &len) != 0) return sys_error("getsockname");
        client.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!client.valid()) return sys_error("socket");
        if (::connect(client.get(), sa, len) != 0) return sys_error("connect");
        server.reset(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!server.valid()) return sys_error("accept");
        return {};
    }

    static Status unlink_temp_file() {
        auto path = make_temp_file();
        if (!path) return path.error();
        if (::unlink(path->c_str()) != 0) return sys_error("unlink " + *path);
        return {};
    }

    void probe_lsm() {
        probe_prog(
            FeatureId::kLsm, [](probe* s) { return s->progs.probe_lsm; },
            [](bpf_program* p) { return bpf_program__attach_lsm(p); }, unlink_temp_file,
            "ran on path_unlink");
        // An LSM program loads and attaches but never runs when "bpf" is not in
        // the active list, so the list is worth showing either way.
        const Feature& lsm = f_[FeatureId::kLsm];
        f_.set(FeatureId::kLsm, lsm.ok, lsm.detail + "; " + active_lsm_summary());
    }

    static std::string active_lsm_summary() {
        auto list = active_lsm_list();
        if (!list) return "active LSM list unknown (" + why(list.error()) + ")";
        return "active LSMs: " + *list +
               (list_has(*list, "bpf") ? " (bpf active)" : " (bpf not active)");
    }

    // fmod_ret, which the daemon's fentry layer uses: attached is not enough,
    // the kernel must take its verdict (the unlink refused, the file kept).
    void probe_fentry() {
        std::string path;
        probe_prog(
            FeatureId::kFentry, [](probe* s) { return s->progs.probe_fentry; },
            [](bpf_program* p) { return bpf_program__attach_trace(p); },
            [&]() -> Status {
                auto made = make_temp_file();
                if (!made) return made.error();
                path = *made;
                int r = ::unlink(path.c_str());
                int err = errno;
                if (r == 0) return make_error("ran, but the kernel ignored its verdict");
                if (err != EPERM) return make_error("unlink failed with " + errno_name(err));
                if (::access(path.c_str(), F_OK) != 0)
                    return make_error("the unlink was refused but the file is gone");
                return {};
            },
            "fmod_ret on security_path_unlink refused an unlink (EPERM), the file stayed");
        if (!path.empty()) ::unlink(path.c_str());  // the program lets its second try pass
    }

    void probe_helpers() {
        QuietLibbpf quiet;
        int rb = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nullptr);
        f_.set(FeatureId::kRingBuffer, rb == 1,
               rb == 1 ? "BPF_MAP_TYPE_RINGBUF created"
                       : (rb == 0 ? "no BPF_MAP_TYPE_RINGBUF (kernel < 5.8)"
                                  : "probe: " + errno_name(rb)));

        // Availability per program type: tracepoint and raw tracepoint programs
        // share the tracing helper set.
        auto helper = [](bpf_func_id fn) {
            return libbpf_probe_bpf_helper(BPF_PROG_TYPE_TRACEPOINT, fn, nullptr);
        };
        int sig = helper(BPF_FUNC_send_signal);
        if (!f_.has(FeatureId::kRawTracepoint))
            f_.set(FeatureId::kBpfSendSignal, false, "no raw tracepoint to call it from");
        else
            f_.set(FeatureId::kBpfSendSignal, sig == 1,
                   sig == 1 ? "helper present"
                            : (sig == 0 ? "helper missing" : "probe: " + errno_name(sig)));
        int loop = helper(BPF_FUNC_loop);
        f_.set(FeatureId::kBpfLoop, loop == 1,
               loop == 1
                   ? "helper present"
                   : (loop == 0 ? "helper missing (kernel < 5.17)" : "probe: " + errno_name(loop)));
    }

    void probe_io_uring() {
        std::string sysctl;
        if (auto v = read_file("/proc/sys/kernel/io_uring_disabled")) {
            std::string s = *v;
            while (!s.empty() && s.back() == '\n') s.pop_back();
            sysctl = "; kernel.io_uring_disabled=" + s;
        }
        io_uring_params params{};
        Fd ring(static_cast<int>(::syscall(__NR_io_uring_setup, 1, &params)));
        if (!ring.valid())
            return f_.set(FeatureId::kIoUring, false,
                          "io_uring_setup: " + errno_name(errno) + sysctl);
        f_.set(FeatureId::kIoUring, true, "io_uring_setup allowed (as root)" + sysctl);
    }

    // Read from the kernel's BTF, not loaded here: the daemon attaches the
    // program while a session exists, and the e2e tests run it on 6.18.
    void probe_connect_unix() {
        bool attach = kernel_enum_value("bpf_attach_type", "BPF_CGROUP_UNIX_CONNECT").has_value();
        bool kfunc = kernel_has_function("bpf_sock_addr_set_sun_path");
        f_.set(FeatureId::kConnectUnix, attach && kfunc,
               attach && kfunc ? "BPF_CGROUP_UNIX_CONNECT and bpf_sock_addr_set_sun_path in the "
                                 "kernel's BTF"
                               : "no cgroup/connect_unix in the kernel's BTF (Linux < 6.7)");
    }

    // A uprobe_multi link of our own, on our libc, for our own pid: what the
    // daemon does for each guarded process.
    void probe_uprobe_multi() {
        const auto& s = uprobe_multi_support(find_libc());
        f_.set(FeatureId::kUprobeMulti, s.attach_type.has_value(),
               s.attach_type ? "a uprobe_multi link on libc for one process attached" : s.reason);
    }

    // What `killswitch run` does under --seccomp-sessions, with a child of
    // our own: its unlinkat of a scratch file answered EPERM, the file kept.
    void probe_seccomp_notify() {
        std::string why = seccomp::trial("/tmp");
        f_.set(
            FeatureId::kSeccompNotify, why.empty(),
            why.empty() ? "a filtered unlinkat was refused by its supervisor, the file kept" : why);
    }

    Features f_;
};

}  // namespace

const Features& Features::probe() {
    static const Features features = probe_uncached();
    return features;
}

Features Features::probe_uncached() { return Prober().run(); }

bool Features::minimum_met() const {
    return has(FeatureId::kBtf) && has(FeatureId::kCgroupV2) && has(FeatureId::kRawTracepoint) &&
           has(FeatureId::kRingBuffer);
}

std::string_view Features::name(FeatureId id) { return kNames.at(static_cast<size_t>(id)); }

std::optional<FeatureId> Features::from_name(std::string_view name) {
    for (size_t i = 0; i < kFeatureCount; ++i)
        if (kNames[i] == name) return static_cast<FeatureId>(i);
    return std::nullopt;
}

nlohmann::json Features::to_json() const {
    nlohmann::json features = nlohmann::json::object();
    nlohmann::json details = nlohmann::json::object();
    for (size_t i = 0; i < kFeatureCount; ++i) {
        std::string key(kNames[i]);
        features[key] = features_[i].ok;
        details[key] = features_[i].detail;
    }
    return {{"features", features}, {"details", details}};
}

std::string kernel_release() {
    utsname u{};
    if (::uname(&u) != 0) return "unknown";
    return u.release;
}

}  // namespace ks
