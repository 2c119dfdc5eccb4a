#include "file_guard/lsm_guard_bpf.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <killswitch/abi/events.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <sstream>

#include "common/bpf_util.h"
#include "common/fd.h"
#include "common/log.h"
#include "common/pins.h"
#include "common/sysfs.h"
#include "lsm_guard.skel.h"

namespace ks {
namespace {

constexpr const char* kSecurityfs = "/sys/kernel/security";

// The arguments each program reads, as the hook has them on the kernels we
// know. A kernel whose hook takes other arguments (bpf gained one in 6.14)
// would hand the program the wrong ones, the previous verdict included: such
// a program is not loaded.
const std::map<std::string, int>& hook_arity() {
    static const std::map<std::string, int> m = {
        {"path_unlink", 2}, {"path_rmdir", 2},         {"path_rename", 5},
        {"path_link", 3},   {"path_truncate", 1},      {"file_truncate", 1},
        {"file_open", 1},   {"sb_mount", 5},           {"move_mount", 2},
        {"sb_umount", 2},   {"task_kill", 4},          {"ptrace_access_check", 2},
        {"bpf", 3},         {"kernel_read_file", 3},   {"kernel_load_data", 2},
        {"capable", 4},
    };
    return m;
}

// Without these the layer does not protect files: fall back to the others.
constexpr const char* kRequired[] = {"path_unlink", "path_rmdir", "path_rename", "path_truncate",
                                     "file_open"};

std::string hook_of(bpf_program* prog) {
    std::string sec = bpf_program__section_name(prog);
    return sec.rfind("lsm/", 0) == 0 ? sec.substr(4) : "";
}

// The number of arguments of the kernel's bpf_lsm_HOOK, -1 if it has none.
int kernel_arity(const btf* vmlinux, const std::string& hook) {
    int id = btf__find_by_name_kind(vmlinux, ("bpf_lsm_" + hook).c_str(), BTF_KIND_FUNC);
    if (id < 0) return -1;
    const btf_type* fn = btf__type_by_id(vmlinux, id);
    const btf_type* proto = fn ? btf__type_by_id(vmlinux, fn->type) : nullptr;
    return proto ? btf_vlen(proto) : -1;
}

}  // namespace

std::string LsmGuardBpf::active_lsms() {
    auto mnt = ensure_mounted("securityfs", kSecurityfs, true);
    if (!mnt) return "";
    auto text = read_file(*mnt + "/lsm");
    if (!text) return "";
    std::string list = *text;
    while (!list.empty() && (list.back() == '\n' || list.back() == '\0')) list.pop_back();
    return list;
}

std::string LsmGuardBpf::unavailable_reason() {
    btf* vmlinux = btf__load_vmlinux_btf();
    if (!vmlinux) return "the kernel has no BTF (/sys/kernel/btf/vmlinux)";
    int unlink_args = kernel_arity(vmlinux, "path_unlink");
    btf__free(vmlinux);
    if (unlink_args < 0)
        return "the kernel was built without CONFIG_BPF_LSM (no bpf_lsm_path_unlink in its BTF)";
    std::string list = active_lsms();
    if (list.empty()) return "the active LSM list is unreadable (securityfs " + std::string(kSecurityfs) + "/lsm)";
    std::istringstream in(list);
    for (std::string item; std::getline(in, item, ',');)
        if (item == "bpf") return "";
    return "bpf is not in the active LSM list (" + list + "); boot with lsm=" + list +
           ",bpf to enable it";
}

Result<std::unique_ptr<LsmGuardBpf>> LsmGuardBpf::load(const std::vector<bpf_object*>& shared) {
    std::unique_ptr<LsmGuardBpf> g(new LsmGuardBpf());
    g->skel_ = lsm_guard__open();
    if (!g->skel_) return sys_error("open lsm_guard BPF object");
    for (bpf_object* obj : shared)
        if (auto st = share_maps(g->skel_->obj, obj); !st) return st.error();
    if (auto st = pins::use_state_maps(g->skel_->obj); !st) return st.error();

    btf* vmlinux = btf__load_vmlinux_btf();
    if (!vmlinux) return make_error("the kernel has no BTF: the LSM layer cannot load");
    bpf_program* prog = nullptr;
    std::string missing_required;
    bpf_object__for_each_program(prog, g->skel_->obj) {
        std::string hook = hook_of(prog);
        int have = kernel_arity(vmlinux, hook);
        auto want = hook_arity().find(hook);
        std::string why;
        if (have < 0)
            why = "this kernel has no " + hook + " hook";
        else if (want == hook_arity().end() || want->second != have)
            why = hook + " takes " + std::to_string(have) + " arguments here, not " +
                  (want == hook_arity().end() ? std::string("?") : std::to_string(want->second));
        if (why.empty()) continue;
        bpf_program__set_autoload(prog, false);
        g->skipped_.push_back(why);
        for (const char* req : kRequired)
            if (hook == req) missing_required = "the LSM layer needs the " + hook + " hook: " + why;
    }
    btf__free(vmlinux);
    if (!missing_required.empty()) return make_error(missing_required);
    if (int err = lsm_guard__load(g->skel_)) return sys_error("load lsm_guard BPF programs", -err);
    auto loaded = [](bpf_program* p) { return bpf_program__autoload(p); };
    g->coverage_.signals = loaded(g->skel_->progs.ks_lsm_task_kill);
    g->coverage_.ptrace = loaded(g->skel_->progs.ks_lsm_ptrace_access_check);
    g->coverage_.bpf = loaded(g->skel_->progs.ks_lsm_bpf);
    g->coverage_.modules = loaded(g->skel_->progs.ks_lsm_kernel_read_file) &&
                           loaded(g->skel_->progs.ks_lsm_kernel_load_data);
    g->coverage_.reboot = g->coverage_.module_unload = loaded(g->skel_->progs.ks_lsm_capable);
    for (const auto& s : g->skipped_) spdlog::info("LSM layer: {}", s);
    return g;
}

LsmGuardBpf::~LsmGuardBpf() {
    if (detaching_.joinable()) detaching_.detach();  // the process is going
    if (skel_) lsm_guard__destroy(skel_);
}

Status LsmGuardBpf::set_active(bool active) {
    if (active == active_) return {};
    if (!active) {
        std::vector<bpf_link*> none;
        std::vector<std::string> names;
        detach_layer(skel_->skeleton, none, names, detaching_);
        active_ = false;
        return {};
    }
    if (auto st = attach_layer(skel_->skeleton, "lsm_guard LSM hooks", detaching_); !st)
        return st;
    active_ = true;
    return {};
}

Status LsmGuardBpf::probe(int guarded_tasks_fd, const std::string& dir) {
    bool was_active = active_;
    if (auto st = set_active(true); !st) return st;
    std::string path = dir + "/lsm-probe.XXXXXX";
    Fd file(::mkstemp(path.data()));
    if (!file.valid()) return sys_error("create " + path);
    file.reset();
    int go[2];
    if (::pipe2(go, O_CLOEXEC) != 0) return sys_error("pipe");
    Fd go_read(go[0]), go_write(go[1]);
    pid_t child = ::fork();
    if (child < 0) return sys_error("fork");
    if (child == 0) {
        // Async-signal-safe calls only: the daemon has threads.
        char c;
        go_write.reset();
        if (::read(go_read.get(), &c, 1) != 1) ::_exit(3);
        int r = ::unlink(path.c_str());
        ::_exit(r == 0 ? 1 : errno == EPERM ? 0 : 2);
    }
    go_read.reset();
    uint32_t key = static_cast<uint32_t>(child);
    ks_task_guard guard{kLsmProbeSession, 0};
    Status result;
    if (bpf_map_update_elem(guarded_tasks_fd, &key, &guard, BPF_ANY) != 0)
        result = sys_error("guard the probe process");
    (void)!::write(go_write.get(), "x", 1);
    go_write.reset();
    int status = 0;
    while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    bpf_map_delete_elem(guarded_tasks_fd, &key);  // the exit program may have
    bool kept = ::access(path.c_str(), F_OK) == 0;
    ::unlink(path.c_str());
    if (!was_active) (void)set_active(false);
    if (!result) return result;
    if (!WIFEXITED(status) || WEXITSTATUS(status) == 3)
        return make_error("the LSM probe process did not run");
    if (WEXITSTATUS(status) == 1 || !kept)
        return make_error("the path_unlink hook is attached but did not run: a guarded unlink "
                          "went through");
    if (WEXITSTATUS(status) != 0)
        return make_error("the probe's unlink failed with another error than EPERM");
    return {};
}

std::vector<std::string> LsmGuardBpf::hooks() const {
    std::vector<std::string> out;
    bpf_program* prog = nullptr;
    bpf_object__for_each_program(prog, skel_->obj)
        if (bpf_program__autoload(prog)) out.push_back(hook_of(prog));
    return out;
}

bpf_object* LsmGuardBpf::object() const { return skel_->obj; }

std::string_view LsmGuardBpf::elf_bytes() {
    size_t sz = 0;
    const void* p = lsm_guard__elf_bytes(&sz);
    return {static_cast<const char*>(p), sz};
}

}  // namespace ks
