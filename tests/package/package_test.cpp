// The Debian package, built from this tree with cpack, taken apart and run
// as the service would run it: its files, its unit (checked by this host's
// systemd-analyze), its daemon started with the unit's own arguments and
// capability bounding set inside a delegated cgroup, and its logrotate file
// run by the real logrotate while records are written.
//
// systemd is not PID 1 on this host: the unit is not started by systemd
// here (the service manager's notify protocol is tested against a receiver
// of the test's own in tests/kernel/service_test.cpp).
#include <signal.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "common/sysfs.h"
#include "decision/decision.h"
#include "harness.h"

namespace ks::test {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::string slurp(const std::string& path) {
    auto t = read_file(path);
    return t ? *t : std::string();
}

// The value of KEY= in the unit's text (the first line that sets it).
std::string unit_value(const std::string& unit, const std::string& key) {
    std::istringstream in(unit);
    for (std::string line; std::getline(in, line);)
        if (line.rfind(key + "=", 0) == 0) return line.substr(key.size() + 1);
    return {};
}

std::vector<std::string> words(const std::string& s) {
    std::istringstream in(s);
    std::vector<std::string> out;
    for (std::string w; in >> w;) out.push_back(w);
    return out;
}

class Package : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        if (::geteuid() != 0) return;
        dir_ = new TempDir;
        // cpack from the build tree, into a directory of the test's.
        auto r = run_command({"cpack", "-G", "DEB", "--config", KS_BUILD_DIR "/CPackConfig.cmake",
                              "-B", *dir_ / "out"},
                             std::chrono::seconds(300));
        build_log_ = r.out + r.err;
        for (const auto& e : fs::directory_iterator(*dir_ / "out"))
            if (e.path().extension() == ".deb") deb_ = e.path();
        if (deb_.empty()) return;
        root_ = *dir_ / "root";
        run_command({"dpkg-deb", "-x", deb_, root_});
        control_ = *dir_ / "control";
        run_command({"dpkg-deb", "-e", deb_, control_});
    }
    static void TearDownTestSuite() {
        delete dir_;
        dir_ = nullptr;
    }
    void SetUp() override {
        KS_REQUIRE_ROOT();
        ASSERT_FALSE(deb_.empty()) << "cpack built no package:\n" << build_log_;
    }

    static TempDir* dir_;
    static std::string deb_, root_, control_, build_log_;
};
TempDir* Package::dir_ = nullptr;
std::string Package::deb_, Package::root_, Package::control_, Package::build_log_;

TEST_F(Package, HoldsTheDaemonItsUnitPolicyAndLogrotateAndDependsOnWhatItLinks) {
    for (const char* f :
         {"/usr/sbin/killswitch", "/etc/killswitch/policy.yaml", "/etc/killswitch/policy.d/README",
          "/lib/systemd/system/killswitch.service", "/etc/logrotate.d/killswitch",
          "/usr/share/doc/killswitch/operations.md", "/usr/share/doc/killswitch/policy.md"})
        EXPECT_TRUE(fs::exists(root_ + f)) << f;
    // An operator's edits survive upgrades.
    EXPECT_EQ(slurp(control_ + "/conffiles"),
              "/etc/killswitch/policy.yaml\n/etc/killswitch/policy.d/README\n"
              "/etc/logrotate.d/killswitch\n");
    for (const char* s : {"postinst", "prerm", "postrm"}) {
        struct stat st {};
        ASSERT_EQ(::stat((control_ + "/" + s).c_str(), &st), 0) << s;
        EXPECT_TRUE(st.st_mode & S_IXUSR) << s;
        auto sh = run_command({"sh", "-n", control_ + "/" + s});
        EXPECT_EQ(sh.status, 0) << s << ": " << sh.err;
    }
    // Every library the binary needs is a dependency (dpkg-shlibdeps).
    std::string control = slurp(control_ + "/control");
    for (const char* lib : {"libbpf1", "libsystemd0", "libyaml-cpp0.7", "libelf1", "libssl3"})
        EXPECT_NE(control.find(lib), std::string::npos) << lib << " missing in\n" << control;
    // The shipped binary runs, and the shipped policy is the built-in one.
    auto v = run_command({root_ + "/usr/sbin/killswitch", "--version"});
    EXPECT_EQ(v.out, "killswitch " KS_VERSION "\n");
    auto def = run_command({binary(), "policy", "show-default"});
    EXPECT_EQ(slurp(root_ + "/etc/killswitch/policy.yaml"), def.out);
    auto check = run_command({root_ + "/usr/sbin/killswitch", "policy", "check",
                              root_ + "/etc/killswitch/policy.yaml", "--policy-dir",
                              root_ + "/etc/killswitch/policy.d"});
    EXPECT_EQ(check.status, 0) << check.err;
}

