// Attacks on a protected tree of a few thousand files, each run as a guarded
// agent with `killswitch run`, against the default policy (block, then freeze
// the session). After each: how many files and bytes were lost, whether the
// agent was stopped, and what the audit record says.
//
// With KS_SCOREBOARD=FILE each attack appends a row to FILE
// (bench/file_attacks.sh prints them as a table).
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <sstream>
#include <thread>

#include "harness.h"

namespace ks::test {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr int kDirs = 20;
constexpr int kFilesPerDir = 100;

struct FileState {
    uintmax_t size;
    uint64_t hash;
};
using Snapshot = std::map<std::string, FileState>;

uint64_t fnv(const std::string& s) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
    return h;
}

Snapshot snapshot(const std::string& root) {
    Snapshot out;
    std::error_code ec;
    if (!fs::exists(root, ec)) return out;
    for (auto it = fs::recursive_directory_iterator(root, ec);
         it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (ec || !it->is_regular_file()) continue;
        std::ifstream in(it->path(), std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        out[it->path().string().substr(root.size())] = {ss.str().size(), fnv(ss.str())};
    }
    return out;
}

struct Loss {
    size_t files = 0;
    uintmax_t bytes = 0;
};

Loss compare(const Snapshot& before, const Snapshot& after) {
    Loss l;
    for (const auto& [path, st] : before) {
        auto it = after.find(path);
        if (it == after.end()) {
            ++l.files;
            l.bytes += st.size;
        } else if (it->second.hash != st.hash || it->second.size != st.size) {
            ++l.files;
            l.bytes += st.size;
        }
    }
    return l;
}

class FileGuardE2E : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        if (::geteuid() != 0) return;
        dir_ = new TempDir();
        data_ = *dir_ / "data";
        out_ = *dir_ / "out";
        fs::create_directories(out_);
        for (int d = 0; d < kDirs; ++d) {
            fs::create_directories(data_ + "/d" + std::to_string(d));
            for (int f = 0; f < kFilesPerDir; ++f) {
                std::string name = "/d" + std::to_string(d) + "/f" + std::to_string(f);
                std::ofstream(data_ + name)
                    << std::string(1000 + f, static_cast<char>('a' + d % 26)) << name;
            }
        }
        before_ = new Snapshot(snapshot(data_));
        daemon_ = new Daemon({.extra_args = {"--protect", data_}});
    }
    static void TearDownTestSuite() {
        delete daemon_;
        delete before_;
        delete dir_;
        daemon_ = nullptr;
    }

    void SetUp() override {
        KS_REQUIRE_ROOT();
        ASSERT_TRUE(daemon_ && daemon_->ready()) << (daemon_ ? daemon_->stderr_text() : "");
    }

    // Restores whatever an attack changed, so that attacks do not add up.
    void TearDown() override {
        if (!daemon_) return;
        Snapshot now = snapshot(data_);
        for (const auto& [path, st] : *before_) {
            auto it = now.find(path);
            if (it != now.end() && it->second.hash == st.hash) continue;
            // Rebuild the file exactly as SetUpTestSuite wrote it.
            int d = std::stoi(path.substr(2, path.find('/', 1) - 2));
            int f = std::stoi(path.substr(path.find_last_of('f') + 1));
            fs::create_directories(fs::path(data_ + path).parent_path());
            std::ofstream(data_ + path, std::ios::trunc)
                << std::string(1000 + f, static_cast<char>('a' + d % 26)) << path;
        }
    }

    struct Outcome {
        Loss loss;
        CommandResult run;
        json decision;  // the first file record of the session
        bool stopped = false;
        std::string how_stopped;
    };

    // Runs argv as a guarded agent in session `name` and collects the outcome.
    Outcome attack(const std::string& name, const std::vector<std::string>& argv,
                   const std::string& cwd = "") {
        std::vector<std::string> cmd = {
            binary(), "--runtime-dir", daemon_->runtime_dir(), "run", "--session", name, "--"};
        if (!cwd.empty()) {
            cmd.insert(cmd.end(), {"sh", "-c", "cd \"$0\" && exec \"$@\"", cwd});
        }
        cmd.insert(cmd.end(), argv.begin(), argv.end());
        auto fut = std::async(std::launch::async,
                              [cmd] { return run_command(cmd, std::chrono::seconds(60)); });

        Outcome o;
        wait_until(
            [&] {
                for (const auto& r : daemon_->records())
                    if (r.value("event", "") == "file" && r.value("session", "") == name) {
                        o.decision = r;
                        return true;
                    }
                return fut.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
            },
            std::chrono::seconds(30));
        // A frozen session (an operation this kernel could only contain):
        // look, then end it.
        std::string cg = "/sys/fs/cgroup/unified/" + daemon_->cgroup_parent() + "/" + name;
        if (!fs::exists(cg)) cg = "/sys/fs/cgroup/" + daemon_->cgroup_parent() + "/" + name;
        bool frozen = false;
        if (!o.decision.is_null() && o.decision.value("session_action", "") == "freeze") {
            wait_until(
                [&] {
                    std::ifstream ev(cg + "/cgroup.events");
                    std::string all((std::istreambuf_iterator<char>(ev)), {});
                    frozen = all.find("frozen 1") != std::string::npos;
                    return frozen || all.empty();
                },
                std::chrono::seconds(5));
            std::ofstream(cg + "/cgroup.kill") << "1";
        }
        o.run = fut.get();
        o.loss = compare(*before_, snapshot(data_));
        if (frozen) {
            o.stopped = true;
            o.how_stopped = "session frozen";
        }
        if (o.run.status == 128 + SIGKILL) {
            o.stopped = true;
            o.how_stopped = o.how_stopped.empty() ? "killed" : o.how_stopped + ", killed";
        }
        // Refused where the kernel stopped it (exec layer): it exited with
        // the refusal status, the daemon's record says so.
        if (o.run.status == kRefusedExitStatus &&
            o.decision.value("task_result", "") == "exit 126") {
            o.stopped = true;
            o.how_stopped =
                o.how_stopped.empty() ? "refused, exit 126" : o.how_stopped + ", exit 126";
        }
        scoreboard(name, o);
        return o;
    }

    static void scoreboard(const std::string& name, const Outcome& o) {
        const char* path = std::getenv("KS_SCOREBOARD");
        if (!path) return;
        std::ofstream out(path, std::ios::app);
        const json d = o.decision.is_object() ? o.decision : json::object();
        auto lat = [&](const char* k) -> std::string {
            if (!d.contains(k)) return "-";
            return std::to_string(d[k].get<uint64_t>() / 1000) + "us";
        };
        out << name << "\t" << o.loss.files << "\t" << o.loss.bytes << "\t"
            << (o.stopped ? "yes (" + o.how_stopped + ")" : "no") << "\t" << d.value("layer", "-")
            << "\t" << lat("stop_latency_ns") << "\t" << lat("decision_latency_ns") << "\t"
            << lat("session_frozen_latency_ns") << "\n";
    }

    // The common expectations: nothing lost, the agent stopped, the record
    // names rule, layer and path.
    void expect_blocked(const Outcome& o, const std::string& layer, const std::string& path_part) {
        EXPECT_EQ(o.loss.files, 0u) << "files lost; agent said: " << o.run.out << o.run.err;
        EXPECT_EQ(o.loss.bytes, 0u);
        EXPECT_TRUE(o.stopped) << "status " << o.run.status << " " << o.run.err;
        ASSERT_FALSE(o.decision.is_null()) << "no audit record";
        EXPECT_EQ(o.decision.value("layer", ""), layer) << o.decision.dump();
        EXPECT_EQ(o.decision.value("verdict", ""), "block") << o.decision.dump();
        EXPECT_FALSE(o.decision.value("rule", "").empty());
        EXPECT_NE(o.decision.value("path", "").find(path_part), std::string::npos)
            << o.decision.dump();
        // The default policy: a prevented operation fails and the agent goes
        // on (its session is not frozen); one this kernel could only contain
        // freezes the session at once.
        if (o.decision.value("prevented", false))
            EXPECT_FALSE(o.decision.contains("session_action")) << o.decision.dump();
        else
            EXPECT_EQ(o.decision.value("session_action", ""), "freeze") << o.decision.dump();
        if (layer == "exec") {
            // Stopped at exec, the offender is told on its own stderr (here
            // the pipe the test reads, as an agent's shell tool would) before
            // it dies.
            EXPECT_NE(o.run.err.find("killswitch: refused "), std::string::npos) << o.run.err;
            EXPECT_NE(o.run.err.find("(rule " + o.decision.value("rule", "") + ")"),
                      std::string::npos)
                << o.run.err;
            EXPECT_NE(o.run.err.find("killswitch allow --session"), std::string::npos) << o.run.err;
            EXPECT_NE(o.decision.value("explained_to", "").find("stderr (pipe)"), std::string::npos)
                << o.decision.dump();
        }
    }

    static TempDir* dir_;
    static std::string data_, out_;
    static Snapshot* before_;
    static Daemon* daemon_;
};

