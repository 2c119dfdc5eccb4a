// Block devices (protect.block_devices): writing to the device that holds a
// file system destroys every file on it, protected or not, and no file rule
// sees it. A loop device over a file of the test's own stands in for the
// disk (a real block device of the kernel's; the host's disks are never
// touched): an unguarded dd is first shown to overwrite it; guarded, every
// way of opening it for writing is refused and its first block stays as it was.
//
// On this kernel the watched tools (dd, blkdiscard, mkfs) are refused at
// exec; any other program is killed as its open of the device returns,
// before it can write (syscall exit tracepoint). The LSM and fentry layers
// refuse the open itself (tests/vm/guest_attack_suite.sh).
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "harness.h"

namespace ks::test {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

const std::string kMarker = "killswitch-block-device-marker";

class BlockDevicesE2E : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        if (::geteuid() != 0) return;
        dir_ = new TempDir();
        std::string image = *dir_ / "disk.img";
        {
            std::ofstream f(image, std::ios::binary);
            std::string block(4096, '\0');
            block.replace(0, kMarker.size(), kMarker);
            f << block;
            f << std::string(4 * 1024 * 1024 - 4096, '\0');
        }
        auto r = run_command({"losetup", "-f", "--show", image});
        if (r.status != 0) {
            why_ = "no loop device: " + r.err;
            return;
        }
        loop_ = r.out.substr(0, r.out.find('\n'));
        std::string policy = *dir_ / "policy.yaml";
        std::ofstream(policy) << "version: 1\nprotect:\n  paths: [" << (*dir_ / "data") << "]\n";
        fs::create_directories(*dir_ / "data");
        daemon_ = new Daemon(Daemon::Options{.policy_file = policy});
    }
    static void TearDownTestSuite() {
        delete daemon_;
        if (!loop_.empty()) run_command({"losetup", "-d", loop_});
        delete dir_;
        daemon_ = nullptr;
        dir_ = nullptr;
    }
    void SetUp() override {
        KS_REQUIRE_ROOT();
        if (loop_.empty()) GTEST_SKIP() << why_;
        ASSERT_TRUE(daemon_->ready()) << daemon_->stderr_text();
        ASSERT_TRUE(marker_intact()) << "the device's first block was not as written";
    }
    // The first block, read through the device itself (no cache in between).
    static bool marker_intact() {
        auto r =
            run_command({"dd", "if=" + loop_, "bs=4096", "count=1", "iflag=direct", "status=none"});
        return r.status == 0 && r.out.rfind(kMarker, 0) == 0;
    }
    static void write_marker() {
        std::string block(4096, '\0');
        block.replace(0, kMarker.size(), kMarker);
        std::ofstream(*dir_ / "block", std::ios::binary) << block;
        run_command({"dd", "if=" + (*dir_ / "block"), "of=" + loop_, "bs=4096", "count=1",
                     "oflag=direct", "conv=notrunc", "status=none"});
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
    static std::string loop_, why_;
};
TempDir* BlockDevicesE2E::dir_ = nullptr;
Daemon* BlockDevicesE2E::daemon_ = nullptr;
std::string BlockDevicesE2E::loop_;
std::string BlockDevicesE2E::why_;

TEST_F(BlockDevicesE2E, UnguardedDdOverwritesTheDevice) {
    ASSERT_EQ(run_command({"dd", "if=/dev/zero", "of=" + loop_, "bs=4096", "count=1",
                           "oflag=direct", "conv=notrunc", "status=none"})
                  .status,
              0);
    bool destroyed = !marker_intact();
    write_marker();
    EXPECT_TRUE(destroyed) << "an unguarded dd did not overwrite the device";
    EXPECT_TRUE(marker_intact());
}

TEST_F(BlockDevicesE2E, DestructiveToolsAreRefusedAtExec) {
    struct Case {
        std::string session, rule, script;
    };
    const Case cases[] = {
        {"dd", "exec:dd-device", "dd if=/dev/zero of=" + loop_ + " bs=4096 count=1"},
        {"blkdiscard", "exec:blkdiscard", "blkdiscard -f " + loop_},
        {"mkfs", "exec:mkfs", "mkfs.ext4 -F -q " + loop_},
        {"busybox-dd", "exec:dd-device",
         "busybox dd if=/dev/zero of=" + loop_ + " bs=4096 count=1"},
    };
    for (const auto& c : cases) {
        auto r = guarded(c.session, c.script);
        EXPECT_NE(r.status, 0) << c.session << ": it ran";
        EXPECT_TRUE(marker_intact()) << c.session << ": the device was written";
        json rec = file_record(c.session);
        ASSERT_FALSE(rec.is_null()) << c.session << ": no record";
        EXPECT_EQ(rec["layer"], "exec") << c.session;
        EXPECT_EQ(rec["rule"].get<std::string>().rfind(c.rule, 0), 0u)
            << c.session << ": " << rec["rule"];
        EXPECT_EQ(rec["prevented"], true) << c.session;
        // A command rule names no file of killswitch's own: the session
        // goes on (it was once frozen as if it did).
        EXPECT_FALSE(rec.contains("session_action")) << c.session << ": " << rec["session_action"];
    }
}

TEST_F(BlockDevicesE2E, AnyProgramOpeningItForWritingIsStoppedBeforeItWrites) {
    std::string link = *dir_ / "innocent-name";
    fs::remove(link);
    fs::create_symlink(loop_, link);
    const std::string py =
        "python3 -c 'import sys; f = open(sys.argv[1], \"r+b\"); f.write(b\"\\0\" * 4096); "
        "f.flush()' ";
    struct Case {
        std::string session, script;
    };
    const Case cases[] = {
        {"python", py + loop_},
        {"symlink", py + link},
        // A static shell: no libc to probe, a redirect opens the device.
        {"static-shell", "busybox sh -c 'echo x > " + loop_ + "'"},
    };
    for (const auto& c : cases) {
        auto r = guarded(c.session, c.script);
        EXPECT_NE(r.status, 0) << c.session << ": it wrote";
        EXPECT_TRUE(marker_intact()) << c.session << ": the device was written";
        json rec = file_record(c.session);
        ASSERT_FALSE(rec.is_null()) << c.session << ": no record";
        EXPECT_EQ(rec["op"], "device-write") << c.session;
        EXPECT_EQ(rec["match"], "block-device") << c.session;
        EXPECT_EQ(rec["rule"], "block-device") << c.session;
        EXPECT_EQ(rec["path"], loop_) << c.session;
        EXPECT_EQ(rec["layer"], "tracepoint") << c.session;
        EXPECT_EQ(rec["prevented"], true) << c.session;
    }
}

TEST_F(BlockDevicesE2E, ReadingADeviceIsFree) {
    auto r = guarded("read", "dd if=" + loop_ + " of=/dev/null bs=4096 count=1 status=none && " +
                                 "python3 -c 'import sys; open(sys.argv[1], \"rb\").read(4096)' " +
                                 loop_);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(file_record("read", std::chrono::seconds(2)).is_null())
        << "reading a block device was recorded";
}

}  // namespace
}  // namespace ks::test
