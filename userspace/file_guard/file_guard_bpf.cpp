#include "file_guard/file_guard_bpf.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <sstream>

#include "common/bpf_util.h"
#include "common/log.h"
#include "common/pins.h"
#include "common/skeleton.h"
#include "file_guard.skel.h"
#include "file_guard/exec_rules.h"

namespace ks {

KS_SKELETON(file_guard);

Result<std::unique_ptr<FileGuardBpf>> FileGuardBpf::load(const std::vector<bpf_object*>& shared,
                                                         const LoadOptions& opts) {
    std::unique_ptr<FileGuardBpf> g(new FileGuardBpf());
    g->want_uprobes_ = opts.libc_uprobes && !opts.files_to_hooks;
    g->space_writes_ = opts.space_writes;
    if (auto st = g->skel_.open(); !st) return st.error();

    // One set of shared maps for every object.
    for (bpf_object* obj : shared)
        if (auto st = share_maps(g->skel_->obj, obj); !st) return st.error();
    if (auto st = pins::use_state_maps(g->skel_->obj); !st) return st.error();
    bpf_program* prog = nullptr;
    bpf_object__for_each_program(prog, g->skel_->obj) {
        std::string_view name = bpf_program__name(prog);
        if (opts.files_to_hooks) {
            // The exec layer alone (see LoadOptions::files_to_hooks).
            bpf_program__set_autoload(prog, name == "ks_exec_check");
            continue;
        }
        if (name.starts_with("ks_up_")) {
            bpf_program__set_autoattach(prog, false);
            if (opts.uprobe_multi)
                bpf_program__set_expected_attach_type(
                    prog, static_cast<bpf_attach_type>(*opts.uprobe_multi));
        }
        if (!opts.space_writes && name.starts_with("ks_space_"))
            bpf_program__set_autoload(prog, false);
    }
    if (!opts.files_to_hooks) {
        // The hold of a new child until its uprobes are attached.
        for (bpf_program* p : {g->skel_->progs.ks_child_clone, g->skel_->progs.ks_child_clone3,
                               g->skel_->progs.ks_child_fork, g->skel_->progs.ks_child_vfork})
            bpf_program__set_autoload(p, opts.uprobe_multi.has_value());
        // System calls younger than the oldest kernel we run on: their
        // programs load where the kernel has them (fchmodat2 6.6, setxattrat
        // 6.13).
        for (bpf_program* p : {g->skel_->progs.ks_tp_fchmodat2, g->skel_->progs.ks_tp_setxattrat,
                               g->skel_->progs.ks_tp_removexattrat}) {
            std::string sec = bpf_program__section_name(p);
            std::string dir = "/sys/kernel/tracing/events/" + sec.substr(3);
            if (::access(dir.c_str(), F_OK) != 0) {
                spdlog::info("file layer: this kernel has no {} tracepoint", sec.substr(3));
                bpf_program__set_autoload(p, false);
            }
        }
    }
    if (auto st = g->skel_.load(); !st) return st.error();
    if (g->want_uprobes_) {
        g->libc_ = find_libc();
        if (g->libc_.empty())
            spdlog::warn("no libc found in our own mappings: the libc layer is off");
    }
    // Attached once something is guarded; what it needs is there.
    if (auto st = check_tracepoints(g->skel_->obj); !st) return st.error();
    return g;
}

int FileGuardBpf::scope_dispatcher_fd() const {
    return bpf_program__fd(skel_->progs.ks_up_dispatch);
}

int FileGuardBpf::scope_prog_array_fd() const { return bpf_map__fd(skel_->maps.ks_up_progs); }

Status FileGuardBpf::set_active(bool active) {
    if (active == active_) return {};
    if (!active) {
        if (scope_) scope_->drop_entries("file");
        detach_layer(skel_->skeleton, links_, uprobe_names_, detaching_);
        active_ = false;
        return {};
    }
    if (syscalls_) {
        if (auto st =
                attach_layer(skel_->skeleton,
                             "file_guard syscall tracepoints (is tracefs mounted?)", detaching_);
            !st)
            return st;
    } else if (auto st = attach_programs(
                   skel_->skeleton, [](const char* sec) { return !is_syscall_tracepoint(sec); },
                   "file_guard", detaching_);
               !st) {
        return st;
    }
    active_ = true;
    if (!want_uprobes_ || libc_.empty()) return {};
    // open64/truncate64/fallocate64 are aliases of open/truncate/fallocate
    // in 64-bit glibc (same address); renameat2 starts with renameat's
    // arguments; posix_fallocate64 has a body of its own.
    const std::vector<UprobeSpec> specs = {
        {"unlink", skel_->progs.ks_up_unlink},
        {"unlinkat", skel_->progs.ks_up_unlinkat},
        {"rmdir", skel_->progs.ks_up_rmdir},
        {"rename", skel_->progs.ks_up_rename},
        {"renameat", skel_->progs.ks_up_renameat},
        {"renameat2", skel_->progs.ks_up_renameat},
        {"truncate", skel_->progs.ks_up_truncate},
        {"ftruncate", skel_->progs.ks_up_ftruncate},
        {"open", skel_->progs.ks_up_open},
        {"openat", skel_->progs.ks_up_openat},
        {"creat", skel_->progs.ks_up_creat},
        {"link", skel_->progs.ks_up_link},
        {"linkat", skel_->progs.ks_up_linkat},
        {"symlink", skel_->progs.ks_up_symlink},
        {"symlinkat", skel_->progs.ks_up_symlinkat},
        {"mount", skel_->progs.ks_up_mount},
        {"umount", skel_->progs.ks_up_umount},
        {"umount2", skel_->progs.ks_up_umount},
        {"open_tree", skel_->progs.ks_up_open_tree},
        {"move_mount", skel_->progs.ks_up_move_mount},
        {"mount_setattr", skel_->progs.ks_up_mount_setattr},
        {"fspick", skel_->progs.ks_up_fspick},
        {"chmod", skel_->progs.ks_up_chmod},
        {"fchmod", skel_->progs.ks_up_fchmod},
        {"fchmodat", skel_->progs.ks_up_fchmodat},
        {"chown", skel_->progs.ks_up_chown},
        {"lchown", skel_->progs.ks_up_lchown},
        {"fchown", skel_->progs.ks_up_fchown},
        {"fchownat", skel_->progs.ks_up_fchownat},
        {"setxattr", skel_->progs.ks_up_xattr},
        {"lsetxattr", skel_->progs.ks_up_xattr},
        {"removexattr", skel_->progs.ks_up_xattr},
        {"lremovexattr", skel_->progs.ks_up_xattr},
        {"fsetxattr", skel_->progs.ks_up_fxattr},
        {"fremovexattr", skel_->progs.ks_up_fxattr},
        {"fallocate", skel_->progs.ks_up_fallocate},
        {"posix_fallocate", skel_->progs.ks_up_posix_fallocate},
        {"posix_fallocate64", skel_->progs.ks_up_posix_fallocate}};
    if (scope_) return scope_->set_entries("file", specs, uprobe_names_);
    attach_uprobes(libc_, specs, links_, uprobe_names_);
    return {};
}

Status FileGuardBpf::set_syscalls(bool on) {
    if (on == syscalls_) return {};
    syscalls_ = on;
    if (!active_) return {};
    if (!on) {
        detach_programs(skel_->skeleton, is_syscall_tracepoint, detaching_);
        return {};
    }
    return attach_programs(skel_->skeleton, is_syscall_tracepoint,
                           "file_guard syscall tracepoints (is tracefs mounted?)", detaching_);
}

FileGuardBpf::~FileGuardBpf() {
    if (detaching_.joinable()) detaching_.detach();  // the process is going
    destroy_links(links_);
}

void FileGuardBpf::describe(nlohmann::json& layers) const {
    layers["file_guard"] = program_names();
    layers["file_tracepoints"] = tracepoints();
    layers["file_tracepoints_attached"] = active_ && syscalls_;
    layers["uprobes"] = uprobes();
    layers["libc"] = libc_path();
    layers["exec_rules"] = watched_tools();
}

Status FileGuardBpf::publish(const ProtectedSet& next, const ProtectedSet* previous) {
    int ifd = bpf_map__fd(skel_->maps.protected_inodes);
    for (const auto& [key, rule] : next.inodes()) {
        ks_protected v{rule, next.no_window(key) ? KS_PF_NO_WINDOW : 0u};
        if (bpf_map_update_elem(ifd, &key, &v, BPF_ANY))
            return sys_error("add to protected_inodes (" + std::to_string(next.inodes().size()) +
                             " entries)");
    }
    int efd = bpf_map__fd(skel_->maps.protected_edges);
    for (const auto& [key, child] : next.edges())
        if (bpf_map_update_elem(efd, &key, &child, BPF_ANY))
            return sys_error("add to protected_edges");
    int afd = bpf_map__fd(skel_->maps.protected_ancestors);
    for (const auto& [key, rule] : next.ancestors())
        if (bpf_map_update_elem(afd, &key, &rule, BPF_ANY))
            return sys_error("add to protected_ancestors (" +
                             std::to_string(next.ancestors().size()) + " entries)");
    // The file systems that hold protected data (a remount of any mount of
    // one is a remount of the data's).
    int dfd = bpf_map__fd(skel_->maps.protected_devs);
    std::map<uint64_t, uint32_t> devs;
    for (const auto& r : next.roots())
        if (r.data()) devs.emplace(r.dev, r.rule_id);
    for (const auto& [dev, rule] : devs)
        if (bpf_map_update_elem(dfd, &dev, &rule, BPF_ANY))
            return sys_error("add to protected_devs");
    if (previous)
        for (const auto& r : previous->roots())
            if (!devs.count(r.dev) && bpf_map_delete_elem(dfd, &r.dev) && errno != ENOENT)
                return sys_error("remove from protected_devs");
    if (!previous) return {};
    for (const auto& [key, rule] : previous->ancestors())
        if (!next.ancestors().count(key) && bpf_map_delete_elem(afd, &key) && errno != ENOENT)
            return sys_error("remove from protected_ancestors");
    // Edges first: nothing leads to an inode that is about to go.
    for (const auto& [key, child] : previous->edges())
        if (!next.edges().count(key) && bpf_map_delete_elem(efd, &key) && errno != ENOENT)
            return sys_error("remove from protected_edges");
    for (const auto& [key, rule] : previous->inodes())
        if (!next.inodes().count(key) && bpf_map_delete_elem(ifd, &key) && errno != ENOENT)
            return sys_error("remove from protected_inodes");
    return {};
}

Status FileGuardBpf::set_rules(const std::vector<policy::CompiledRule>& rules, uint32_t first,
                               uint32_t end) {
    int fd = bpf_map__fd(skel_->maps.rules);
    for (uint32_t i = first; i < end && i < rules.size() && i < KS_MAX_RULES; ++i) {
        ks_rule r{to_abi(rules[i].action), rules[i].monitor ? 1u : 0u,
                  rules[i].no_window ? KS_RULEF_NO_WINDOW : 0u, 0};
        if (bpf_map_update_elem(fd, &i, &r, BPF_ANY))
            return sys_error("set rule " + std::to_string(i));
    }
    return {};
}

Status FileGuardBpf::set_config(uint32_t unresolved_rule, uint32_t io_uring_rule,
                                uint32_t block_device_rule, uint32_t space_rule) {
    uint32_t zero = 0;
    // The daemon's mount namespace: mounts above protected data count there.
    struct stat ns {};
    uint32_t mnt_ns = ::stat("/proc/self/ns/mnt", &ns) == 0 ? static_cast<uint32_t>(ns.st_ino) : 0;
    ks_config c{unresolved_rule, io_uring_rule, mnt_ns, block_device_rule, space_rule, 0};
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.file_config), &zero, &c, BPF_ANY))
        return sys_error("set file_config");
    return {};
}

