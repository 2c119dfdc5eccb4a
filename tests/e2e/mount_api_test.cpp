// The new mount API (open_tree, move_mount, mount_setattr, fspick and
// fsconfig: Linux 5.2+, glibc 2.36+) makes the same mounts as mount(2) in
// steps: a copy of a tree put at another name (a bind mount), an existing
// mount moved away, a mount made read-only, a file system remounted
// read-only. Each is first shown to reach data on a tree that is not
// protected (the file deleted through the copy, the tree gone from its path,
// a write refused by the file system); guarded, against protected data, the
// call is refused and the data stays where it was, writable.
//
// On this kernel (no LSM, no fentry) the libc layer stops a caller of the
// glibc functions before the call (Python's ctypes here), and the syscall
// tracepoints stop a static program's raw call as it returns; the vm tier's
// LSM and fentry guests refuse the call itself (tests/vm/guest_attack_suite.sh).
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "harness.h"

namespace ks::test {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// The glibc functions, through ctypes: bind SRC VIEW [NAME] | move MNT DEST |
// readonly MNT | reconfigure MNT, as tests/helpers/raw_mount_api.c does with
// raw calls.
constexpr const char* kLibcMountApi = R"(import ctypes, os, sys
libc = ctypes.CDLL("libc.so.6", use_errno=True)
def check(what, r):
    if r < 0:
        print(what + ": " + os.strerror(ctypes.get_errno()))
        sys.exit(1)
    print(what + ": ok")
    return r
op = sys.argv[1]
if op in ("bind", "move"):
    flags = (1 | 0x8000) if op == "bind" else 0  # OPEN_TREE_CLONE | AT_RECURSIVE
    fd = check("open_tree", libc.open_tree(-100, sys.argv[2].encode(), flags))
    check("move_mount", libc.move_mount(fd, b"", -100, sys.argv[3].encode(), 4))
    if op == "bind" and len(sys.argv) > 4:
        os.unlink(os.path.join(sys.argv[3], sys.argv[4]))
        print("unlink: ok")
elif op == "readonly":
    attr = (ctypes.c_uint64 * 4)(1, 0, 0, 0)  # attr_set = MOUNT_ATTR_RDONLY
    check("mount_setattr", libc.mount_setattr(-100, sys.argv[2].encode(), 0, ctypes.byref(attr), 32))
elif op == "reconfigure":
    fd = check("fspick", libc.fspick(-100, sys.argv[2].encode(), 0))
    check("fsconfig ro", libc.fsconfig(fd, 0, b"ro", None, 0))  # FSCONFIG_SET_FLAG
    check("fsconfig reconfigure", libc.fsconfig(fd, 7, None, None, 0))  # FSCONFIG_CMD_RECONFIGURE
)";

