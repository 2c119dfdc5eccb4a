#include "file_guard/protected_set.h"

#include <ftw.h>
#include <limits.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "common/fnv.h"

namespace ks {
namespace {

std::vector<std::string> split_components(const std::string& path) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : path) {
        if (c == '/') {
            if (!cur.empty()) out.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    if (!cur.empty()) out.push_back(cur);
    return out;
}

std::optional<ks_inode_key> key_of(const std::string& path, bool follow) {
    struct stat st {};
    if ((follow ? ::stat(path.c_str(), &st) : ::lstat(path.c_str(), &st)) != 0) return std::nullopt;
    return ks_inode_key{kernel_dev(st.st_dev), static_cast<uint64_t>(st.st_ino)};
}

bool under(const std::string& path, const std::string& root) {
    if (root == "/") return true;
    return path == root || (path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
                            path[root.size()] == '/');
}

// nftw has no user pointer: the walk in progress.
struct Walk {
    std::map<ks_inode_key, uint32_t, InodeKeyLess>* inodes;
    uint32_t rule_id;
    size_t max;
    bool truncated;
    std::set<ks_inode_key, InodeKeyLess>* no_window;  // null unless a self entry
    std::vector<std::pair<std::string, ks_inode_key>>* walked;
};
thread_local Walk* g_walk = nullptr;

int visit(const char* path, const struct stat* st, int, struct FTW* ftw) {
    // The root is held apart (build); a file of one name through its
    // directory.
    if (ftw->level == 0 || (!S_ISDIR(st->st_mode) && st->st_nlink <= 1)) return 0;
    if (g_walk->inodes->size() >= g_walk->max) {
        g_walk->truncated = true;
        return 1;
    }
    ks_inode_key k{kernel_dev(st->st_dev), static_cast<uint64_t>(st->st_ino)};
    g_walk->inodes->emplace(k, g_walk->rule_id);
    g_walk->walked->emplace_back(path, k);
    if (g_walk->no_window) g_walk->no_window->insert(k);
    return 0;
}

// Canonical path of the longest existing prefix, plus the rest as given.
std::string resolve_existing(const std::string& path, bool follow_last) {
    auto comps = split_components(path);
    std::string out = "/";
    for (size_t i = 0; i < comps.size(); ++i) {
        const std::string& c = comps[i];
        if (c == ".") continue;
        if (c == "..") {
            auto pos = out.find_last_of('/');
            out = pos == 0 ? "/" : out.substr(0, pos);
            continue;
        }
        std::string next = (out == "/" ? "" : out) + "/" + c;
        bool last = i + 1 == comps.size();
        struct stat st {};
        if (::lstat(next.c_str(), &st) != 0) {
            // The rest does not exist: keep it as written.
            for (size_t j = i; j < comps.size(); ++j)
                out = (out == "/" ? "" : out) + "/" + comps[j];
            return out;
        }
        if (S_ISLNK(st.st_mode) && (!last || follow_last)) {
            char buf[PATH_MAX];
            if (::realpath(next.c_str(), buf)) {
                out = buf;
                continue;
            }
        }
        out = next;
    }
    return out;
}

// Calls fn with the key of each directory above root, "/" included, under
// its real path and under the spelling the policy gave.
template <typename Fn>
void for_each_directory_above(const ProtectedRoot& root, Fn fn) {
    for (const std::string& spelling : {root.real_path, resolve_existing(root.path, false)}) {
        std::string p = spelling;
        while (p.size() > 1) {
            auto pos = p.find_last_of('/');
            p = pos == 0 ? "/" : p.substr(0, pos);
            if (auto key = key_of(p, true)) fn(*key);
        }
    }
}

// procfs or sysfs: a root there is published alone, its tree not walked.
bool on_kernel_fs(const std::string& path) {
    struct statfs fs {};
    if (::statfs(path.c_str(), &fs) != 0) return false;
    return fs.f_type == PROC_SUPER_MAGIC || fs.f_type == SYSFS_MAGIC;
}

}  // namespace

uint64_t name_hash(const std::string& name) { return fnv1a(name); }

uint64_t kernel_dev(dev_t dev) {
    return (static_cast<uint64_t>(major(dev)) << 20) | static_cast<uint64_t>(minor(dev));
}

void ProtectedSet::add_edges_to(const std::string& real_path, const ks_inode_key& target) {
    auto comps = split_components(real_path);
    std::string cur = "/";
    auto parent = key_of("/", true);
    for (size_t i = 0; i < comps.size() && parent; ++i) {
        std::string next = (cur == "/" ? "" : cur) + "/" + comps[i];
        auto child =
            i + 1 == comps.size() ? std::optional<ks_inode_key>(target) : key_of(next, true);
        if (!child) return;
        edges_[ks_edge_key{parent->dev, parent->ino, name_hash(comps[i])}] = *child;
        parent = child;
        cur = next;
    }
}

ProtectedSet ProtectedSet::build(const std::vector<Entry>& entries, size_t max_inodes,
                                 std::vector<std::string>& warnings, const std::string& mountinfo) {
    ProtectedSet set;
    for (const auto& e : entries) {
        char buf[PATH_MAX];
        if (!::realpath(e.path.c_str(), buf)) {
            // A system path the host does not have (no cron, no systemd):
            // nothing to say.
            if (!e.system)
                warnings.push_back("protected path " + e.path +
                                   " does not exist yet: protected once it appears");
            continue;
        }
        auto key = key_of(buf, true);
        if (!key) continue;
        ProtectedRoot root{e.path, buf, e.rule_id, key->dev, key->ino, e.self};
        root.shallow = on_kernel_fs(buf);
        root.system = e.system;
        set.roots_.push_back(std::move(root));
    }
    for (const auto& r : set.roots_) {
        if (!r.shallow) {
            Walk w{&set.inodes_, r.rule_id, max_inodes, false, r.self ? &set.no_window_ : nullptr,
                   &set.walked_};
            g_walk = &w;
            ::nftw(r.real_path.c_str(), visit, 64, FTW_PHYS);
            g_walk = nullptr;
            if (w.truncated) set.truncated_ = true;
        }
        // The root itself always, whatever the bound.
        set.inodes_[ks_inode_key{r.dev, r.ino}] = r.rule_id;
        set.add_edges_to(r.real_path, ks_inode_key{r.dev, r.ino});
        if (r.real_path != r.path) {
            // The configured path is a symlink (or has one above it): its
            // spelling leads there too.
            set.add_edges_to(resolve_existing(r.path, false), ks_inode_key{r.dev, r.ino});
        }
    }
    for (const auto& r : set.roots_) {
        // The directories above each root are its ancestors; those that are
        // protected themselves, above a self entry, are never in a window (a
        // path walked from "/" meets them first).
        if (r.self) set.no_window_.insert(ks_inode_key{r.dev, r.ino});
        for_each_directory_above(r, [&](const ks_inode_key& key) {
            if (!set.inodes_.count(key))
                set.ancestors_.emplace(key, r.rule_id);
            else if (r.self)
                set.no_window_.insert(key);
        });
    }
    if (set.truncated_)
        warnings.push_back("more than " + std::to_string(max_inodes) +
                           " protected files: the rest are protected through their directories, "
                           "but hard links to them elsewhere are not recognised");
    // Bind mounts whose root is a protected directory (or one inside it).
    std::ifstream in(mountinfo);
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream ls(line);
        std::string id, parent, majmin, root, mount_point;
        if (!(ls >> id >> parent >> majmin >> root >> mount_point)) continue;
        auto key = key_of(mount_point, true);
        if (!key) continue;
        // Its root is protected, or a directory above protected data: the
        // edges below it lead on from its inode.
        if (set.inodes_.count(*key) || set.ancestors_.count(*key))
            set.add_edges_to(mount_point, *key);
    }
    return set;
}