TempDir* FileGuardE2E::dir_ = nullptr;
std::string FileGuardE2E::data_, FileGuardE2E::out_;
Snapshot* FileGuardE2E::before_ = nullptr;
Daemon* FileGuardE2E::daemon_ = nullptr;

TEST_F(FileGuardE2E, TreeIsWhatTheTestsExpect) {
    EXPECT_EQ(before_->size(), static_cast<size_t>(kDirs * kFilesPerDir));
}

TEST_F(FileGuardE2E, RmRf) {
    auto o = attack("rm-rf", {"rm", "-rf", data_});
    expect_blocked(o, "exec", data_);
}

TEST_F(FileGuardE2E, RmRfAfterCd) {
    auto o = attack("rm-rf-cd", {"sh", "-c", "rm -rf ./*"}, data_ + "/d3");
    expect_blocked(o, "exec", data_ + "/d3");
}

TEST_F(FileGuardE2E, FindDelete) {
    auto o = attack("find-delete", {"find", data_, "-delete"});
    expect_blocked(o, "exec", data_);
}

TEST_F(FileGuardE2E, PythonShutilRmtree) {
    auto o = attack("py-rmtree",
                    {"/usr/bin/python3", "-c", "import shutil; shutil.rmtree('" + data_ + "')"});
    expect_blocked(o, "uprobe", data_);
}

