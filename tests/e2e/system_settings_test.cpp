// Kernel settings and schedulers (policy protect.system): a guarded process
// cannot change a sysctl, nor put a job where cron, at or systemd would run
// it later, outside any session. Each case is first shown to work unguarded.
//
// The sysctl is written in a network namespace of the test's own (kept in a
// file under the test's directory), never the host's; the scheduler
// directories are the test's own too (the policy names them in place of the
// host's /etc/cron.d and /etc/systemd, which are the built-in entries).
//
// On this kernel (no LSM, no fentry) the libc layer stops the caller before
// the call; the vm tier's LSM and fentry guests refuse the call itself, static
// binaries included (tests/vm/guest_attack_suite.sh).
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "harness.h"

namespace ks::test {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kSysctl = "/proc/sys/net/ipv4/ip_forward";

class SystemSettingsE2E : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        if (::geteuid() != 0) return;
        dir_ = new TempDir();
        fs::create_directories(*dir_ / "cron.d");
        fs::create_directories(*dir_ / "systemd/system/multi-user.target.wants");
        std::ofstream(*dir_ / "payload") << "* * * * * root /tmp/evil\n";
        std::string policy = *dir_ / "policy.yaml";
        std::ofstream(policy) << "version: 1\nprotect:\n  system: [/proc/sys, "
                              << (*dir_ / "cron.d") << ", " << (*dir_ / "systemd") << "]\n";
        daemon_ = new Daemon(Daemon::Options{.policy_file = policy});
    }
    static void TearDownTestSuite() {
        delete daemon_;
        delete dir_;
        daemon_ = nullptr;
        dir_ = nullptr;
    }
    void SetUp() override {
        KS_REQUIRE_ROOT();
        ASSERT_TRUE(daemon_->ready()) << daemon_->stderr_text();
    }
    static json file_record(const std::string& session,
                            std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        return session_record(*daemon_, "file", session, timeout);
    }

    static TempDir* dir_;
    static Daemon* daemon_;
};
TempDir* SystemSettingsE2E::dir_ = nullptr;
Daemon* SystemSettingsE2E::daemon_ = nullptr;

// A network namespace kept in a file (unshare --net=FILE), so that a value
// written in it can be read afterwards; unmounted when the object goes. A
// new namespace takes its IPv4 settings from the host's
// (net.core.devconf_inherit_init_net 0): on a host that forwards, its
// ip_forward starts at 1, so the test sets it to 0 there first, unguarded.
class NetNamespace {
  public:
    explicit NetNamespace(const std::string& path) : path_(path) {
        std::ofstream(path_).close();
        made_ = run_command({"unshare", "--net=" + path_, "true"}).status == 0;
        ok_ = made_ && run_command(enter(std::string("echo 0 > ") + kSysctl)).status == 0;
    }
    ~NetNamespace() {
        if (made_) ::umount2(path_.c_str(), MNT_DETACH);
    }
    [[nodiscard]] bool ok() const { return ok_; }
    [[nodiscard]] std::string read(const std::string& file) const {
        auto r = run_command({"nsenter", "--net=" + path_, "cat", file});
        return r.out.substr(0, r.out.find('\n'));
    }
    [[nodiscard]] std::vector<std::string> enter(const std::string& script) const {
        return {"nsenter", "--net=" + path_, "sh", "-c", script};
    }

  private:
    std::string path_;
    bool made_ = false, ok_ = false;
};

TEST_F(SystemSettingsE2E, ASysctlWriteIsRefusedAndTheValueStays) {
    NetNamespace ns(*dir_ / "netns-sysctl");
    ASSERT_TRUE(ns.ok()) << "unshare --net=FILE failed";
    ASSERT_EQ(ns.read(kSysctl), "0");
    std::string write = std::string("echo 1 > ") + kSysctl;

    // Unguarded, the write takes (in the test's namespace only).
    NetNamespace shown(*dir_ / "netns-shown");
    ASSERT_TRUE(shown.ok());
    ASSERT_EQ(run_command(shown.enter(write)).status, 0);
    ASSERT_EQ(shown.read(kSysctl), "1") << "an unguarded sysctl write did not take";

    std::vector<std::string> argv = {"run", "--session", "sysctl", "--"};
    for (auto& a : ns.enter(write)) argv.push_back(a);
    auto r = daemon_->cli(argv);
    EXPECT_NE(r.status, 0) << "the guarded sysctl write succeeded";
    EXPECT_EQ(ns.read(kSysctl), "0") << "the sysctl changed";
    EXPECT_NE(r.err.find("killswitch: refused"), std::string::npos) << r.err;
    json rec = file_record("sysctl");
    ASSERT_FALSE(rec.is_null()) << "no record";
    EXPECT_EQ(rec["rule"], "system:/proc/sys");
    EXPECT_EQ(rec["op"], "open-truncate");  // the shell's '>'
    EXPECT_EQ(rec["path"], kSysctl);
    EXPECT_EQ(rec["prevented"], true);
}