TEST_F(Package, TheUnitPassesThisSystemdsChecks) {
    std::string unit = slurp(root_ + "/lib/systemd/system/killswitch.service");
    ASSERT_FALSE(unit.empty());
    // Verified as this host's systemd reads it, with the binary where the
    // package put it (systemd-analyze checks that ExecStart's program exists).
    std::string copy = *dir_ / "killswitch.service";
    std::ofstream(copy) << std::regex_replace(unit, std::regex("/usr/sbin/killswitch"),
                                              root_ + "/usr/sbin/killswitch");
    auto r = run_command({"systemd-analyze", "verify", copy});
    EXPECT_EQ(r.status, 0) << r.err;
    // It warns (exit 0) about a key it does not know or a value it cannot parse.
    EXPECT_EQ(r.err, "");
    EXPECT_EQ(r.out, "");
}

// The daemon as the unit starts it: ExecStart's arguments (the policy and
// policy.d of the package, sessions in ./sessions of a cgroup delegated to
// it), under the unit's CapabilityBoundingSet.
TEST_F(Package, TheDaemonRunsWithTheUnitsArgumentsAndCapabilitiesAndGuards) {
    std::string unit = slurp(root_ + "/lib/systemd/system/killswitch.service");
    auto exec = words(unit_value(unit, "ExecStart"));
    ASSERT_GE(exec.size(), 2u);
    ASSERT_EQ(exec[0], "/usr/sbin/killswitch");
    ASSERT_EQ(exec[1], "daemon");
    std::vector<std::string> args;
    std::string cgroup_arg;
    for (size_t i = 2; i < exec.size(); ++i) {
        if (exec[i] == "--cgroup-parent" && i + 1 < exec.size()) {
            cgroup_arg = exec[++i];  // given through the harness
            continue;
        }
        std::string a = exec[i];
        if (a.rfind("/etc/killswitch", 0) == 0) a = root_ + a;  // the package's files
        args.push_back(a);
    }
    ASSERT_EQ(cgroup_arg, "./sessions");
    std::string caps;
    for (auto c : words(unit_value(unit, "CapabilityBoundingSet"))) {
        std::transform(c.begin(), c.end(), c.begin(), ::tolower);
        caps += ",+" + c.substr(4);  // cap_bpf -> +bpf
    }
    ASSERT_FALSE(caps.empty());

    // A drop-in of this host: data to protect, and the trail readable by a group.
    TempDir data;
    fs::create_directories(data / "pg");
    std::ofstream(data / "pg/PG_VERSION") << "15\n";
    std::string etc = *dir_ / "etc-copy";
    fs::remove_all(etc);
    fs::copy(root_ + "/etc/killswitch", etc, fs::copy_options::recursive);
    std::ofstream(etc + "/policy.d/50-host.yaml") << "protect:\n  paths: [" << (data / "pg")
                                                  << "]\naudit:\n  mode: \"0640\"\n  group: 4242\n";
    for (auto& a : args)
        if (a.rfind(root_ + "/etc/killswitch", 0) == 0)
            a = etc + a.substr((root_ + "/etc/killswitch").size());

    // The unit's cgroup, as systemd delegates it (Delegate=yes).
    auto mount = cgroup2_mount();
    ASSERT_TRUE(mount.ok()) << mount.error().str();
    std::string service_cg = "ks-pkg-" + std::to_string(::getpid());
    ASSERT_EQ(::mkdir((*mount + "/" + service_cg).c_str(), 0755), 0);
    Daemon::Options o;
    o.binary = root_ + "/usr/sbin/killswitch";
    o.prefix = {"/bin/sh",
                "-c",
                "echo $$ > " + *mount + "/" + service_cg + "/cgroup.procs && exec \"$@\"",
                "sh",
                "/usr/bin/setpriv",
                "--bounding-set",
                "-all" + caps};
    o.extra_args = args;
    o.cgroup_parent_arg = cgroup_arg;
    o.cgroup_parent = service_cg + "/sessions";
    {
        Daemon d(o);
        ASSERT_TRUE(d.ready()) << d.stderr_text();
        // Its bounding set is within the unit's: nothing more.
        std::string status = slurp("/proc/" + std::to_string(d.pid()) + "/status");
        std::smatch m;
        ASSERT_TRUE(std::regex_search(status, m, std::regex("CapBnd:\\s*([0-9a-f]+)")));
        auto held = run_command({"/usr/sbin/capsh", "--decode=" + m[1].str()});
        ASSERT_EQ(held.status, 0) << held.err;
        std::string allowed = unit_value(unit, "CapabilityBoundingSet");
        std::transform(allowed.begin(), allowed.end(), allowed.begin(), ::tolower);
        auto list = held.out.substr(held.out.find('=') + 1);
        for (auto& c : list)
            if (c == ',' || c == '\n') c = ' ';
        EXPECT_FALSE(words(list).empty()) << held.out;
        for (const auto& c : words(list)) EXPECT_NE(allowed.find(c), std::string::npos) << c;

        auto rm = d.cli({"run", "--session", "pkg", "--", "rm", "-rf", data / "pg"});
        EXPECT_EQ(rm.status, kRefusedExitStatus) << rm.err << d.stderr_text();
        EXPECT_TRUE(fs::exists(data / "pg/PG_VERSION"));
        // The session lived in the unit's delegated subtree.
        auto start = first_record(d, [](const json& r) {
            return r.value("event", "") == "session_start" && r.value("session", "") == "pkg";
        });
        EXPECT_EQ(start.value("cgroup", ""), "/" + service_cg + "/sessions/pkg") << start.dump();
        // The trail's mode and group are the drop-in's.
        struct stat st {};
        ASSERT_EQ(::stat(d.audit_log().c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 07777, 0640u);
        EXPECT_EQ(st.st_gid, 4242u);
        // Where the sessions are, for `killswitch emergency` with no daemon.
        EXPECT_EQ(slurp(d.runtime_dir() + "/sessions-cgroup"), service_cg + "/sessions\n");
        d.stop();
    }
    ::rmdir((*mount + "/" + service_cg).c_str());
}

// The package's logrotate file, run by logrotate while a guarded session
// writes records: every record is in one of the files, once.
TEST_F(Package, LogrotateRotatesTheTrailWithoutLosingARecord) {
    Daemon d;
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    std::string conf = slurp(root_ + "/etc/logrotate.d/killswitch");
    ASSERT_NE(conf.find("/var/log/killswitch/audit.jsonl {"), std::string::npos) << conf;
    ASSERT_FALSE(std::regex_search(conf, std::regex("\n\\s*copytruncate\\s*\n"))) << conf;
    // This host has no systemd to send SIGHUP for it: the postrotate
    // command is the same signal to this daemon.
    conf = std::regex_replace(conf, std::regex("/var/log/killswitch/audit.jsonl"), d.audit_log());
    conf = std::regex_replace(conf, std::regex("postrotate\n[^\n]*\n"),
                              "postrotate\n\t\tkill -HUP " + std::to_string(d.pid()) + "\n");
    ASSERT_NE(conf.find("kill -HUP"), std::string::npos) << conf;
    std::string conf_path = *dir_ / "logrotate.conf";
    std::ofstream(conf_path) << conf;
    std::string state = *dir_ / "logrotate.state";

    auto writer = std::async(std::launch::async, [&] {
        return d.cli({"run", "--session", "writer", "--", "/bin/sh", "-c",
                      "i=0; while [ $i -lt 400 ]; do /bin/true; i=$((i+1)); done"},
                     std::chrono::seconds(120));
    });
    for (int i = 0; i < 3; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(700));
        auto r = run_command({"logrotate", "-f", "-s", state, conf_path});
        EXPECT_EQ(r.status, 0) << r.out << r.err;
    }
    EXPECT_EQ(writer.get().status, 0);
    d.stop_keep_sessions();

    // audit.jsonl, .1 (delaycompress), .2.gz, .3.gz
    std::vector<json> all;
    for (std::string suffix : {".3.gz", ".2.gz", ".1", ""}) {
        std::string path = d.audit_log() + suffix;
        ASSERT_TRUE(fs::exists(path)) << path;
        std::string text = suffix.ends_with(".gz") ? run_command({"zcat", path}).out : slurp(path);
        std::istringstream in(text);
        for (std::string line; std::getline(in, line);)
            if (!line.empty()) all.push_back(json::parse(line));
    }
    ASSERT_GT(all.size(), 400u);  // an exec record per /bin/true at least
    std::set<uint64_t> seqs;
    for (const auto& r : all) EXPECT_TRUE(seqs.insert(r.value("seq", 0ull)).second) << r.dump();
    EXPECT_EQ(*seqs.begin(), 1u);
    EXPECT_EQ(*seqs.rbegin(), seqs.size());  // 1..N, no gap
    // The new file is the daemon's, with the policy's mode.
    struct stat st {};
    ASSERT_EQ(::stat(d.audit_log().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
}

}  // namespace
}  // namespace ks::test