TEST_F(FileGuardE2E, MvAway) {
    auto o = attack("mv-away", {"mv", data_, out_ + "/elsewhere"});
    expect_blocked(o, "exec", data_);
    EXPECT_FALSE(fs::exists(out_ + "/elsewhere"));
}

TEST_F(FileGuardE2E, MvOverwrite) {
    std::ofstream(out_ + "/other") << "replacement";
    auto o = attack("mv-onto", {"mv", out_ + "/other", data_ + "/d1/f1"});
    expect_blocked(o, "exec", data_ + "/d1/f1");
}

TEST_F(FileGuardE2E, TruncateToZero) {
    auto o = attack("truncate", {"truncate", "-s0", data_ + "/d2/f2"});
    expect_blocked(o, "exec", data_ + "/d2/f2");
}

TEST_F(FileGuardE2E, ShellRedirectTruncates) {
    auto o = attack("redirect", {"bash", "-c", ": > " + data_ + "/d2/f3"});
    expect_blocked(o, "uprobe", data_ + "/d2/f3");
}

TEST_F(FileGuardE2E, DdOverwrite) {
    auto o = attack("dd", {"dd", "if=/dev/zero", "of=" + data_ + "/d4/f4", "bs=1k", "count=1"});
    expect_blocked(o, "exec", data_ + "/d4/f4");
}

TEST_F(FileGuardE2E, ShredUnlink) {
    auto o = attack("shred", {"shred", "-u", data_ + "/d5/f5"});
    expect_blocked(o, "exec", data_ + "/d5/f5");
}

