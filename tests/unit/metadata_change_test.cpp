// chmod and chown that change nothing (file_guard/metadata_change.h): what
// counts as no change, where the daemon looks for the object, and the
// ticket the syscall tracepoint checks. Real files of the test's own.
#include "file_guard/metadata_change.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/fnv.h"

namespace ks {
namespace {

constexpr uint32_t kKeep = static_cast<uint32_t>(-1);

struct stat file_with(mode_t mode, uid_t uid = 70, gid_t gid = 70) {
    struct stat st {};
    st.st_mode = mode;
    st.st_uid = uid;
    st.st_gid = gid;
    return st;
}

TEST(MetadataChange, AChmodToTheBitsAFileHasChangesNothing) {
    auto st = file_with(S_IFREG | 0600);
    EXPECT_TRUE(meta_change_is_noop(KS_OP_CHMOD, {.mode = 0600}, st, false));
    EXPECT_FALSE(meta_change_is_noop(KS_OP_CHMOD, {.mode = 0000}, st, false));
    EXPECT_FALSE(meta_change_is_noop(KS_OP_CHMOD, {.mode = 0644}, st, false));
    EXPECT_FALSE(meta_change_is_noop(KS_OP_CHMOD, {.mode = 04600}, st, false)) << "set-user-ID";
    // Only the permission bits count: the type is not the call's to change.
    EXPECT_TRUE(meta_change_is_noop(KS_OP_CHMOD, {.mode = S_IFREG | 0600}, st, false));
}

TEST(MetadataChange, AChownToTheOwnerAFileHasChangesNothingUnlessItClearsBits) {
    auto st = file_with(S_IFREG | 0600);
    EXPECT_TRUE(meta_change_is_noop(KS_OP_CHOWN, {.uid = 70, .gid = 70}, st, false));
    EXPECT_TRUE(meta_change_is_noop(KS_OP_CHOWN, {.uid = 70, .gid = kKeep}, st, false));
    EXPECT_TRUE(meta_change_is_noop(KS_OP_CHOWN, {.uid = kKeep, .gid = kKeep}, st, false));
    EXPECT_FALSE(meta_change_is_noop(KS_OP_CHOWN, {.uid = 65534, .gid = kKeep}, st, false));
    EXPECT_FALSE(meta_change_is_noop(KS_OP_CHOWN, {.uid = kKeep, .gid = 0}, st, false));
    // The kernel clears set-user-ID, set-group-ID and file capabilities of a
    // file on any chown: not nothing.
    EXPECT_FALSE(meta_change_is_noop(KS_OP_CHOWN, {.uid = 70, .gid = 70},
                                     file_with(S_IFREG | 04755), false));
    EXPECT_FALSE(meta_change_is_noop(KS_OP_CHOWN, {.uid = 70, .gid = 70},
                                     file_with(S_IFREG | 02755), false));
    EXPECT_FALSE(meta_change_is_noop(KS_OP_CHOWN, {.uid = 70, .gid = 70}, st, true));
    // A directory keeps them.
    EXPECT_TRUE(meta_change_is_noop(KS_OP_CHOWN, {.uid = 70, .gid = 70},
                                    file_with(S_IFDIR | 02700), false));
    EXPECT_FALSE(meta_change_is_noop(KS_OP_UNLINK, {}, st, false));
}

FileEvent meta_event(uint32_t op, const std::string& path, int dfd = AT_FDCWD) {
    FileEvent ev;
    ev.hdr.pid = ::getpid();
    ev.hdr.tid = ::getpid();
    ev.op = op;
    ev.layer = KS_LAYER_UPROBE;
    ev.flags = KS_FF_ASK | KS_FF_STOPPED;
    ev.dfd = dfd;
    ev.path = path;
    ev.upath = 0x7ffd1000;
    ev.meta = {.mode = 0, .uid = kKeep, .gid = kKeep, .at_flags = 0};
    return ev;
}

TEST(MetadataChange, TheObjectIsReachedThroughTheCallersProc) {
    std::string proc = "/proc/" + std::to_string(::getpid());
    EXPECT_EQ(meta_object_path(meta_event(KS_OP_CHMOD, "/srv/data/PG_VERSION")),
              proc + "/root/srv/data/PG_VERSION");
    EXPECT_EQ(meta_object_path(meta_event(KS_OP_CHMOD, "base/1")), proc + "/cwd/base/1");
    EXPECT_EQ(meta_object_path(meta_event(KS_OP_CHOWN, "1259", 7)), proc + "/fd/7/1259");
    FileEvent by_fd = meta_event(KS_OP_CHOWN, "", 5);
    by_fd.upath = 0;  // fchown
    EXPECT_EQ(meta_object_path(by_fd), proc + "/fd/5");
    FileEvent empty = meta_event(KS_OP_CHOWN, "", 5);
    EXPECT_EQ(meta_object_path(empty), "") << "an empty path names nothing without AT_EMPTY_PATH";
    empty.meta.at_flags = AT_EMPTY_PATH;
    EXPECT_EQ(meta_object_path(empty), proc + "/fd/5");
}

// meta_unchanged's answer, which must be one.
bool looks_unchanged(const FileEvent& ev) {
    auto r = meta_unchanged(ev);
    EXPECT_TRUE(r) << r.error().str();
    return r && *r;
}

TEST(MetadataChange, TheDaemonLooksAtTheRealObject) {
    char dir[] = "/tmp/ks-meta-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    std::string file = std::string(dir) + "/f";
    std::ofstream(file) << "x";
    ASSERT_EQ(::chmod(file.c_str(), 0640), 0);

    FileEvent ev = meta_event(KS_OP_CHMOD, file);
    ev.meta.mode = 0640;
    EXPECT_TRUE(looks_unchanged(ev));
    ev.meta.mode = 0000;
    EXPECT_FALSE(looks_unchanged(ev));

    FileEvent own = meta_event(KS_OP_CHOWN, file);
    own.meta.uid = ::getuid();
    EXPECT_TRUE(looks_unchanged(own));
    own.meta.uid = ::getuid() + 1;
    EXPECT_FALSE(looks_unchanged(own));

    // Through an open descriptor, as fchown names it.
    int fd = ::open(file.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    FileEvent by_fd = meta_event(KS_OP_CHMOD, "", fd);
    by_fd.upath = 0;
    by_fd.meta.mode = 0640;
    EXPECT_TRUE(looks_unchanged(by_fd));
    ::close(fd);

    // Gone: no look, so no pass.
    FileEvent gone = meta_event(KS_OP_CHMOD, std::string(dir) + "/missing");
    EXPECT_FALSE(meta_unchanged(gone));
    std::filesystem::remove_all(dir);
}

TEST(MetadataChange, TheTicketNamesTheOneSystemCallThatFollows) {
    FileEvent ev = meta_event(KS_OP_CHOWN, "base/1/1259", 9);
    ev.meta = {.mode = 0, .uid = 70, .gid = kKeep, .at_flags = AT_SYMLINK_NOFOLLOW};
    ks_meta_ticket t = meta_ticket(ev, 12345);
    EXPECT_EQ(t.op, KS_OP_CHOWN);
    EXPECT_EQ(t.dfd, 9);
    EXPECT_EQ(t.upath, 0x7ffd1000u);
    EXPECT_EQ(t.args.uid, 70u);
    EXPECT_EQ(t.args.gid, kKeep);
    EXPECT_EQ(t.args.at_flags, static_cast<uint32_t>(AT_SYMLINK_NOFOLLOW));
    EXPECT_EQ(t.path_hash, fnv1a("base/1/1259")) << "the tracepoint hashes the text it reads";
    EXPECT_EQ(t.deadline_ns, 12345u);
    ev.upath = 0;
    EXPECT_EQ(meta_ticket(ev, 1).path_hash, 0u) << "an fd call has no path";
}

}  // namespace
}  // namespace ks
