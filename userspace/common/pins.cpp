#include "common/pins.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/fd.h"
#include "common/fnv.h"
#include "common/log.h"

namespace ks::pins {
namespace {

// The maps whose contents must survive the daemon: who is guarded, what the
// kernel reported and nobody has read yet, counters, approved passes, the
// guarded database connections and their protocol state. Every other map is
// configuration, written anew by each daemon from its policy.
constexpr const char* kStateMaps[] = {"guarded_tasks", "events",       "counters",
                                      "passes",        "db_socks",     "db_sock_state",
                                      "libpq_connecting"};

struct State {
    bool enabled = false;
    std::string dir;
    std::string build;
    uint64_t generation = 0;
    bool adopted = false;
} g;

std::string state_dir() { return g.dir + "/state-" + g.build; }
std::string links_dir() { return g.dir + "/links-" + std::to_string(g.generation); }

std::vector<std::string> entries(const std::string& dir) {
    std::vector<std::string> out;
    if (DIR* d = ::opendir(dir.c_str())) {
        while (dirent* e = ::readdir(d)) {
            std::string n = e->d_name;
            if (n != "." && n != "..") out.push_back(n);
        }
        ::closedir(d);
    }
    std::sort(out.begin(), out.end());
    return out;
}

// Removes the files of one directory, then the directory; returns how many
// files went.
size_t remove_dir(const std::string& dir) {
    size_t n = 0;
    for (const auto& e : entries(dir)) {
        std::string p = dir + "/" + e;
        if (::unlink(p.c_str()) == 0)
            ++n;
        else
            spdlog::warn("remove {}: {}", p, std::strerror(errno));
    }
    if (::rmdir(dir.c_str()) != 0 && errno != ENOENT)
        spdlog::warn("remove {}: {}", dir, std::strerror(errno));
    return n;
}

bool compatible(int fd, bpf_map* m) {
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return false;
    return info.type == static_cast<uint32_t>(bpf_map__type(m)) &&
           info.key_size == bpf_map__key_size(m) && info.value_size == bpf_map__value_size(m) &&
           info.max_entries == bpf_map__max_entries(m) && info.map_flags == bpf_map__map_flags(m);
}

}  // namespace

Found scan(const std::string& dir) {
    Found f;
    for (const auto& e : entries(dir)) {
        if (e.rfind("state-", 0) == 0) {
            f.builds.push_back(e.substr(6));
        } else if (e.rfind("links-", 0) == 0) {
            char* end = nullptr;
            uint64_t gen = std::strtoull(e.c_str() + 6, &end, 10);
            if (end && *end == '\0') f.generations.push_back(gen);
            f.links += entries(dir + "/" + e).size();
        }
    }
    std::sort(f.generations.begin(), f.generations.end());
    return f;
}

std::string build_id(const std::vector<std::string_view>& objects) {
    uint64_t h = KS_FNV_OFFSET;
    for (auto o : objects) {
        for (unsigned char c : o) h = (h ^ c) * KS_FNV_PRIME;
        h = (h ^ 0xff) * KS_FNV_PRIME;  // object boundary
    }
    char buf[17];
    std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
    return buf;
}

Status enable(const std::string& dir, const std::string& build) {
    if (dir.find('.') != std::string::npos)
        return Error{0, "pin directory " + dir + ": bpffs names cannot contain '.'"};
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
        return sys_error("create pin directory " + dir);
    Found f = scan(dir);
    g.dir = dir;
    g.build = build;
    g.generation = f.generations.empty() ? 1 : f.generations.back() + 1;
    g.adopted = std::find(f.builds.begin(), f.builds.end(), build) != f.builds.end();
    if (::mkdir(state_dir().c_str(), 0700) != 0 && errno != EEXIST)
        return sys_error("create " + state_dir());
    if (::mkdir(links_dir().c_str(), 0700) != 0) return sys_error("create " + links_dir());
    g.enabled = true;
    return {};
}

bool enabled() { return g.enabled; }
const std::string& dir() { return g.dir; }
uint64_t generation() { return g.generation; }
bool state_adopted() { return g.adopted; }

Result<size_t> use_state_maps(bpf_object* obj) {
    if (!g.enabled) return size_t{0};
    size_t reused = 0;
    bpf_map* m = nullptr;
    bpf_object__for_each_map(m, obj) {
        std::string name = bpf_map__name(m);
        if (std::find_if(std::begin(kStateMaps), std::end(kStateMaps),
                         [&](const char* s) { return name == s; }) == std::end(kStateMaps))
            continue;
        if (bpf_map__fd(m) >= 0) continue;  // shared from an object loaded before
        std::string path = state_dir() + "/" + name;
        Fd old(bpf_obj_get(path.c_str()));
        if (old.valid()) {
            if (compatible(old.get(), m)) {
                ++reused;
            } else {
                spdlog::warn("pinned map {} does not fit this build: replaced (its state is lost)",
                             path);
                ::unlink(path.c_str());
            }
        }
        if (int err = bpf_map__set_pin_path(m, path.c_str()))
            return sys_error("pin path for map " + name, -err);
    }
    return reused;
}

namespace {
std::string link_pin_path(const std::string& name) {
    std::string safe = name;
    // bpffs refuses names with a dot (EPERM): they are reserved.
    for (char& c : safe)
        if (c == '/' || c == ' ' || c == '.') c = '-';
    return links_dir() + "/" + safe;
}
}  // namespace

void pin_link(bpf_link* link, const std::string& name) {
    if (!g.enabled || !link) return;
    std::string path = link_pin_path(name);
    if (int err = bpf_link__pin(link, path.c_str()))
        spdlog::warn("pin {}: {} (the program stays attached only while the daemon runs)", path,
                     std::strerror(-err));
}

void pin_fd(int link_fd, const std::string& name) {
    if (!g.enabled || link_fd < 0) return;
    std::string path = link_pin_path(name);
    if (bpf_obj_pin(link_fd, path.c_str()) != 0)
        spdlog::warn("pin {}: {} (the program stays attached only while the daemon runs)", path,
                     std::strerror(errno));
}

void unpin_name(const std::string& name) {
    if (!g.enabled) return;
    ::unlink(link_pin_path(name).c_str());
}

void pin_skeleton_links(const bpf_object_skeleton* s) {
    if (!g.enabled) return;
    for (int i = 0; i < s->prog_cnt; ++i) {
        bpf_link* l = *s->progs[i].link;
        if (l) pin_link(l, std::string(s->name) + "." + s->progs[i].name);
    }
}

void unpin_link(bpf_link* link) {
    if (link && bpf_link__pin_path(link)) bpf_link__unpin(link);
}

size_t retire_previous() {
    if (!g.enabled) return 0;
    size_t n = 0;
    Found f = scan(g.dir);
    for (uint64_t gen : f.generations)
        if (gen != g.generation) n += remove_dir(g.dir + "/links-" + std::to_string(gen));
    for (const auto& b : f.builds)
        if (b != g.build) remove_dir(g.dir + "/state-" + b);
    return n;
}

Result<size_t> remove_all(const std::string& dir) {
    struct stat st{};
    if (::stat(dir.c_str(), &st) != 0) {
        if (errno == ENOENT) return size_t{0};
        return sys_error("stat " + dir);
    }
    size_t n = 0;
    for (const auto& e : entries(dir)) {
        std::string p = dir + "/" + e;
        struct stat es{};
        if (::lstat(p.c_str(), &es) == 0 && S_ISDIR(es.st_mode))
            n += remove_dir(p);
        else if (::unlink(p.c_str()) == 0)
            ++n;
    }
    if (::rmdir(dir.c_str()) != 0) return sys_error("remove " + dir);
    return n;
}

}  // namespace ks::pins