TEST_F(FileGuardE2E, PerlUnlink) {
    auto o = attack("perl-unlink", {"perl", "-e", "unlink '" + data_ + "/d6/f6' or die"});
    expect_blocked(o, "uprobe", data_ + "/d6/f6");
}

TEST_F(FileGuardE2E, SymlinkIntoData) {
    auto o = attack(
        "symlink",
        {"bash", "-c", "ln -s " + data_ + " " + out_ + "/link && rm -rf " + out_ + "/link/"});
    // The link itself is not made (op symlink-to, tests/e2e/symlinks_test.cpp);
    // rm through it would meet the exec layer.
    expect_blocked(o, "uprobe", data_);
    EXPECT_EQ(o.decision.value("op", ""), "symlink-to");
    EXPECT_FALSE(fs::is_symlink(out_ + "/link"));
    fs::remove(out_ + "/link");
}

TEST_F(FileGuardE2E, HardLinkToDataFile) {
    auto o = attack("hardlink", {"bash", "-c",
                                 "ln " + data_ + "/d7/f7 " + out_ + "/hl && : > " + out_ + "/hl"});
    expect_blocked(o, "uprobe", data_ + "/d7/f7");
    EXPECT_EQ(o.decision.value("op", ""), "link");
    fs::remove(out_ + "/hl");
}

TEST_F(FileGuardE2E, PathWithDotDot) {
    auto o = attack(
        "dotdot", {"/usr/bin/python3", "-c", "import os; os.unlink('" + out_ + "/../data/d8/f8')"});
    expect_blocked(o, "uprobe", "../data/d8/f8");
}

// Exec rules judge the program, not the name it gives itself.
TEST_F(FileGuardE2E, RmUnderAnotherNameThroughASymlink) {
    fs::create_symlink("/usr/bin/rm", out_ + "/tidy");
    auto o = attack("symlinked-rm", {out_ + "/tidy", "-rf", data_});
    expect_blocked(o, "exec", data_);
    EXPECT_EQ(o.decision.value("program", ""), "/usr/bin/rm") << o.decision.dump();
    EXPECT_EQ(o.decision.value("judged_as", ""), "rm");
    fs::remove(out_ + "/tidy");
}

TEST_F(FileGuardE2E, AProgramThatActsAsFindByItsArgv0) {
    // An agent binary that runs its built-in find when started as
    // `exec -a bfs AGENT`: here a copy of find under another name.
    fs::copy_file("/usr/bin/find", out_ + "/agent-tool");
    fs::permissions(out_ + "/agent-tool", fs::perms::owner_all);
    auto o = attack("argv0-bfs",
                    {"bash", "-c", "exec -a bfs " + out_ + "/agent-tool " + data_ + " -delete"});
    expect_blocked(o, "exec", data_);
    EXPECT_EQ(o.decision.value("program", ""), out_ + "/agent-tool") << o.decision.dump();
    EXPECT_EQ(o.decision.value("judged_as", ""), "find");
    EXPECT_EQ(o.decision.value("argv", json::array()).at(0), "bfs");
    fs::remove(out_ + "/agent-tool");
}

TEST_F(FileGuardE2E, BusyboxApplet) {
    auto o = attack("busybox-rm", {"busybox", "rm", "-rf", data_});
    expect_blocked(o, "exec", data_);
    EXPECT_EQ(o.decision.value("judged_as", ""), "rm") << o.decision.dump();
}

TEST_F(FileGuardE2E, StaticRawSyscallLosesAtMostOneFile) {
    std::vector<std::string> argv = {helper("raw_unlinkat")};
    for (int f = 0; f < kFilesPerDir; ++f) argv.push_back(data_ + "/d9/f" + std::to_string(f));
    auto o = attack("raw-syscall", argv);
    // The syscall tracepoint stops it at the entry of its first unlinkat; that
    // one call completes.
    EXPECT_LE(o.loss.files, 1u);
    EXPECT_TRUE(o.stopped) << o.run.out << o.run.err;
    ASSERT_FALSE(o.decision.is_null());
    EXPECT_EQ(o.decision.value("layer", ""), "tracepoint");
    EXPECT_EQ(o.decision.value("prevented", true), false);
    EXPECT_NE(o.decision.value("path", "").find(data_ + "/d9/f0"), std::string::npos);
    // It ran: the session does not go on (sessions.on_contained).
    EXPECT_EQ(o.decision.value("session_action", ""), "freeze") << o.decision.dump();
    EXPECT_TRUE(o.decision.value("escalation", json::object()).value("contained", false))
        << o.decision.dump();
}

