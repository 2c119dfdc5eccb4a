#include "common/uprobe_scope.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <gelf.h>
#include <linux/bpf.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "common/bpf_util.h"
#include "common/fd.h"
#include "common/host_root.h"
#include "common/log.h"
#include "common/pins.h"

namespace ks {

namespace {

// union bpf_attr's link_create for a uprobe_multi link, as Linux 6.6 defines
// it (the libbpf of Debian 12 predates it).
struct UprobeMultiAttr {
    uint32_t prog_fd;
    uint32_t target_fd;
    uint32_t attach_type;
    uint32_t flags;
    uint64_t path;
    uint64_t offsets;
    uint64_t ref_ctr_offsets;
    uint64_t cookies;
    uint32_t cnt;
    uint32_t multi_flags;
    uint32_t pid;
    uint32_t pad;
};

int link_create(int prog_fd, int attach_type, const std::string& binary,
                const std::vector<uint64_t>& offsets, const std::vector<uint64_t>& cookies,
                int pid) {
    UprobeMultiAttr a{};
    a.prog_fd = static_cast<uint32_t>(prog_fd);
    a.attach_type = static_cast<uint32_t>(attach_type);
    a.path = reinterpret_cast<uint64_t>(binary.c_str());
    a.offsets = reinterpret_cast<uint64_t>(offsets.data());
    a.cookies = cookies.empty() ? 0 : reinterpret_cast<uint64_t>(cookies.data());
    a.cnt = static_cast<uint32_t>(offsets.size());
    a.pid = static_cast<uint32_t>(pid);
    return static_cast<int>(::syscall(__NR_bpf, BPF_LINK_CREATE, &a, sizeof(a)));
}

UprobeMultiSupport probe_uprobe_multi(const std::string& binary) {
    UprobeMultiSupport out;
    auto type = kernel_enum_value("bpf_attach_type", "BPF_TRACE_UPROBE_MULTI");
    if (!type) {
        out.reason = "this kernel has no uprobe_multi links (Linux 6.6+)";
        return out;
    }
    if (binary.empty()) {
        out.reason = "no libc found";
        return out;
    }
    auto offs = symbol_offsets(binary, {"getppid"});
    if (!offs || (*offs)[0] == 0) {
        out.reason = "getppid not found in " + binary;
        return out;
    }
    // r0 = 0; exit
    const bpf_insn insns[] = {{BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0},
                              {BPF_JMP | BPF_EXIT, 0, 0, 0, 0}};
    LIBBPF_OPTS(bpf_prog_load_opts, opts);
    opts.expected_attach_type = static_cast<bpf_attach_type>(*type);
    Fd prog(bpf_prog_load(BPF_PROG_TYPE_KPROBE, "ks_probe_multi", "GPL", insns, 2, &opts));
    if (prog.get() < 0) {
        out.reason = std::string("a uprobe_multi program does not load: ") + std::strerror(errno);
        return out;
    }
    Fd link(link_create(prog.get(), *type, binary, *offs, {}, ::getpid()));
    if (link.get() < 0) {
        out.reason = std::string("a uprobe_multi link for one process: ") + std::strerror(errno);
        return out;
    }
    out.attach_type = *type;
    return out;
}

}  // namespace

namespace {

std::string libc_in_maps(const std::string& maps) {
    std::ifstream in(maps);
    std::string line;
    while (std::getline(in, line)) {
        auto pos = line.find('/');
        if (pos == std::string::npos) continue;
        std::string path = line.substr(pos);
        auto base = path.substr(path.find_last_of('/') + 1);
        if (base.rfind("libc.so", 0) == 0 || base.rfind("libc-", 0) == 0) return path;
    }
    return "";
}

}  // namespace

std::string find_libc() {
    // A daemon in a container (--host-root) maps the image's libc: the
    // host's programs use the one the host's PID 1 maps, when it has one.
    if (in_host_root()) {
        std::string host = libc_in_maps("/proc/1/maps");
        if (!host.empty() && ::access(host.c_str(), R_OK) == 0) return host;
    }
    return libc_in_maps("/proc/self/maps");
}

const UprobeMultiSupport& uprobe_multi_support(const std::string& binary) {
    static const UprobeMultiSupport s = probe_uprobe_multi(binary);
    return s;
}

Result<std::vector<uint64_t>> symbol_offsets(const std::string& binary,
                                             const std::vector<std::string>& symbols) {
    std::vector<uint64_t> out(symbols.size(), 0);
    Fd fd(::open(binary.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return sys_error("open " + binary);
    if (elf_version(EV_CURRENT) == EV_NONE) return make_error("libelf: " + binary);
    Elf* e = elf_begin(fd.get(), ELF_C_READ, nullptr);
    if (!e) return make_error(binary + ": not an ELF file");
    std::vector<uint64_t> vaddr(symbols.size(), 0);
    Elf_Scn* scn = nullptr;
    while ((scn = elf_nextscn(e, scn))) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNSYM || sh.sh_entsize == 0) continue;
        Elf_Data* d = elf_getdata(scn, nullptr);
        if (!d) continue;
        for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; ++i) {
            GElf_Sym sym;
            if (!gelf_getsym(d, static_cast<int>(i), &sym) || sym.st_value == 0 ||
                GELF_ST_TYPE(sym.st_info) != STT_FUNC)
                continue;
            const char* name = elf_strptr(e, sh.sh_link, sym.st_name);
            if (!name) continue;
            for (size_t k = 0; k < symbols.size(); ++k)
                if (vaddr[k] == 0 && symbols[k] == name) vaddr[k] = sym.st_value;
        }
    }
    size_t nph = 0;
    if (elf_getphdrnum(e, &nph) == 0) {
        for (size_t i = 0; i < nph; ++i) {
            GElf_Phdr ph;
            if (!gelf_getphdr(e, static_cast<int>(i), &ph) || ph.p_type != PT_LOAD ||
                !(ph.p_flags & PF_X))
                continue;
            for (size_t k = 0; k < symbols.size(); ++k)
                if (vaddr[k] >= ph.p_vaddr && vaddr[k] < ph.p_vaddr + ph.p_filesz)
                    out[k] = vaddr[k] - ph.p_vaddr + ph.p_offset;
        }
    }
    elf_end(e);
    return out;
}

