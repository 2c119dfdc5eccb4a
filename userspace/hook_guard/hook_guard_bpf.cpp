#include "hook_guard/hook_guard_bpf.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <killswitch/abi/events.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>

#include "common/bpf_util.h"
#include "common/fd.h"
#include "common/log.h"
#include "common/pins.h"
#include "common/skeleton.h"
#include "common/sysfs.h"
#include "hook_guard_fentry.skel.h"
#include "hook_guard_lsm.skel.h"

namespace ks {

KS_SKELETON(hook_guard_lsm);
KS_SKELETON(hook_guard_fentry);
namespace {

// The arguments each program reads, as the hook (and its security_*
// function) has them on the kernels we know. A kernel whose hook takes other
// arguments (bpf gained one in 6.14) would hand the program the wrong ones,
// the previous verdict included: such a program is not loaded.
const std::map<std::string, int>& hook_arity() {
    // One hook a line.
    // clang-format off
    static const std::map<std::string, int> m = {
        {"path_unlink", 2},
        {"path_rmdir", 2},
        {"path_rename", 5},
        {"path_link", 3},
        {"path_symlink", 3},
        {"path_mknod", 4},
        {"path_truncate", 1},
        {"file_truncate", 1},
        {"file_open", 1},
        {"file_permission", 2},
        {"sb_mount", 5},
        {"move_mount", 2},
        {"sb_umount", 2},
        {"path_chmod", 2},
        {"path_chown", 3},
        {"inode_setxattr", 6},
        {"inode_removexattr", 3},
        {"inode_set_acl", 4},
        {"inode_remove_acl", 3},
        {"file_ioctl", 3},
        {"task_kill", 4},
        {"ptrace_access_check", 2},
        {"bpf", 3},
        {"kernel_read_file", 3},
        {"kernel_load_data", 2},
        {"capable", 4},
    };
    // clang-format on
    return m;
}

// Without these the layer does not protect files: fall back to the others.
constexpr const char* kRequired[] = {"path_unlink", "path_rmdir", "path_rename", "path_truncate",
                                     "file_open"};

// A program's kernel function (what BTF must have) and the hook's short name.
struct Target {
    std::string function;
    std::string hook;
};

Target target_of(bpf_program* prog) {
    std::string sec = bpf_program__section_name(prog);
    if (sec.rfind("lsm/", 0) == 0) return {"bpf_lsm_" + sec.substr(4), sec.substr(4)};
    constexpr std::string_view fmod_ret = "fmod_ret/security_";
    if (sec.rfind(fmod_ret, 0) == 0) {
        std::string fn = sec.substr(fmod_ret.size() - std::strlen("security_"));
        return {fn, sec.substr(fmod_ret.size())};
    }
    return {"", sec};
}

// The number of arguments of a kernel function, -1 if BTF has none of it.
int kernel_arity(const btf* vmlinux, const std::string& function) {
    int id = btf__find_by_name_kind(vmlinux, function.c_str(), BTF_KIND_FUNC);
    if (id < 0) return -1;
    const btf_type* fn = btf__type_by_id(vmlinux, id);
    const btf_type* proto = fn ? btf__type_by_id(vmlinux, fn->type) : nullptr;
    return proto ? btf_vlen(proto) : -1;
}

}  // namespace

std::string_view hook_kind_name(HookKind kind) { return kind == HookKind::kLsm ? "lsm" : "fentry"; }

std::string HookGuardBpf::unavailable_reason(HookKind kind) {
    btf* vmlinux = btf__load_vmlinux_btf();
    if (!vmlinux) return "the kernel has no BTF (/sys/kernel/btf/vmlinux)";
    int unlink_args = kernel_arity(
        vmlinux, kind == HookKind::kLsm ? "bpf_lsm_path_unlink" : "security_path_unlink");
    btf__free(vmlinux);
    if (kind == HookKind::kFentry)
        return unlink_args < 0 ? "the kernel has no security_path_unlink function "
                                 "(CONFIG_SECURITY_PATH) for fentry to hook"
                               : "";
    if (unlink_args < 0)
        return "the kernel was built without CONFIG_BPF_LSM (no bpf_lsm_path_unlink in its BTF)";
    auto list = active_lsm_list();
    if (!list) return "the active LSM list is unreadable: " + list.error().str();
    if (list_has(*list, "bpf")) return "";
    return "bpf is not in the active LSM list (" + *list + "); boot with lsm=" + *list +
           ",bpf to enable it";
}

Result<std::unique_ptr<HookGuardBpf>> HookGuardBpf::load(HookKind kind,
                                                         const std::vector<bpf_object*>& shared,
                                                         bool space) {
    // Quietly first: on a kernel that refuses the program type altogether the
    // load fails with EPERM and an empty verifier log, which one line says.
    auto g = load_once(kind, shared, space, true);
    if (g || g.error().code == EPERM) {
        if (!g)
            return g.error().wrap("this kernel refuses " + std::string(hook_kind_name(kind)) +
                                  " programs");
        return g;
    }
    // Any other failure: again, with libbpf's log (the verifier's reason).
    return load_once(kind, shared, space, false);
}

Result<std::unique_ptr<HookGuardBpf>> HookGuardBpf::load_once(
    HookKind kind, const std::vector<bpf_object*>& shared, bool space, bool quiet) {
    std::unique_ptr<HookGuardBpf> g(new HookGuardBpf());
    g->kind_ = kind;
    // One source, two objects: the skeleton of the kind asked for.
    auto open = [&](auto skel) -> Status {
        if (auto st = skel.open(); !st) return st;
        g->obj_ = skel.object();
        g->skeleton_ = skel->skeleton;
        g->skel_ = std::move(skel);
        return {};
    };
    if (auto st = kind == HookKind::kLsm ? open(Skeleton<hook_guard_lsm>())
                                         : open(Skeleton<hook_guard_fentry>());
        !st)
        return st.error();
    for (bpf_object* obj : shared)
        if (auto st = share_maps(g->obj_, obj); !st) return st.error();
    if (auto st = pins::use_state_maps(g->obj_); !st) return st.error();

    btf* vmlinux = btf__load_vmlinux_btf();
    if (!vmlinux) return make_error("the kernel has no BTF: the hook layer cannot load");
    bpf_program* prog = nullptr;
    std::string missing_required;
    bpf_object__for_each_program(prog, g->obj_) {
        Target t = target_of(prog);
        // Every read and write passes file_permission: with the space budget
        // off at start nothing is put there.
        if (t.hook == "file_permission" && !space) {
            bpf_program__set_autoload(prog, false);
            continue;
        }
        int have = kernel_arity(vmlinux, t.function);
        auto want = hook_arity().find(t.hook);
        std::string why;
        if (have < 0)
            why = "this kernel has no " + t.function;
        else if (want == hook_arity().end() || want->second != have)
            why = t.function + " takes " + std::to_string(have) + " arguments here, not " +
                  (want == hook_arity().end() ? std::string("?") : std::to_string(want->second));
        if (why.empty()) continue;
        bpf_program__set_autoload(prog, false);
        g->skipped_.push_back(why);
        for (const char* req : kRequired)
            if (t.hook == req)
                missing_required = "the " + std::string(hook_kind_name(kind)) +
                                   " layer needs the " + t.hook + " hook: " + why;
    }
    btf__free(vmlinux);
    if (!missing_required.empty()) return make_error(missing_required);
    {
        std::unique_ptr<QuietLibbpf> q = quiet ? std::make_unique<QuietLibbpf>() : nullptr;
        if (int err = bpf_object__load_skeleton(g->skeleton_))
            return sys_error("load " + std::string(hook_kind_name(kind)) + " hook programs", -err);
    }
    auto has = [&](const char* hook) {
        bpf_program* p = nullptr;
        bpf_object__for_each_program(
            p, g->obj_) if (target_of(p).hook == hook && bpf_program__autoload(p)) return true;
        return false;
    };
    g->coverage_.signals = has("task_kill");
    g->coverage_.ptrace = has("ptrace_access_check");
    g->coverage_.bpf = has("bpf");
    g->coverage_.modules = has("kernel_read_file") && has("kernel_load_data");
    g->coverage_.reboot = g->coverage_.module_unload = has("capable");
    g->coverage_.space = has("file_permission");
    for (const auto& s : g->skipped_) spdlog::info("{} layer: {}", hook_kind_name(kind), s);
    return g;
}

HookGuardBpf::~HookGuardBpf() {
    if (detaching_.joinable()) detaching_.detach();  // the process is going
}

Status HookGuardBpf::set_active(bool active) {
    if (active == active_) return {};
    if (!active) {
        std::vector<bpf_link*> none;
        std::vector<std::string> names;
        detach_layer(skeleton_, none, names, detaching_);
        active_ = false;
        return {};
    }
    const char* what =
        kind_ == HookKind::kLsm ? "hook_guard_lsm LSM hooks" : "hook_guard_fentry fmod_ret hooks";
    if (auto st = attach_layer(skeleton_, what, detaching_); !st) return st;
    active_ = true;
    return {};
}

Status HookGuardBpf::probe(int guarded_tasks_fd, const std::string& dir) {
    bool was_active = active_;
    if (auto st = set_active(true); !st) return st;
    std::string path = dir + "/hook-probe.XXXXXX";
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
    ks_task_guard guard{kHookProbeSession, 0};
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
    if (WIFEXITED(status) && WEXITSTATUS(status) == 3)
        return make_error("the probe process did not run");
    std::string hook = kind_ == HookKind::kLsm ? "the LSM path_unlink hook"
                                               : "the fmod_ret hook on security_path_unlink";
    if (!WIFEXITED(status)) return make_error("the " + std::string(name()) + " probe process died");
    if (WEXITSTATUS(status) == 1 || !kept)
        return make_error(hook + " is attached but did not refuse: a guarded unlink went through");
    if (WEXITSTATUS(status) != 0)
        return make_error("the probe's unlink failed with another error than EPERM");
    return {};
}

std::vector<std::string> HookGuardBpf::hooks() const {
    std::vector<std::string> out;
    bpf_program* prog = nullptr;
    bpf_object__for_each_program(prog, obj_) if (bpf_program__autoload(prog))
        out.push_back(target_of(prog).hook);
    return out;
}

std::vector<std::string> HookGuardBpf::programs() const { return program_names(obj_); }

void HookGuardBpf::describe(nlohmann::json& layers) const {
    layers[std::string(name())] = {
        {"active", true}, {"attached", active()}, {"hooks", hooks()}, {"skipped", skipped()}};
}

std::string_view HookGuardBpf::elf_bytes(HookKind kind) {
    return kind == HookKind::kLsm ? Skeleton<hook_guard_lsm>::elf_bytes()
                                  : Skeleton<hook_guard_fentry>::elf_bytes();
}

}  // namespace ks