class MountApiE2E : public ::testing::Test {
  protected:
    // arena/      a tmpfs of the test's own, private (moves inside it work
    //             whatever "/" propagates)
    //   srv/      a tmpfs mount: the file system that holds the data
    //     pg/db/  protected
    //   scratch/  a tmpfs mount like srv, not protected
    static void SetUpTestSuite() {
        if (::geteuid() != 0) return;
        dir_ = new TempDir();
        std::string arena = *dir_ / "arena";
        fs::create_directories(arena);
        if (::mount("ks-test-arena", arena.c_str(), "tmpfs", 0, "size=16m") != 0 ||
            ::mount(nullptr, arena.c_str(), nullptr, MS_PRIVATE, nullptr) != 0) {
            setup_error_ = std::string("tmpfs arena: ") + std::strerror(errno);
            return;
        }
        for (const char* m : {"srv", "scratch"}) {
            std::string at = arena + "/" + m;
            fs::create_directories(at);
            if (::mount("ks-test-mount", at.c_str(), "tmpfs", 0, "size=8m") != 0) {
                setup_error_ = std::string("tmpfs ") + m + ": " + std::strerror(errno);
                return;
            }
            fs::create_directories(at + "/pg/db");
            std::ofstream(at + "/pg/db/PG_VERSION") << "15\n";
        }
        fs::create_directories(arena + "/view");
        fs::create_directories(arena + "/moved");
        std::ofstream(*dir_ / "mount_api.py") << kLibcMountApi;
        std::string policy = *dir_ / "policy.yaml";
        // A raw call stopped as it returns ran (a copy made and dropped with
        // its process): the session goes on (not frozen), as each case here
        // is its own session.
        std::ofstream(policy) << "version: 1\nprotect:\n  paths: [" << data()
                              << "]\nsessions:\n  on_contained: none\n";
        daemon_ = new Daemon(Daemon::Options{.policy_file = policy});
    }
    static void TearDownTestSuite() {
        delete daemon_;
        if (dir_) ::umount2((*dir_ / "arena").c_str(), MNT_DETACH);  // and every mount in it
        delete dir_;
        daemon_ = nullptr;
        dir_ = nullptr;
    }
    void SetUp() override {
        KS_REQUIRE_ROOT();
        ASSERT_TRUE(setup_error_.empty()) << setup_error_;
        ASSERT_TRUE(daemon_->ready()) << daemon_->stderr_text();
        ASSERT_TRUE(data_in_place());
    }
    static std::string arena() { return *dir_ / "arena"; }
    static std::string data() { return arena() + "/srv/pg/db"; }
    static bool data_in_place() { return fs::exists(data() + "/PG_VERSION"); }
    // The data's file system still takes writes (made read-only, it would not).
    static bool data_writable() {
        std::string probe = data() + "/.write-probe";
        bool ok = static_cast<bool>(std::ofstream(probe) << "x\n");
        std::error_code ec;
        fs::remove(probe, ec);
        return ok && !ec;
    }
    static std::string libc_api(const std::string& args) {
        return "python3 " + (*dir_ / "mount_api.py") + " " + args;
    }
    static std::string raw_api(const std::string& args) {
        return helper("raw_mount_api") + " " + args;
    }
    // In a mount namespace of the caller's own, as a sandbox would.
    static std::string in_own_namespace(const std::string& cmd) {
        return "unshare -m sh -c 'mount --make-rprivate / && " + cmd + "'";
    }
    static CommandResult guarded(const std::string& session, const std::string& script) {
        return daemon_->cli({"run", "--session", session, "--", "sh", "-c", script});
    }
    static json file_record(const std::string& session,
                            std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        return session_record(*daemon_, "file", session, timeout);
    }

    static TempDir* dir_;
    static Daemon* daemon_;
    static std::string setup_error_;
};
TempDir* MountApiE2E::dir_ = nullptr;
Daemon* MountApiE2E::daemon_ = nullptr;
std::string MountApiE2E::setup_error_;

TEST_F(MountApiE2E, UnguardedEachReachesTheDataOfATreeThatIsNotProtected) {
    std::string scratch = arena() + "/scratch";
    for (const auto& how : {libc_api(""), raw_api("")}) {
        // A copy of the tree at another name: its files go through it.
        auto r = run_command({"sh", "-c", in_own_namespace(how + "bind " + scratch + " " +
                                                           arena() + "/view pg/db/PG_VERSION")});
        EXPECT_EQ(r.status, 0) << how << r.out << r.err;
        EXPECT_FALSE(fs::exists(scratch + "/pg/db/PG_VERSION")) << how << ": nothing deleted";
        std::ofstream(scratch + "/pg/db/PG_VERSION") << "15\n";
    }
    // The mount moved away: its path leads to an empty directory.
    auto r = run_command({"sh", "-c", raw_api("move " + scratch + " " + arena() + "/moved")});
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_FALSE(fs::exists(scratch + "/pg/db")) << "the tree is still at its path";
    EXPECT_TRUE(fs::exists(arena() + "/moved/pg/db"));
    r = run_command({"sh", "-c", raw_api("move " + arena() + "/moved " + scratch)});
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    // Read-only: nothing can be written there any more.
    r = run_command({"sh", "-c", raw_api("readonly " + scratch)});
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_FALSE(static_cast<bool>(std::ofstream(scratch + "/pg/db/new") << "x\n"))
        << "a read-only mount took a write";
    ASSERT_EQ(::mount(nullptr, scratch.c_str(), nullptr, MS_REMOUNT, "size=8m"), 0)
        << std::strerror(errno);
}