TEST_F(FileGuardE2E, IoUringUnlink) {
    auto o = attack("io-uring", {helper("uring_unlink"), data_ + "/d10/f10", data_ + "/d10/f11"});
    EXPECT_EQ(o.loss.files, 0u) << o.run.out << o.run.err;
    EXPECT_TRUE(o.stopped);
    ASSERT_FALSE(o.decision.is_null());
    EXPECT_EQ(o.decision.value("op", ""), "io_uring");
    EXPECT_EQ(o.decision.value("rule", ""), "io_uring");
}

TEST_F(FileGuardE2E, UnguardedProcessIsNeverHindered) {
    // The database server is not guarded: it creates, writes, renames and
    // deletes inside the protected tree freely.
    std::string script = "set -e; d=" + data_ +
                         "/d11; echo new > $d/new; echo more >> $d/new; "
                         "mv $d/new $d/renamed; : > $d/renamed; rm $d/renamed; "
                         "mkdir $d/sub; rmdir $d/sub; echo ok";
    size_t before = daemon_->records().size();
    auto r = run_command({"bash", "-c", script});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "ok\n");
    // Give the daemon time to write anything it would have written.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    auto recs = daemon_->records();
    for (size_t i = before; i < recs.size(); ++i)
        EXPECT_NE(recs[i].value("event", ""), "file")
            << "an unguarded process was audited: " << recs[i].dump();
}

// A directory of the protected tree removed (a database drops one) frees its
// inode number, and the file system hands it to the next directory made,
// anywhere: that one is not protected data, and refusing it would refuse
// ordinary work.
TEST_F(FileGuardE2E, TheInodeNumberOfARemovedProtectedDirectoryIsNotProtectedInItsNextOwner) {
    std::string victim = data_ + "/d" + std::to_string(kDirs - 1);
    struct stat st {};
    ASSERT_EQ(::stat(victim.c_str(), &st), 0);
    fs::remove_all(victim);  // unguarded, as the database server would
    std::string reused;
    for (int i = 0; i < 200 && reused.empty(); ++i) {
        std::string d = out_ + "/new" + std::to_string(i);
        fs::create_directory(d);
        struct stat now {};
        if (::stat(d.c_str(), &now) == 0 && now.st_ino == st.st_ino) reused = d;
    }
    if (reused.empty()) GTEST_SKIP() << "the file system gave no new directory the inode number";
    // The daemon sees the tree changed within its one-second tick.
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    auto o = attack("reused-inode", {"sh", "-c", "rmdir " + reused + " && echo gone"});
    EXPECT_EQ(o.run.status, 0) << o.run.err;
    EXPECT_EQ(o.run.out, "gone\n");
    EXPECT_TRUE(o.decision.is_null()) << o.decision.dump();
    EXPECT_FALSE(fs::exists(reused));
}

TEST_F(FileGuardE2E, GuardedHarmlessWorkOutsideIsUntouched) {
    auto o = attack("harmless", {"bash", "-c",
                                 "cd " + out_ +
                                     " && mkdir -p w && echo x > w/a && mv w/a w/b && "
                                     "rm -rf w && cat " +
                                     data_ + "/d0/f0 > /dev/null && echo fine"});
    EXPECT_EQ(o.run.status, 0) << o.run.err;
    EXPECT_EQ(o.run.out, "fine\n");
    EXPECT_TRUE(o.decision.is_null()) << o.decision.dump();
    EXPECT_EQ(o.loss.files, 0u);
}

}  // namespace
}  // namespace ks::test