Status FileGuardBpf::set_space_limit(uint64_t dev, uint64_t limit) {
    // The count first (the kernel adds to it in place; an existing one is
    // kept), then the limit that makes the kernel look at it.
    ks_space_written w{};
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.space_written), &dev, &w, BPF_NOEXIST) &&
        errno != EEXIST)
        return sys_error("add to space_written");
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.space_limit), &dev, &limit, BPF_ANY))
        return sys_error("set space_limit");
    return {};
}

uint64_t FileGuardBpf::space_written(uint64_t dev) const {
    ks_space_written w{};
    if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.space_written), &dev, &w)) return 0;
    return w.bytes;
}

void FileGuardBpf::remove_space(uint64_t dev) {
    bpf_map_delete_elem(bpf_map__fd(skel_->maps.space_limit), &dev);
    bpf_map_delete_elem(bpf_map__fd(skel_->maps.space_written), &dev);
}

Status FileGuardBpf::set_exec_watch(const std::vector<std::string>& tools) {
    int fd = bpf_map__fd(skel_->maps.exec_watch);
    for (const auto& t : tools) {
        char key[KS_WATCH_NAME_LEN] = {};
        std::strncpy(key, t.c_str(), sizeof(key) - 1);
        uint32_t one = 1;
        if (bpf_map_update_elem(fd, key, &one, BPF_ANY))
            return sys_error("add " + t + " to exec_watch");
    }
    return {};
}