TEST_F(MountApiE2E, ACopyOfTheDataOrOfTheTreeAboveItIsNotMade) {
    struct Case {
        std::string session, how, source, layer, match;
    };
    for (const Case& c : {Case{"bind-libc", libc_api(""), data(), "uprobe", "path-into-protected-tree"},
                          Case{"bind-raw", raw_api(""), data(), "tracepoint", "path-into-protected-tree"},
                          Case{"bind-above-libc", libc_api(""), arena() + "/srv", "uprobe",
                               "ancestor-of-protected"},
                          Case{"bind-above-raw", raw_api(""), arena() + "/srv", "tracepoint",
                               "ancestor-of-protected"}}) {
        std::string name = c.source == data() ? "PG_VERSION" : "pg/db/PG_VERSION";
        auto r = guarded(c.session, in_own_namespace(c.how + "bind " + c.source + " " +
                                                     arena() + "/view " + name));
        EXPECT_NE(r.status, 0) << c.session << ": " << r.out;
        EXPECT_EQ(r.out.find("unlink: ok"), std::string::npos) << c.session << ": " << r.out;
        EXPECT_TRUE(data_in_place()) << c.session << ": the data was deleted through a copy";
        json rec = file_record(c.session);
        ASSERT_FALSE(rec.is_null()) << c.session << ": no record";
        EXPECT_EQ(rec["op"], "mount-source") << c.session;
        EXPECT_EQ(rec["rule"], "protect:" + data()) << c.session;
        EXPECT_EQ(rec["layer"], c.layer) << c.session;
        EXPECT_EQ(rec["match"], c.match) << c.session;
    }
    // A copy of anything else is made, and says nothing.
    auto r = guarded("bind-free", in_own_namespace(raw_api("bind " + arena() + "/scratch " +
                                                           arena() + "/view")) +
                                      " && " +
                                      in_own_namespace(libc_api("bind " + arena() + "/scratch " +
                                                                arena() + "/view")));
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_TRUE(file_record("bind-free", std::chrono::seconds(2)).is_null())
        << "a copy of an unprotected tree was recorded";
}

TEST_F(MountApiE2E, TheMountThatHoldsTheDataIsNotMovedAway) {
    // Through glibc's move_mount the caller stops before the call. (A raw
    // move_mount is seen at the syscall tracepoint, which stops the caller
    // only as the call returns: doctor's mount-over-data row says so.)
    auto r = guarded("move-libc", libc_api("move " + arena() + "/srv " + arena() + "/moved"));
    EXPECT_NE(r.status, 0) << r.out;
    EXPECT_EQ(r.out.find("move_mount: ok"), std::string::npos) << r.out;
    EXPECT_TRUE(data_in_place()) << "the data's mount moved away";
    EXPECT_FALSE(fs::exists(arena() + "/moved/pg"));
    json rec = file_record("move-libc");
    ASSERT_FALSE(rec.is_null()) << "no record";
    EXPECT_EQ(rec["op"], "mount-source");
    EXPECT_EQ(rec["match"], "ancestor-of-protected");
    EXPECT_EQ(rec["rule"], "protect:" + data());
    EXPECT_EQ(rec["layer"], "uprobe");
    // Onto the data's own place: a mount made there hides it.
    r = guarded("over-libc", libc_api("move " + arena() + "/scratch " + arena() + "/srv"));
    EXPECT_NE(r.status, 0) << r.out;
    EXPECT_TRUE(data_in_place()) << "a mount hides the data";
    rec = file_record("over-libc");
    ASSERT_FALSE(rec.is_null()) << "no record";
    EXPECT_EQ(rec["op"], "mount");
    // Another mount moves freely.
    r = guarded("move-free", raw_api("move " + arena() + "/scratch " + arena() + "/moved") +
                                 " && " +
                                 libc_api("move " + arena() + "/moved " + arena() + "/scratch"));
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_TRUE(fs::exists(arena() + "/scratch/pg/db/PG_VERSION"));
    EXPECT_TRUE(file_record("move-free", std::chrono::seconds(2)).is_null())
        << "moving an unprotected mount was recorded";
}

