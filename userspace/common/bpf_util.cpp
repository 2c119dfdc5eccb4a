#include "common/bpf_util.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <killswitch/abi/events.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <thread>

#include "common/log.h"
#include "common/pins.h"

namespace ks {

std::optional<int> kernel_enum_value(const char* enum_name, const char* enumerator) {
    btf* vmlinux = btf__load_vmlinux_btf();
    if (!vmlinux) return std::nullopt;
    std::optional<int> out;
    int id = btf__find_by_name_kind(vmlinux, enum_name, BTF_KIND_ENUM);
    if (id > 0) {
        const btf_type* t = btf__type_by_id(vmlinux, static_cast<uint32_t>(id));
        const struct btf_enum* e = btf_enum(t);
        for (uint16_t i = 0; i < btf_vlen(t); ++i, ++e)
            if (std::string_view(btf__name_by_offset(vmlinux, e->name_off)) == enumerator)
                out = e->val;
    }
    btf__free(vmlinux);
    return out;
}

bool kernel_has_function(const char* name) {
    btf* vmlinux = btf__load_vmlinux_btf();
    if (!vmlinux) return false;
    bool found = btf__find_by_name_kind(vmlinux, name, BTF_KIND_FUNC) > 0;
    btf__free(vmlinux);
    return found;
}

Status share_maps(bpf_object* dst, bpf_object* src) {
    bpf_map* m = nullptr;
    bpf_object__for_each_map(m, dst) {
        bpf_map* from = bpf_object__find_map_by_name(src, bpf_map__name(m));
        if (!from || bpf_map__type(from) != bpf_map__type(m)) continue;
        if (int err = bpf_map__reuse_fd(m, bpf_map__fd(from)))
            return sys_error(std::string("share map ") + bpf_map__name(m), -err);
    }
    return {};
}

void attach_uprobes(const std::string& binary, const std::vector<UprobeSpec>& specs,
                    std::vector<bpf_link*>& links, std::vector<std::string>& names) {
    for (const auto& s : specs) {
        LIBBPF_OPTS(bpf_uprobe_opts, opts);
        opts.func_name = s.symbol;
        opts.retprobe = s.retprobe;
        bpf_link* link = bpf_program__attach_uprobe_opts(s.prog, -1, binary.c_str(), 0, &opts);
        if (!link) {
            spdlog::warn("uprobe on {}:{}: {}", binary, s.symbol, std::strerror(errno));
            continue;
        }
        links.push_back(link);
        pins::pin_link(link, std::string(bpf_program__name(s.prog)) + "@" + s.symbol +
                                 (s.retprobe ? ".ret" : ""));
        names.emplace_back(std::string(s.symbol) + (s.retprobe ? " (return)" : ""));
    }
}

void destroy_links(std::vector<bpf_link*>& links) {
    for (auto* l : links) bpf_link__destroy(l);
    links.clear();
}

void detach_links(std::vector<bpf_link*>& links) {
    for (auto* l : links) pins::unpin_link(l);
    destroy_links(links);
}

std::vector<std::string> program_names(bpf_object* obj) {
    std::vector<std::string> out;
    bpf_program* prog = nullptr;
    bpf_object__for_each_program(prog, obj) {
        if (bpf_program__autoload(prog)) out.emplace_back(bpf_program__name(prog));
    }
    return out;
}

Status check_tracepoints(bpf_object* obj) {
    bpf_program* prog = nullptr;
    bpf_object__for_each_program(prog, obj) {
        if (!bpf_program__autoload(prog)) continue;
        std::string sec = bpf_program__section_name(prog);
        if (sec.rfind("tp/", 0) != 0) continue;
        std::string dir = "/sys/kernel/tracing/events/" + sec.substr(3);
        if (::access(dir.c_str(), F_OK) != 0)
            return sys_error("tracepoint " + sec.substr(3) + " (is tracefs mounted?)");
    }
    return {};
}

Status attach_layer(bpf_object_skeleton* s, const char* what, std::thread& pending) {
    // The kernel refuses a program twice on one tracepoint (EEXIST): the
    // previous detach must be over.
    if (pending.joinable()) pending.join();
    if (int err = bpf_object__attach_skeleton(s))
        return sys_error(std::string("attach ") + what, -err);
    pins::pin_skeleton_links(s);
    return {};
}

void detach_layer(bpf_object_skeleton* s, std::vector<bpf_link*>& uprobes,
                  std::vector<std::string>& names, std::thread& pending) {
    if (pending.joinable()) pending.join();
    std::vector<bpf_link*> all = std::move(uprobes);
    uprobes.clear();
    names.clear();
    for (int i = 0; i < s->prog_cnt; ++i) {
        if (bpf_link* l = *s->progs[i].link) {
            all.push_back(l);
            *s->progs[i].link = nullptr;
        }
    }
    for (auto* l : all) pins::unpin_link(l);
    // Each detach waits for the kernel's RCU grace periods (uprobes and
    // tracepoints: hundreds of milliseconds apiece here), seconds for a whole
    // layer: not on the event loop. Until this thread gets to a link its
    // program may still run, with nothing guarded: harmless.
    pending = std::thread([all = std::move(all)] {
        for (auto* l : all) bpf_link__destroy(l);
    });
}

bool is_syscall_tracepoint(const char* section) {
    return std::strncmp(section, "tp/syscalls/", 12) == 0;
}

Status attach_programs(bpf_object_skeleton* s, bool (*part)(const char* section), const char* what,
                       std::thread& pending) {
    if (pending.joinable()) pending.join();
    for (int i = 0; i < s->prog_cnt; ++i) {
        bpf_program* prog = *s->progs[i].prog;
        bpf_link** link = s->progs[i].link;
        // Not loaded (autoload off: a part the policy does not use, such as
        // the space budget's with min_free off): nothing to attach.
        if (*link || !bpf_program__autoload(prog) || !bpf_program__autoattach(prog) ||
            !part(bpf_program__section_name(prog)))
            continue;
        bpf_link* l = bpf_program__attach(prog);
        if (!l) return sys_error(std::string("attach ") + what + " " + s->progs[i].name, errno);
        *link = l;
        pins::pin_link(l, std::string(s->name) + "." + s->progs[i].name);
    }
    return {};
}

void detach_programs(bpf_object_skeleton* s, bool (*part)(const char* section),
                     std::thread& pending) {
    if (pending.joinable()) pending.join();
    std::vector<bpf_link*> links;
    for (int i = 0; i < s->prog_cnt; ++i) {
        bpf_link** link = s->progs[i].link;
        if (!*link || !part(bpf_program__section_name(*s->progs[i].prog))) continue;
        pins::unpin_link(*link);
        links.push_back(*link);
        *link = nullptr;
    }
    pending = std::thread([links = std::move(links)] {
        for (auto* l : links) bpf_link__destroy(l);
    });
}

Status replace_u32_set(int fd, const std::vector<uint32_t>& keys, const std::string& what) {
    uint32_t key = 0, next = 0;
    std::vector<uint32_t> old;
    uint32_t* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
        old.push_back(next);
        key = next;
        prev = &key;
    }
    for (auto k : old) bpf_map_delete_elem(fd, &k);
    for (auto k : keys) {
        uint32_t one = 1;
        if (bpf_map_update_elem(fd, &k, &one, BPF_ANY))
            return sys_error("add " + std::to_string(k) + " to " + what);
    }
    return {};
}

Status replace_comm_set(int fd, const std::vector<std::string>& names, const std::string& what) {
    using Key = std::array<char, KS_COMM_LEN>;
    Key key{}, next{};
    std::vector<Key> old;
    Key* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, next.data()) == 0) {
        old.push_back(next);
        key = next;
        prev = &key;
    }
    for (auto& k : old) bpf_map_delete_elem(fd, k.data());
    for (const auto& name : names) {
        Key k{};
        // The kernel's comm keeps the first 15 bytes of the basename.
        std::memcpy(k.data(), name.data(), std::min(name.size(), k.size() - 1));
        uint32_t one = 1;
        if (bpf_map_update_elem(fd, k.data(), &one, BPF_ANY) != 0)
            return sys_error("add program name '" + name + "' to " + what);
    }
    return {};
}

}  // namespace ks
