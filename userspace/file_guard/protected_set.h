// The protected objects as the kernel matches them: every inode of the
// protected trees, and the edge graph from "/" down to each protected root
// (also through bind mounts of protected directories).
#pragma once

#include <killswitch/abi/events.h>
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "policy/compile.h"

namespace ks {

uint64_t name_hash(const std::string& name);  // FNV-1a 64, as the BPF side
uint64_t kernel_dev(dev_t dev);               // st_dev -> the kernel's s_dev encoding

struct ProtectedRoot {
    std::string path;       // as configured
    std::string real_path;  // canonical
    uint32_t rule_id = 0;
    uint64_t dev = 0;  // kernel encoding
    uint64_t ino = 0;
    bool self = false;    // killswitch's own object (Entry::self)
    bool system = false;  // protect.system (Entry::system)
    // On procfs or sysfs: only the root is published, its tree is not walked
    // (thousands of entries, and procfs makes its inodes anew). Every layer
    // matches what lies below a protected directory by walking up to it.
    bool shallow = false;
    // A database's data (not killswitch's own, not protect.system's, not
    // procfs or sysfs): what the space budget keeps room for, and whose file
    // system a remount reaches.
    [[nodiscard]] bool data() const { return !self && !system && !shallow; }
};

struct InodeKeyLess {
    bool operator()(const ks_inode_key& a, const ks_inode_key& b) const {
        return a.dev != b.dev ? a.dev < b.dev : a.ino < b.ino;
    }
};
struct EdgeKeyLess {
    bool operator()(const ks_edge_key& a, const ks_edge_key& b) const {
        if (a.dev != b.dev) return a.dev < b.dev;
        if (a.ino != b.ino) return a.ino < b.ino;
        return a.name_hash < b.name_hash;
    }
};

// What user space knows about a path, for the exec rules and the records.
struct PathVerdict {
    std::string resolved;   // canonical path (as far as it exists)
    bool inside = false;    // the object is protected or lies in a protected tree
    bool contains = false;  // a protected root lies below it (recursive operations reach it)
    uint32_t rule_id = 0;
    std::string root;           // the protected root concerned
    bool block_device = false;  // the path reaches a block device node
};

// A protected path whose object is not the one the set was built with.
struct RootChange {
    enum class Kind {
        kAppeared,  // it did not exist when the set was built
        kGone,      // it was removed or moved away
        kReplaced,  // it exists, but is another object (made anew, or a link changed)
    };
    std::string path;  // as configured
    uint32_t rule_id = 0;
    Kind kind = Kind::kAppeared;
    bool system = false;  // protect.system
};
std::string_view root_change_name(RootChange::Kind k);

class ProtectedSet {
  public:
    // A root and its rule (policy/compile.h): compile() lists them.
    using Entry = policy::ProtectEntry;
    // Resolves the roots and walks the trees. Missing roots are reported in
    // warnings and skipped. Inside a tree, directories and files of several
    // names (hard links) are held by inode; a file of one name is found
    // through its directory (every layer walks up to it), so that no inode
    // number a database frees and the file system hands out again elsewhere
    // stays protected. max_inodes bounds the walk: deeper objects are still
    // protected through their directories, only their other hard links are not.
    static ProtectedSet build(const std::vector<Entry>& entries, size_t max_inodes,
                              std::vector<std::string>& warnings,
                              const std::string& mountinfo = "/proc/self/mountinfo");

    [[nodiscard]] const std::vector<ProtectedRoot>& roots() const { return roots_; }
    [[nodiscard]] const std::map<ks_inode_key, uint32_t, InodeKeyLess>& inodes() const {
        return inodes_;
    }
    [[nodiscard]] const std::map<ks_edge_key, ks_inode_key, EdgeKeyLess>& edges() const {
        return edges_;
    }
    [[nodiscard]] bool truncated() const { return truncated_; }
    // Inodes an allow window must never cover: those of the self entries'
    // trees, and protected directories on the way down to a self entry (a
    // path walk stops at the first protected directory it meets).
    [[nodiscard]] bool no_window(const ks_inode_key& key) const { return no_window_.count(key); }
    // The directories above each root ("/" included), with the rule of the
    // first root found below them: moving one away or mounting over it takes
    // the root along. Protected directories are not in it.
    [[nodiscard]] const std::map<ks_inode_key, uint32_t, InodeKeyLess>& ancestors() const {
        return ancestors_;
    }

    // Classifies a path. With follow_last false the final component is not
    // followed if it is a symlink (rm removes the link, not its target).
    [[nodiscard]] PathVerdict classify(const std::string& abs_path, bool follow_last) const;
    [[nodiscard]] const ProtectedRoot* root_of_rule(uint32_t rule_id) const;
    // The entries whose path now names another object than the one this set
    // holds (or none, or one where it held none): the set must be built
    // again for them to be protected as they are now.
    [[nodiscard]] std::vector<RootChange> changes(const std::vector<Entry>& entries) const;
    // A resolved path that is, is inside, or contains one of the self entries.
    [[nodiscard]] bool touches_self(const std::string& resolved) const;
    // True when a directory (or a file of several names) of the trees is
    // gone or another object now: its inode number may be given to a new,
    // unprotected object anywhere on the file system, which the kernel would
    // then take for protected data. The set must be built again (a second
    // at most after the removal; a file of one name is never in the set,
    // its directory is).
    [[nodiscard]] bool stale() const;

  private:
    void add_edges_to(const std::string& real_path, const ks_inode_key& target);

    std::vector<ProtectedRoot> roots_;
    std::map<ks_inode_key, uint32_t, InodeKeyLess> inodes_;
    std::map<ks_edge_key, ks_inode_key, EdgeKeyLess> edges_;
    std::set<ks_inode_key, InodeKeyLess> no_window_;
    std::map<ks_inode_key, uint32_t, InodeKeyLess> ancestors_;
    // What the walk put in inodes_, by path (roots apart): stale() checks it.
    std::vector<std::pair<std::string, ks_inode_key>> walked_;
    bool truncated_ = false;
};

}  // namespace ks
