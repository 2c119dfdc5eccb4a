#include "common/bpf_util.h"

#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>

#include "common/log.h"
#include "common/pins.h"

namespace ks {

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

}  // namespace ks
