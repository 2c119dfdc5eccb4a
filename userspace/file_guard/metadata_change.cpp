#include "file_guard/metadata_change.h"

#include <fcntl.h>
#include <sys/xattr.h>

#include "common/fnv.h"
#include "file_guard/file_guard_decide.h"

namespace ks {

namespace {

constexpr uint32_t kKeep = static_cast<uint32_t>(-1);

bool nofollow(const FileEvent& ev) { return ev.meta.at_flags & AT_SYMLINK_NOFOLLOW; }

}  // namespace

bool meta_change_is_noop(uint32_t op, const MetaArgs& m, const struct stat& st, bool has_caps) {
    if (op == KS_OP_CHMOD) return (st.st_mode & 07777) == (m.mode & 07777);
    if (op != KS_OP_CHOWN) return false;
    bool same = (m.uid == kKeep || m.uid == st.st_uid) && (m.gid == kKeep || m.gid == st.st_gid);
    bool clears = !S_ISDIR(st.st_mode) && ((st.st_mode & (S_ISUID | S_ISGID)) || has_caps);
    return same && !clears;
}

std::string meta_object_path(const FileEvent& ev) {
    // fchmod, fchown (no path), or AT_EMPTY_PATH: the fd itself.
    if (ev.upath == 0 || (ev.path.empty() && (ev.meta.at_flags & AT_EMPTY_PATH)))
        return caller_path(ev.hdr.pid, ev.dfd, "");
    return ev.path.empty() ? "" : caller_path(ev.hdr.pid, ev.dfd, ev.path);
}

Result<bool> meta_unchanged(const FileEvent& ev) {
    if (ev.op != KS_OP_CHMOD && ev.op != KS_OP_CHOWN) return false;
    std::string path = meta_object_path(ev);
    if (path.empty()) return make_error("no object to look at");
    struct stat st {};
    int flags = nofollow(ev) ? AT_SYMLINK_NOFOLLOW : 0;
    if (::fstatat(AT_FDCWD, path.c_str(), &st, flags) != 0) return sys_error("stat " + path);
    bool has_caps = false;
    if (ev.op == KS_OP_CHOWN && S_ISREG(st.st_mode)) {
        ssize_t n = nofollow(ev) ? ::lgetxattr(path.c_str(), "security.capability", nullptr, 0)
                                 : ::getxattr(path.c_str(), "security.capability", nullptr, 0);
        has_caps = n >= 0;
    }
    return meta_change_is_noop(ev.op, ev.meta, st, has_caps);
}

ks_meta_ticket meta_ticket(const FileEvent& ev, uint64_t deadline_boot_ns) {
    ks_meta_ticket t{};
    t.op = ev.op;
    t.dfd = ev.dfd;
    t.args = {ev.meta.mode, ev.meta.uid, ev.meta.gid, ev.meta.at_flags};
    t.upath = ev.upath;
    t.path_hash = ev.upath ? fnv1a(ev.path) : 0;
    t.deadline_ns = deadline_boot_ns;
    return t;
}

}  // namespace ks