TEST_F(MountApiE2E, TheDataIsNotMadeReadOnlyButInTheCallersOwnNamespace) {
    auto r = guarded("readonly-libc", libc_api("readonly " + arena() + "/srv"));
    EXPECT_NE(r.status, 0) << r.out;
    EXPECT_TRUE(data_writable()) << "the data's file system was made read-only";
    json rec = file_record("readonly-libc");
    ASSERT_FALSE(rec.is_null()) << "no record";
    EXPECT_EQ(rec["op"], "mount");
    EXPECT_EQ(rec["match"], "ancestor-of-protected");
    EXPECT_EQ(rec["layer"], "uprobe");
    // In a namespace of its own a read-only copy takes nothing from the
    // database server (as a sandbox makes its view read-only): it goes on.
    r = guarded("readonly-own", in_own_namespace(raw_api("readonly " + arena() + "/srv") + " && " +
                                                 libc_api("readonly " + arena() + "/srv")));
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_TRUE(data_writable());
    EXPECT_TRUE(file_record("readonly-own", std::chrono::seconds(2)).is_null())
        << "a change in the caller's own namespace was recorded";
}

TEST_F(MountApiE2E, TheDatasFileSystemIsNotRemountedReadOnlyFromAnyNamespace) {
    // Unguarded: a remount changes the file system itself, so one made in a
    // mount namespace of the caller's own (unshare -m) makes it read-only
    // for every other namespace too: fspick + fsconfig, and util-linux's
    // mount -o remount,ro.
    std::string scratch = arena() + "/scratch";
    auto scratch_writable = [&] {
        std::string probe = scratch + "/.write-probe";
        bool ok = static_cast<bool>(std::ofstream(probe) << "x\n");
        std::error_code ec;
        fs::remove(probe, ec);
        return ok && !ec;
    };
    for (const auto& how :
         {raw_api("reconfigure " + scratch), std::string("mount -o remount,ro ") + scratch}) {
        auto r = run_command({"sh", "-c", in_own_namespace(how)});
        EXPECT_EQ(r.status, 0) << how << r.out << r.err;
        EXPECT_FALSE(scratch_writable()) << how << ": still writable from here";
        ASSERT_EQ(::mount(nullptr, scratch.c_str(), nullptr, MS_REMOUNT, "size=8m"), 0)
            << std::strerror(errno);
        ASSERT_TRUE(scratch_writable());
    }
    // Guarded, against the file system that holds the data, from the
    // caller's own namespace as well: glibc's fspick and mount(2) are
    // stopped before the call; a static program's raw fspick is stopped as
    // it returns, before the fsconfig that would remount.
    struct Case {
        std::string session, script, layer;
    };
    for (const Case& c :
         {Case{"remount-libc", libc_api("reconfigure " + arena() + "/srv"), "uprobe"},
          Case{"remount-libc-own", in_own_namespace(libc_api("reconfigure " + arena() + "/srv")),
               "uprobe"},
          Case{"remount-raw-own", in_own_namespace(raw_api("reconfigure " + arena() + "/srv")),
               "tracepoint"},
          Case{"remount-mount-own", in_own_namespace("mount -o remount,ro " + arena() + "/srv"),
               "uprobe"}}) {
        auto r = guarded(c.session, c.script);
        EXPECT_NE(r.status, 0) << c.session << ": " << r.out;
        EXPECT_EQ(r.out.find("fsconfig reconfigure: ok"), std::string::npos) << c.session;
        EXPECT_TRUE(data_writable()) << c.session << ": the data's file system is read-only";
        if (!data_writable())
            ::mount(nullptr, (arena() + "/srv").c_str(), nullptr, MS_REMOUNT, "size=8m");
        json rec = file_record(c.session);
        ASSERT_FALSE(rec.is_null()) << c.session << ": no record";
        EXPECT_EQ(rec["op"], "remount") << c.session;
        EXPECT_EQ(rec["match"], "ancestor-of-protected") << c.session;
        EXPECT_EQ(rec["rule"], "protect:" + data()) << c.session;
        EXPECT_EQ(rec["layer"], c.layer) << c.session;
    }
    // Another file system is remounted freely (and made writable again).
    auto r = guarded("remount-free", raw_api("reconfigure " + scratch) + " && " +
                                         libc_api("reconfigure " + scratch));
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_FALSE(scratch_writable());
    EXPECT_TRUE(file_record("remount-free", std::chrono::seconds(2)).is_null())
        << "remounting an unprotected file system was recorded";
    ASSERT_EQ(::mount(nullptr, scratch.c_str(), nullptr, MS_REMOUNT, "size=8m"), 0)
        << std::strerror(errno);
}

}  // namespace
}  // namespace ks::test