Status FileGuardBpf::add_pass(int pid, uint64_t deadline_boot_ns) {
    uint32_t key = static_cast<uint32_t>(pid);
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.passes), &key, &deadline_boot_ns, BPF_ANY))
        return sys_error("add pass for pid " + std::to_string(pid));
    return {};
}

Status FileGuardBpf::give_meta_ticket(int tid, const ks_meta_ticket& t) {
    uint32_t key = static_cast<uint32_t>(tid);
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.meta_tickets), &key, &t, BPF_ANY))
        return sys_error("give a ticket to thread " + std::to_string(tid));
    return {};
}

void FileGuardBpf::remove_pass(int pid) {
    uint32_t key = static_cast<uint32_t>(pid);
    bpf_map_delete_elem(bpf_map__fd(skel_->maps.passes), &key);
}

std::string_view FileGuardBpf::elf_bytes() { return Skeleton<file_guard>::elf_bytes(); }

std::vector<std::string> FileGuardBpf::tracepoints() const {
    std::vector<std::string> out;
    bpf_program* prog = nullptr;
    bpf_object__for_each_program(prog, skel_->obj) {
        std::string sec = bpf_program__section_name(prog);
        if (sec.rfind("tp/syscalls/", 0) == 0 && bpf_program__autoload(prog) &&
            bpf_program__autoattach(prog))
            out.push_back(sec.substr(std::strlen("tp/syscalls/")));
    }
    return out;
}

bpf_object* FileGuardBpf::object() const { return skel_->obj; }

std::vector<std::string> FileGuardBpf::program_names() const {
    return ks::program_names(skel_.object());
}

}  // namespace ks