// A static program's raw open is seen only at the syscall tracepoint here:
// the open completes, the process dies as it returns, before it can write.
TEST_F(SystemSettingsE2E, AStaticWriterDiesBeforeItWrites) {
    if (::access("/bin/busybox", X_OK) != 0) GTEST_SKIP() << "no /bin/busybox (busybox-static)";
    NetNamespace ns(*dir_ / "netns-static");
    ASSERT_TRUE(ns.ok());
    std::vector<std::string> argv = {"run",          "--session",
                                     "static",       "--",
                                     "nsenter",      "--net=" + (*dir_ / "netns-static"),
                                     "/bin/busybox", "sh",
                                     "-c",           std::string("echo 1 > ") + kSysctl};
    auto r = daemon_->cli(argv);
    EXPECT_NE(r.status, 0) << "the static writer went on";
    EXPECT_EQ(ns.read(kSysctl), "0") << "the sysctl changed";
    json rec = file_record("static");
    ASSERT_FALSE(rec.is_null()) << "no record";
    EXPECT_EQ(rec["rule"], "system:/proc/sys");
    EXPECT_EQ(rec["layer"], "tracepoint");
}

TEST_F(SystemSettingsE2E, ACronEntryIsNotWrittenLinkedOrSymlinkedIntoPlace) {
    std::string cron = *dir_ / "cron.d";
    std::string payload = *dir_ / "payload";
    // Unguarded, each way puts an entry there.
    const std::pair<std::vector<std::string>, std::string> shown[] = {
        {{"sh", "-c", "cat " + payload + " > " + cron + "/shown1"}, cron + "/shown1"},
        {{"ln", payload, cron + "/shown2"}, cron + "/shown2"},
        {{"ln", "-s", payload, cron + "/shown3"}, cron + "/shown3"},
    };
    for (const auto& [argv, made] : shown) {
        ASSERT_EQ(run_command(argv).status, 0) << made;
        ASSERT_TRUE(fs::exists(fs::symlink_status(made))) << made;
        fs::remove(made);
    }

    struct Case {
        std::string session, op;
        std::vector<std::string> argv;
        std::string made;
    };
    const Case cases[] = {
        {"cron-write",
         "open-truncate",
         {"sh", "-c", "cat " + payload + " > " + cron + "/evil1"},
         cron + "/evil1"},
        {"cron-link", "create-in", {"ln", payload, cron + "/evil2"}, cron + "/evil2"},
        {"cron-symlink", "create-in", {"ln", "-s", payload, cron + "/evil3"}, cron + "/evil3"},
    };
    for (const auto& c : cases) {
        std::vector<std::string> argv = {"run", "--session", c.session, "--"};
        argv.insert(argv.end(), c.argv.begin(), c.argv.end());
        auto r = daemon_->cli(argv);
        EXPECT_NE(r.status, 0) << c.session << ": succeeded";
        EXPECT_FALSE(fs::exists(fs::symlink_status(c.made))) << c.made << " was made";
        json rec = file_record(c.session);
        ASSERT_FALSE(rec.is_null()) << c.session << ": no record";
        EXPECT_EQ(rec["rule"], "system:" + cron) << c.session;
        EXPECT_EQ(rec["op"], c.op) << c.session;
    }
}

TEST_F(SystemSettingsE2E, AUnitIsNotEnabledBySymlinkAndReadingStaysFree) {
    std::string wants = *dir_ / "systemd/system/multi-user.target.wants";
    auto r = daemon_->cli({"run", "--session", "enable", "--", "ln", "-s", *dir_ / "payload",
                           wants + "/evil.service"});
    EXPECT_NE(r.status, 0);
    EXPECT_FALSE(fs::exists(fs::symlink_status(wants + "/evil.service")));
    json rec = file_record("enable");
    ASSERT_FALSE(rec.is_null()) << "no record";
    EXPECT_EQ(rec["rule"], "system:" + (*dir_ / "systemd"));

    // Reading settings and listing the schedulers' directories is ordinary
    // work: no refusal, no record.
    r = daemon_->cli({"run", "--session", "reader", "--", "sh", "-c",
                      std::string("cat ") + kSysctl + " /proc/sys/kernel/ostype && ls " +
                          (*dir_ / "systemd/system")});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("Linux"), std::string::npos) << r.out;
    EXPECT_TRUE(file_record("reader", std::chrono::seconds(2)).is_null()) << "a read was recorded";
}

}  // namespace
}  // namespace ks::test
