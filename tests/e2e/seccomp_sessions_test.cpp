// `killswitch daemon --seccomp-sessions` on a kernel with no hook layer (this
// one): `killswitch run` sessions are put under a seccomp filter and the
// daemon answers each destructive call before it runs. What must hold: a
// static binary's raw unlinkat, which the syscall tracepoints only stop
// after it has run, is refused (EPERM) and the file stays; ordinary work in
// the session goes on unrecorded; a signal at a process outside the session
// is refused and the process lives, one at the daemon kills its sender; a
// held call waits in the kernel until a person approves it; an allocation
// past the space budget is refused before it allocates; while only such
// sessions exist (and protect.min_free is off) no syscall tracepoint is
// attached; and with the daemon gone, the calls it would have answered wait
// for the next one, which the session's wrapper hands the listener (a held
// call included).
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>
#include <tuple>

#include "harness.h"
#include "seccomp_guard/filter.h"

namespace ks::test {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// An unguarded process of the test's own (the one a session reaches for),
// ended however the test ends.
struct Sleeper {
    pid_t pid = ::fork();
    Sleeper() {
        if (pid == 0) {
            ::execlp("sleep", "sleep", "60", nullptr);
            _exit(127);
        }
    }
    ~Sleeper() {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
    }
};

class SeccompSessions : public ::testing::Test {
  protected:
    void SetUp() override {
        KS_REQUIRE_ROOT();
        if (auto why = seccomp::unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
        data_ = dir_ / "pgdata";
        held_ = dir_ / "exports";
        fs::create_directories(data_);
        fs::create_directories(held_);
        for (const char* f : {"f1", "f2", "f3"}) std::ofstream(data_ + "/" + f) << "rows\n";
        std::ofstream(held_ + "/report") << "rows\n";
        policy_ = dir_ / "policy.yaml";
        std::ofstream(policy_) << "version: 1\nprotect:\n  paths:\n    - " << data_
                               << "\n    - {path: " << held_
                               << ", action: hold}\n  min_free: off\n  hold_timeout: 60\n";
    }
    void start(std::vector<std::string> extra = {"--seccomp-sessions"}) {
        d_ = std::make_unique<Daemon>(Daemon::Options{.policy_file = policy_, .extra_args = extra});
        ASSERT_TRUE(d_->ready()) << d_->stderr_text();
    }
    json status() const { return json::parse(d_->cli({"status", "--json"}).out); }
    // A run session named idle that waits until the file go exists.
    std::future<CommandResult> idle_session(const std::string& go) {
        return std::async(std::launch::async, [this, go] {
            return d_->cli({"run", "--session", "idle", "--", "sh", "-c",
                            "while [ ! -e " + go + " ]; do sleep 0.05; done"},
                           std::chrono::seconds(60));
        });
    }
    // A run session whose python unlinks file (a held path) and says so.
    std::future<CommandResult> start_held_unlink(const std::string& file) {
        return std::async(std::launch::async, [this, file] {
            return d_->cli({"run", "--session", "held", "--", "python3", "-c",
                            "import os; os.unlink('" + file + "'); print('deleted')"},
                           std::chrono::seconds(60));
        });
    }

    TempDir dir_;
    std::string data_, held_, policy_;
    std::unique_ptr<Daemon> d_;
};

TEST_F(SeccompSessions, ARawSystemCallIsRefusedBeforeItRuns) {
    // Unguarded, the static helper deletes protected data.
    std::ofstream(data_ + "/scratch") << "rows\n";
    auto free = run_command({helper("raw_unlinkat"), data_ + "/scratch"});
    EXPECT_EQ(free.out, "deleted 1\n") << free.err;
    EXPECT_FALSE(fs::exists(data_ + "/scratch"));

    start();
    auto r = d_->cli(
        {"run", "--session", "raw", "--", helper("raw_unlinkat"), data_ + "/f1", data_ + "/f2"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "deleted 0\n") << r.err;
    EXPECT_NE(r.err.find("unlinkat " + data_ + "/f1: Operation not permitted"), std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("killswitch: refused unlink " + data_ + "/f1"), std::string::npos)
        << r.err;
    EXPECT_TRUE(fs::exists(data_ + "/f1"));
    EXPECT_TRUE(fs::exists(data_ + "/f2"));
    json rec = session_record(*d_, "file", "raw");
    ASSERT_FALSE(rec.is_null());
    EXPECT_EQ(rec.value("layer", ""), "seccomp") << rec.dump();
    EXPECT_EQ(rec.value("op", ""), "unlink");
    EXPECT_EQ(rec.value("path", ""), data_ + "/f1");
    EXPECT_EQ(rec.value("refused", ""), "EPERM");
    EXPECT_TRUE(rec.value("prevented", false));
}

TEST_F(SeccompSessions, OnlyRunSessionsAliveNoSyscallTracepointIsAttached) {
    start();
    std::string go = dir_ / "go";
    auto agent = idle_session(go);
    ASSERT_TRUE(wait_until([&] {
        json s = status()["layers"];
        return s["seccomp_sessions"]["sessions"] == json::array({"idle"});
    })) << status()["layers"].dump();
    json layers = status()["layers"];
    EXPECT_EQ(layers["seccomp_sessions"]["active"], true);
    EXPECT_EQ(layers["file_tracepoints_attached"], false) << layers.dump();
    // The exec layer stays: a destructive tool is still judged by its argv.
    auto rm = d_->cli({"run", "--session", "rm", "--", "rm", "-rf", data_});
    EXPECT_NE(rm.status, 0);
    EXPECT_TRUE(fs::exists(data_ + "/f3"));
    std::ofstream(go) << "";
    EXPECT_EQ(agent.get().status, 0);
}

// Run sessions one after another while another lives under its filter:
// each starts. (The second once could not: as the first ended, its session
// needed the tracepoints for a moment, and attaching them failed on a
// program of the space budget that min_free off had left unloaded.)
TEST_F(SeccompSessions, RunSessionsOneAfterAnotherEachStart) {
    start();
    std::string go = dir_ / "go";
    auto idle = idle_session(go);
    ASSERT_TRUE(wait_until([&] {
        return status()["layers"]["file_tracepoints_attached"] == false;
    })) << status()["layers"].dump();
    for (int i = 0; i < 4; ++i) {
        auto r = d_->cli({"run", "--session", "next-" + std::to_string(i), "--", "sh", "-c",
                          "echo ran > " + std::string(dir_ / "out")});
        EXPECT_EQ(r.status, 0) << "run " << i << ": " << r.err << d_->stderr_text();
    }
    // Protection holds in the last: a raw unlinkat refused before it runs.
    auto raw =
        d_->cli({"run", "--session", "raw-last", "--", helper("raw_unlinkat"), data_ + "/f1"});
    EXPECT_EQ(raw.out, "deleted 0\n") << raw.err;
    EXPECT_TRUE(fs::exists(data_ + "/f1"));
    std::ofstream(go) << "";
    EXPECT_EQ(idle.get().status, 0);
}

TEST_F(SeccompSessions, OrdinaryWorkInTheSessionGoesOnUnrecorded) {
    start();
    std::string work = dir_ / "work";
    fs::create_directories(work);
    std::string script = "set -e; cd " + work +
                         "; echo x > a; echo y >> a; mv a b; chmod 600 b; ln -s b c; ln b e;"
                         " : > b; rm b c e; mkdir d; rmdir d; cat " +
                         data_ +
                         "/f1 > /dev/null; python3 -c 'import os; os.kill(os.getpid(), 0)';"
                         " echo ok";
    auto r = d_->cli({"run", "--session", "work", "--", "sh", "-c", script});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "ok\n") << r.err;
    for (const auto& rec : d_->records()) EXPECT_NE(rec.value("event", ""), "file") << rec.dump();
    EXPECT_GT(status()["layers"]["seccomp_sessions"]["passed"].get<uint64_t>(), 5u);
}

TEST_F(SeccompSessions, ASignalOutsideTheSessionIsRefusedAndTheTargetLives) {
    start();
    Sleeper sleeper;
    pid_t target = sleeper.pid;
    auto r = d_->cli({"run", "--session", "sig", "--", "sh", "-c",
                      "kill -9 " + std::to_string(target) + "; echo kill=$?"});
    EXPECT_NE(r.out.find("kill=1"), std::string::npos) << r.out << r.err;
    EXPECT_EQ(::waitpid(target, nullptr, WNOHANG), 0) << "the unguarded process died";
    json rec = session_record(*d_, "reach", "sig");
    ASSERT_FALSE(rec.is_null());
    EXPECT_EQ(rec.value("layer", ""), "seccomp") << rec.dump();
    EXPECT_EQ(rec.value("refused", ""), "EPERM");
    EXPECT_EQ(rec.value("target", 0), target);
}

TEST_F(SeccompSessions, AnotherProcessMemoryIsNotOpenedForWriting) {
    start();
    Sleeper sleeper;
    pid_t target = sleeper.pid;
    std::string py =
        "import os\n"
        "def tryopen(p):\n"
        "    try:\n"
        "        os.close(os.open(p, os.O_RDWR)); return 'opened'\n"
        "    except OSError as e: return e.strerror\n"
        "print(tryopen('/proc/" +
        std::to_string(target) + "/mem'), tryopen('/proc/self/mem'))\n";
    // Unguarded, root opens it (and could write into the process).
    auto free = run_command({"python3", "-c", py});
    EXPECT_EQ(free.out, "opened opened\n") << free.err;
    auto r = d_->cli({"run", "--session", "mem", "--", "python3", "-c", py});
    EXPECT_EQ(r.out, "Operation not permitted opened\n") << r.err;
    EXPECT_EQ(::waitpid(target, nullptr, WNOHANG), 0);
    json rec = session_record(*d_, "reach", "mem");
    ASSERT_FALSE(rec.is_null());
    EXPECT_EQ(rec.value("what", ""), "ptrace") << rec.dump();
    EXPECT_EQ(rec.value("layer", ""), "seccomp");
    EXPECT_EQ(rec.value("target", 0), target);
}

// The wrapper keeps a copy of the session's listener: a process of the
// session that took it could answer its own calls.
TEST_F(SeccompSessions, TheWrappersDescriptorsAreOutOfReach) {
    start();
    // One try (a loop of refusals would freeze the session: escalation).
    std::string py =
        "import os, ctypes\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "pfd = os.pidfd_open(os.getppid())\n"
        "r = libc.syscall(438, pfd, 2, 0)\n"
        "print('took' if r >= 0 else os.strerror(ctypes.get_errno()))\n";
    // Unguarded, root takes its parent's (this test's) descriptor.
    auto free = run_command({"python3", "-c", py});
    EXPECT_EQ(free.out, "took\n") << free.err;
    auto r = d_->cli({"run", "--session", "steal", "--", "python3", "-c", py});
    EXPECT_EQ(r.out, "Operation not permitted\n") << r.err;
    json rec = session_record(*d_, "reach", "steal");
    ASSERT_FALSE(rec.is_null());
    EXPECT_EQ(rec.value("layer", ""), "seccomp") << rec.dump();
    EXPECT_EQ(rec.value("target", 0), wrapper_pid(*d_, "steal"));
}

TEST_F(SeccompSessions, ASignalAtTheDaemonIsRefusedAndTheSenderDies) {
    start();
    auto r = d_->cli({"run", "--session", "tamper", "--", "sh", "-c",
                      "kill -9 " + std::to_string(d_->pid()) + "; echo survived"});
    EXPECT_EQ(r.status, 128 + SIGKILL) << r.out << r.err;
    EXPECT_EQ(r.out.find("survived"), std::string::npos) << r.out;
    EXPECT_EQ(::kill(d_->pid(), 0), 0) << "the daemon is gone";
    json rec = session_record(*d_, "tamper", "tamper");
    ASSERT_FALSE(rec.is_null());
    EXPECT_EQ(rec.value("layer", ""), "seccomp") << rec.dump();
    EXPECT_EQ(rec.value("what", ""), "signal");
    EXPECT_EQ(rec.value("refused", ""), "EPERM");
    EXPECT_TRUE(rec.value("prevented", false));
}

TEST_F(SeccompSessions, AHeldCallWaitsInTheKernelUntilAPersonApproves) {
    start();
    std::string file = held_ + "/report";
    auto agent = start_held_unlink(file);
    json holds;
    ASSERT_TRUE(wait_until([&] {
        holds = json::parse(d_->cli({"holds", "--json"}).out);
        return holds.size() == 1;
    })) << holds.dump();
    EXPECT_EQ(holds[0].value("layer", ""), "seccomp") << holds.dump();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_TRUE(fs::exists(file)) << "the held call ran";
    uint64_t id = holds[0]["id"];
    EXPECT_EQ(d_->cli({"approve", std::to_string(id)}).status, 0);
    auto r = agent.get();
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "deleted\n");
    EXPECT_FALSE(fs::exists(file));
    json approved = first_record(*d_, [&](const json& x) {
        return x.value("event", "") == "hold_approved" && x.value("hold_id", 0u) == id;
    });
    EXPECT_FALSE(approved.is_null());
}

// The listener's copy stays with the session's wrapper: while the daemon is
// down the filtered calls wait, and the next daemon is handed the listener.
TEST_F(SeccompSessions, ARestartedDaemonIsHandedTheSessionByItsWrapper) {
    start();
    std::string go = dir_ / "go";
    // A static binary's raw call: after a clean stop the libc layer stays
    // pinned for every process and would stop a libc unlink first.
    std::string script = "while [ ! -e " + go + " ]; do sleep 0.05; done; " +
                         helper("raw_unlinkat") + " " + data_ + "/f3";
    auto agent = std::async(std::launch::async, [&] {
        return d_->cli({"run", "--session", "calm", "--", "sh", "-c", script},
                       std::chrono::seconds(60));
    });
    ASSERT_TRUE(wait_until([&] {
        return status()["layers"]["seccomp_sessions"]["sessions"] == json::array({"calm"});
    }));
    ASSERT_EQ(d_->stop_keep_sessions(), 0);
    std::ofstream(go) << "";
    // No daemon: the unlink waits in the kernel.
    EXPECT_EQ(agent.wait_for(std::chrono::milliseconds(1500)), std::future_status::timeout);
    EXPECT_TRUE(fs::exists(data_ + "/f3"));
    ASSERT_TRUE(d_->restart()) << d_->stderr_text();
    auto r = agent.get();
    EXPECT_EQ(r.out, "deleted 0\n") << r.err;
    EXPECT_NE(r.err.find("unlinkat " + data_ + "/f3: Operation not permitted"), std::string::npos)
        << r.out << r.err;
    EXPECT_TRUE(fs::exists(data_ + "/f3"));
    json rec = first_record(*d_, [](const json& x) {
        return x.value("event", "") == "file" && x.value("layer", "") == "seccomp" &&
               x.value("op", "") == "unlink";
    });
    EXPECT_FALSE(rec.is_null()) << [&] {
        std::string all;
        for (const auto& x : d_->records())
            if (x.value("event", "") == "file" || x.value("event", "") == "error")
                all += x.dump() + "\n";
        return all;
    }();
}

TEST_F(SeccompSessions, AHeldCallOutlivesTheDaemonThatHeldIt) {
    start();
    std::string file = held_ + "/report";
    auto agent = start_held_unlink(file);
    json holds;
    ASSERT_TRUE(wait_until([&] {
        holds = json::parse(d_->cli({"holds", "--json"}).out);
        return holds.size() == 1;
    })) << holds.dump();
    uint64_t id = holds[0]["id"];
    d_->kill_hard();
    ASSERT_TRUE(d_->restart()) << d_->stderr_text();
    auto after = json::parse(d_->cli({"holds", "--json"}).out);
    ASSERT_EQ(after.size(), 1u) << after.dump();
    EXPECT_EQ(after[0]["id"], id);
    EXPECT_TRUE(fs::exists(file));
    EXPECT_EQ(d_->cli({"approve", std::to_string(id)}).status, 0);
    auto r = agent.get();
    EXPECT_EQ(r.out, "deleted\n") << r.status << " " << r.err << d_->stderr_text();
    EXPECT_FALSE(fs::exists(file));
}

// With the space budget on (the default) the syscall tracepoints stay
// attached beside the filter, and a call the filter lets through meets them
// next: an approved hold, and a chown that changes nothing (here a static
// binary's raw one, which the tracepoints alone would stop), go on; a real
// change is refused by the filter before the tracepoints see it.
TEST_F(SeccompSessions, WithTheTracepointsAttachedTooWhatTheFilterLetsThroughGoesOn) {
    std::ofstream(policy_) << "version: 1\nprotect:\n  paths:\n    - " << data_
                           << "\n    - {path: " << held_ << ", action: hold}\n  hold_timeout: 60\n";
    start();
    std::string file = held_ + "/report";
    auto agent = start_held_unlink(file);
    json holds;
    ASSERT_TRUE(wait_until([&] {
        holds = json::parse(d_->cli({"holds", "--json"}).out);
        return holds.size() == 1;
    })) << holds.dump();
    EXPECT_EQ(status()["layers"]["file_tracepoints_attached"], true);
    EXPECT_EQ(d_->cli({"approve", std::to_string(holds[0]["id"].get<uint64_t>())}).status, 0);
    auto r = agent.get();
    EXPECT_EQ(r.out, "deleted\n") << r.status << " " << r.err;
    EXPECT_FALSE(fs::exists(file));

    std::string f1 = data_ + "/f1";
    auto mode = fs::status(f1).permissions();
    auto meta =
        d_->cli({"run", "--session", "meta", "--", helper("raw_metadata"), "same-owner", f1});
    EXPECT_EQ(meta.status, 0) << meta.err;
    EXPECT_EQ(meta.out, f1 + ": changed\n") << meta.err;
    auto change =
        d_->cli({"run", "--session", "meta2", "--", helper("raw_metadata"), "mode000", f1});
    EXPECT_EQ(change.out, f1 + ": EPERM\n") << change.err;
    EXPECT_EQ(fs::status(f1).permissions(), mode);
}

// A static program's symbolic link to the data: at the syscall tracepoint
// it is made before its maker stops; the session's filter refuses it before
// it is made, judged by where its target leads from the link's directory.
// Other links are made.
TEST_F(SeccompSessions, AStaticProgramsLinkToTheDataIsNotMade) {
    // The data one level down, so that the directory above it holds nothing
    // else protected (the test's directory holds the policy: a link to it
    // falls under self-protection's rule, which freezes the session).
    std::string data = dir_ / "srv/db";
    fs::create_directories(data);
    std::ofstream(data + "/PG_VERSION") << "15\n";
    std::ofstream(policy_) << "version: 1\nprotect:\n  paths: [" << data << "]\n  min_free: off\n";
    start();
    std::string links = dir_ / "links";
    fs::create_directories(links + "/a");
    for (const auto& [session, target, link] :
         {std::tuple<std::string, std::string, std::string>{"absolute", data, links + "/x"},
          {"relative", fs::relative(data, links + "/a").string(), links + "/a/y"},
          {"above", dir_ / "srv", links + "/z"}}) {
        auto r = d_->cli({"run", "--session", session, "--", "busybox", "ln", "-s", target, link});
        EXPECT_NE(r.status, 0) << session;
        EXPECT_FALSE(fs::is_symlink(link)) << session << ": the link was made";
        json rec = session_record(*d_, "file", session);
        ASSERT_FALSE(rec.is_null()) << session << ": no record";
        EXPECT_EQ(rec.value("op", ""), "symlink-to") << session;
        EXPECT_EQ(rec.value("layer", ""), "seccomp") << session;
        EXPECT_TRUE(rec.value("prevented", false)) << session;
        if (session == "reconfigure-other-mount") {
            EXPECT_EQ(rec.value("op", ""), "remount");
            EXPECT_EQ(rec.value("match", ""), "filesystem-of-protected");
        }
    }
    auto free = d_->cli({"run", "--session", "free", "--", "busybox", "ln", "-s",
                         "/usr/bin/python3", links + "/p"});
    EXPECT_EQ(free.status, 0) << free.err;
    EXPECT_TRUE(fs::is_symlink(links + "/p"));
}

// The new mount API with raw calls: the syscall tracepoints would stop each
// only as it returns (the file system moved away, or read-only, by then);
// the session's filter refuses it before it runs. A copy of the data is
// refused too, and another file system moves freely.
TEST_F(SeccompSessions, TheDatasFileSystemIsNotMovedCopiedOrMadeReadOnlyByRawCalls) {
    std::string arena = dir_ / "arena";
    fs::create_directories(arena);
    if (::mount("ks-test-seccomp", arena.c_str(), "tmpfs", 0, "size=16m") != 0 ||
        ::mount(nullptr, arena.c_str(), nullptr, MS_PRIVATE, nullptr) != 0)
        GTEST_SKIP() << "cannot mount a private tmpfs: " << std::strerror(errno);
    struct Unmount {
        std::string at;
        ~Unmount() { ::umount2(at.c_str(), MNT_DETACH); }
    } unmount{arena};
    for (const char* m : {"srv", "scratch"}) {
        std::string at = arena + "/" + m;
        fs::create_directories(at);
        ASSERT_EQ(::mount("ks-test-seccomp", at.c_str(), "tmpfs", 0, "size=4m"), 0)
            << std::strerror(errno);
        fs::create_directories(at + "/db");
        std::ofstream(at + "/db/PG_VERSION") << "15\n";
    }
    fs::create_directories(arena + "/moved");
    fs::create_directories(arena + "/view");
    // Another mount of the data's file system: a bind of one of its other
    // directories (its remount is the data's).
    fs::create_directories(arena + "/srv/other");
    fs::create_directories(arena + "/other-mount");
    ASSERT_EQ(::mount((arena + "/srv/other").c_str(), (arena + "/other-mount").c_str(), nullptr,
                      MS_BIND, nullptr),
              0)
        << std::strerror(errno);
    std::string mount_api = helper("raw_mount_api");
    // Unguarded, the move leaves the path empty (moved back after).
    auto shown = run_command({mount_api, "move", arena + "/scratch", arena + "/moved"});
    EXPECT_EQ(shown.status, 0) << shown.out;
    EXPECT_FALSE(fs::exists(arena + "/scratch/db"));
    ASSERT_EQ(run_command({mount_api, "move", arena + "/moved", arena + "/scratch"}).status, 0);

    std::ofstream(policy_) << "version: 1\nprotect:\n  paths: [" << arena << "/srv/db]\n";
    start();
    for (const auto& [session, args] :
         {std::pair<std::string, std::vector<std::string>>{
              "move", {"move", arena + "/srv", arena + "/moved"}},
          {"copy", {"bind", arena + "/srv/db", arena + "/view", "PG_VERSION"}},
          {"readonly", {"readonly", arena + "/srv"}},
          {"reconfigure", {"reconfigure", arena + "/srv"}},
          {"reconfigure-other-mount", {"reconfigure", arena + "/other-mount"}}}) {
        std::vector<std::string> argv = {"run", "--session", session, "--", mount_api};
        argv.insert(argv.end(), args.begin(), args.end());
        auto r = d_->cli(argv);
        EXPECT_NE(r.status, 0) << session << ": " << r.out;
        EXPECT_NE(r.out.find("EPERM"), std::string::npos) << session << ": " << r.out << r.err;
        EXPECT_TRUE(fs::exists(arena + "/srv/db/PG_VERSION")) << session;
        if (session.rfind("reconfigure", 0) == 0) {
            EXPECT_NE(r.out.find("fspick: EPERM"), std::string::npos) << r.out;
        }
        json rec = session_record(*d_, "file", session);
        ASSERT_FALSE(rec.is_null()) << session << ": no record";
        EXPECT_EQ(rec.value("layer", ""), "seccomp") << session;
        EXPECT_TRUE(rec.value("prevented", false)) << session;
    }
    std::ofstream(arena + "/srv/db/written") << "x\n";
    EXPECT_TRUE(fs::exists(arena + "/srv/db/written")) << "the data's file system is read-only";
    auto free = d_->cli({"run", "--session", "free", "--", mount_api, "move", arena + "/scratch",
                         arena + "/moved"});
    EXPECT_EQ(free.status, 0) << free.out << free.err;
    EXPECT_TRUE(fs::exists(arena + "/moved/db/PG_VERSION"));
}

// An allocation says its size: past the space budget's headroom it is
// refused before the file system gives anything (a 64 MiB tmpfs of the
// test's own, floor 50%).
TEST_F(SeccompSessions, AnAllocationPastTheSpaceBudgetIsRefusedBeforeItAllocates) {
    std::string mnt = dir_ / "fs";
    fs::create_directories(mnt);
    if (::mount("ks-test-seccomp", mnt.c_str(), "tmpfs", 0, "size=64m,mode=0755") != 0)
        GTEST_SKIP() << "cannot mount a tmpfs: " << std::strerror(errno);
    struct Unmount {
        std::string at;
        ~Unmount() { ::umount2(at.c_str(), MNT_DETACH); }
    } unmount{mnt};
    fs::create_directories(mnt + "/data");
    std::ofstream(policy_) << "version: 1\nprotect:\n  paths: [" << mnt
                           << "/data]\n  min_free: 50%\n";
    start();
    auto big = d_->cli({"run", "--session", "fill", "--", "fallocate", "-l", "48M", mnt + "/big"});
    EXPECT_NE(big.status, 0) << big.out << big.err;
    struct stat st {};
    if (::stat((mnt + "/big").c_str(), &st) == 0) {
        EXPECT_EQ(st.st_blocks, 0) << "allocated";
    }
    json rec = session_record(*d_, "file", "fill");
    ASSERT_FALSE(rec.is_null());
    EXPECT_EQ(rec.value("layer", ""), "seccomp") << rec.dump();
    EXPECT_EQ(rec.value("op", ""), "write");
    EXPECT_EQ(rec.value("match", ""), "low-space");
    EXPECT_TRUE(rec.value("prevented", false));
    auto small = d_->cli({"run", "--session", "small", "--", "fallocate", "-l", "1M", mnt + "/s"});
    EXPECT_EQ(small.status, 0) << small.err;
}

}  // namespace
}  // namespace ks::test