PathVerdict ProtectedSet::classify(const std::string& abs_path, bool follow_last) const {
    PathVerdict v;
    v.resolved = resolve_existing(abs_path, follow_last);
    struct stat st {};
    v.block_device = ::stat(v.resolved.c_str(), &st) == 0 && S_ISBLK(st.st_mode);
    for (const auto& r : roots_) {
        if (under(v.resolved, r.real_path)) {
            v.inside = true;
            v.rule_id = r.rule_id;
            v.root = r.path;
            return v;
        }
        if (under(r.real_path, v.resolved)) {
            v.contains = true;
            v.rule_id = r.rule_id;
            v.root = r.path;
        }
    }
    // A name outside the trees for a protected inode (hard link), or a path
    // through a bind mount: ask the inodes, this one and its directories.
    std::string p = v.resolved;
    bool first = true;
    while (!p.empty()) {
        auto key = key_of(p, first ? follow_last : true);
        first = false;
        if (key) {
            auto it = inodes_.find(*key);
            if (it != inodes_.end()) {
                v.inside = true;
                v.contains = false;
                v.rule_id = it->second;
                if (const auto* r = root_of_rule(it->second)) v.root = r->path;
                return v;
            }
        }
        if (p == "/") break;
        auto pos = p.find_last_of('/');
        p = pos == 0 ? "/" : p.substr(0, pos);
    }
    return v;
}

bool ProtectedSet::touches_self(const std::string& resolved) const {
    return std::any_of(roots_.begin(), roots_.end(), [&](const ProtectedRoot& r) {
        return r.self && (under(resolved, r.real_path) || under(r.real_path, resolved));
    });
}

std::string_view root_change_name(RootChange::Kind k) {
    switch (k) {
        case RootChange::Kind::kAppeared:
            return "appeared";
        case RootChange::Kind::kGone:
            return "gone";
        case RootChange::Kind::kReplaced:
            return "replaced";
    }
    return "unknown";
}

std::vector<RootChange> ProtectedSet::changes(const std::vector<Entry>& entries) const {
    std::vector<RootChange> out;
    for (const auto& e : entries) {
        const ProtectedRoot* held = nullptr;
        for (const auto& r : roots_)
            if (r.path == e.path && r.rule_id == e.rule_id) held = &r;
        char buf[PATH_MAX];
        std::optional<ks_inode_key> now;
        if (::realpath(e.path.c_str(), buf)) now = key_of(buf, true);
        RootChange c{e.path, e.rule_id, RootChange::Kind::kAppeared, e.system};
        if (now && !held) {
            out.push_back(c);
        } else if (!now && held) {
            c.kind = RootChange::Kind::kGone;
            out.push_back(c);
        } else if (now && held &&
                   (now->dev != held->dev || now->ino != held->ino || held->real_path != buf)) {
            c.kind = RootChange::Kind::kReplaced;
            out.push_back(c);
        }
    }
    return out;
}

bool ProtectedSet::stale() const {
    return std::any_of(walked_.begin(), walked_.end(), [](const auto& w) {
        struct stat st {};
        return ::lstat(w.first.c_str(), &st) != 0 || kernel_dev(st.st_dev) != w.second.dev ||
               static_cast<uint64_t>(st.st_ino) != w.second.ino;
    });
}

const ProtectedRoot* ProtectedSet::root_of_rule(uint32_t rule_id) const {
    for (const auto& r : roots_)
        if (r.rule_id == rule_id) return &r;
    return nullptr;
}

}  // namespace ks