UprobeScope::UprobeScope(int attach_type, std::string binary, int dispatcher_fd, int prog_array_fd)
    : attach_type_(attach_type),
      binary_(std::move(binary)),
      dispatcher_fd_(dispatcher_fd),
      prog_array_fd_(prog_array_fd),
      detacher_([this] { detach_loop(); }) {
    // A program array is emptied by the kernel when no process holds it:
    // pinned, the links that outlive the daemon still reach their programs.
    pins::pin_fd(prog_array_fd_, "scope-programs");
}

UprobeScope::~UprobeScope() {
    {
        std::lock_guard<std::mutex> lk(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    detacher_.join();
    // The pinned links stay attached (fail-closed); the others go with us.
    for (auto& [tgid, p] : procs_)
        if (p.fd >= 0) ::close(p.fd);
}

namespace {
std::string pin_name(int tgid) { return "scope-" + std::to_string(tgid); }
std::string link_error(int pid, int err) {
    return "uprobe_multi link for pid " + std::to_string(pid) + ": " + std::strerror(err);
}
}  // namespace

int UprobeScope::link(int pid) {
    int fd = link_create(dispatcher_fd_, attach_type_, binary_, offsets_, cookies_, pid);
    if (fd < 0) return -errno;
    pins::pin_fd(fd, pin_name(pid));
    return fd;
}

// A program keeps its slot for the scope's life: a link made before a
// change still jumps to the same program until it is replaced.
Status UprobeScope::merge() {
    offsets_.clear();
    cookies_.clear();
    for (const auto& [layer, entries] : layers_) {
        for (const auto& e : entries) {
            auto [it, fresh] = slots_.try_emplace(e.prog_fd, static_cast<uint32_t>(slots_.size()));
            if (fresh && bpf_map_update_elem(prog_array_fd_, &it->second, &e.prog_fd, BPF_ANY) != 0)
                return sys_error("uprobe program array (" + layer + " layer)");
            offsets_.push_back(e.offset);
            cookies_.push_back(it->second);
        }
    }
    return {};
}

Status UprobeScope::set_entries(const std::string& layer, const std::vector<UprobeSpec>& specs,
                                std::vector<std::string>& names) {
    std::vector<std::string> symbols;
    for (const auto& s : specs) symbols.emplace_back(s.symbol);
    auto offsets = symbol_offsets(binary_, symbols);
    if (!offsets) return offsets.error();
    std::vector<Entry> entries;
    for (size_t i = 0; i < specs.size(); ++i) {
        if ((*offsets)[i] == 0) {
            spdlog::warn("uprobe on {}:{}: no such function", binary_, specs[i].symbol);
            continue;
        }
        entries.push_back({(*offsets)[i], bpf_program__fd(specs[i].prog)});
        names.emplace_back(specs[i].symbol);
    }
    layers_[layer] = std::move(entries);
    if (auto st = merge(); !st) return st;
    relink_all();
    return {};
}

void UprobeScope::drop_entries(const std::string& layer) {
    if (!layers_.erase(layer)) return;
    if (auto st = merge(); !st) spdlog::warn("{}", st.error().str());
    relink_all();
}

// Each process's new link first, then its old one goes: no moment without.
void UprobeScope::relink_all() {
    for (auto& [tgid, p] : procs_) {
        int old = p.fd;
        p.fd = -1;
        if (!offsets_.empty()) {
            if (old >= 0) pins::unpin_name(pin_name(tgid));
            int fd = link(tgid);
            if (fd >= 0) {
                p.fd = fd;
                ++attached_total_;
            } else if (fd != -ESRCH) {
                ++failed_total_;
                spdlog::warn("{}", link_error(tgid, -fd));
            }
        }
        if (old >= 0) release(old, -1);
    }
}

Status UprobeScope::add(int tgid, uint64_t start) {
    if (auto it = procs_.find(tgid); it != procs_.end() && it->second.start != start)
        remove(tgid);  // the pid of a process that is gone
    auto& p = procs_[tgid];
    p.start = start;
    if (p.fd >= 0 || offsets_.empty()) return {};
    int fd = link(tgid);
    if (fd < 0) {
        if (fd == -ESRCH) return {};  // gone already: nothing to guard
        ++failed_total_;
        return make_error(link_error(tgid, -fd));
    }
    p.fd = fd;
    ++attached_total_;
    return {};
}

void UprobeScope::remove(int tgid) {
    auto it = procs_.find(tgid);
    if (it == procs_.end()) return;
    if (it->second.fd >= 0) release(it->second.fd, tgid);
    procs_.erase(it);
}

bool UprobeScope::contains(int tgid, uint64_t start) const {
    auto it = procs_.find(tgid);
    return it != procs_.end() && it->second.start == start;
}

std::vector<std::pair<int, uint64_t>> UprobeScope::members() const {
    std::vector<std::pair<int, uint64_t>> out;
    for (const auto& [tgid, p] : procs_) out.emplace_back(tgid, p.start);
    return out;
}

size_t UprobeScope::processes() const { return procs_.size(); }

Status UprobeScope::attach_everywhere() {
    if (offsets_.empty()) return {};
    // Kept (pinned) for the kernel; our descriptor goes with the process.
    if (int fd = link(0); fd < 0) return make_error(link_error(0, -fd));
    return {};
}

void UprobeScope::release_all() {
    for (const auto& [tgid, start] : members()) remove(tgid);
}

// tgid < 0: its pin (if any) was taken over by a newer link.
void UprobeScope::release(int fd, int tgid) {
    if (tgid >= 0) pins::unpin_name(pin_name(tgid));
    {
        std::lock_guard<std::mutex> lk(mu_);
        to_close_.push_back(fd);
    }
    cv_.notify_one();
}

// Closing a uprobe link waits for an RCU grace period (about 25 ms here);
// closed side by side they share it (30 links: 760 ms one after another,
// 29 ms together). The width matters under a fork storm: 16 at a time fell
// behind (each link waiting to close stays registered, and every probe hit
// of every process walks them: 500 guarded execs took 0.9 s, then 1.6, 2.7,
// 4.0 s in a row, and the 10,000-exec storm test over 300 s); 128 at a time
// keeps up (0.8-0.9 s each time, the storm 20 s).
void UprobeScope::detach_loop() {
    // Signals are the daemon's main thread's (its signalfd): a SIGTERM
    // delivered here would end the process unannounced.
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    constexpr size_t kWidth = 128;
    std::unique_lock<std::mutex> lk(mu_);
    for (;;) {
        cv_.wait(lk, [this] { return stop_ || !to_close_.empty(); });
        if (to_close_.empty() && stop_) return;
        std::vector<int> batch;
        batch.swap(to_close_);
        lk.unlock();
        for (size_t i = 0; i < batch.size(); i += kWidth) {
            std::vector<std::thread> closers;
            for (size_t k = i; k < std::min(batch.size(), i + kWidth); ++k)
                closers.emplace_back([fd = batch[k]] { ::close(fd); });
            for (auto& t : closers) t.join();
        }
        lk.lock();
    }
}

}  // namespace ks
