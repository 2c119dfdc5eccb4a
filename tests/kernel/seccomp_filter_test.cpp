// The session filter on the running kernel, with no daemon: a child installs
// it and hands its listener to the test, which answers as the daemon would.
// What must hold: the calls the filter names reach the listener before they
// run, a refusal leaves the file there, the calls it does not name (reads)
// never wait, and another ABI's calls are refused outright.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "common/fd.h"
#include "control/control.h"
#include "seccomp_guard/filter.h"
#include "seccomp_guard/notice.h"

namespace fs = std::filesystem;
using namespace ks;

namespace {

class SeccompFilter : public ::testing::Test {
  protected:
    void SetUp() override {
        if (auto why = seccomp::unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
        dir_ = fs::temp_directory_path() / ("ks-seccomp-" + std::to_string(::getpid()));
        fs::create_directories(dir_);
    }
    void TearDown() override {
        if (child_ > 0) {
            ::kill(child_, SIGKILL);
            ::waitpid(child_, nullptr, 0);
        }
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    // Starts body in a child under the filter; returns the listener.
    template <typename F>
    Fd start(F body) {
        int sv[2];
        EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        child_ = ::fork();
        if (child_ == 0) {
            ::close(sv[0]);
            auto listener = seccomp::install_session_filter();
            if (!listener) _exit(100);
            if (!send_with_fd(sv[1], "x", listener->get())) _exit(101);
            listener->reset();
            char go;
            if (::read(sv[1], &go, 1) != 1) _exit(102);
            _exit(body());
        }
        ::close(sv[1]);
        Fd sock(sv[0]);
        pollfd p{sock.get(), POLLIN, 0};
        EXPECT_EQ(::poll(&p, 1, 5000), 1);
        char buf[8];
        Fd listener;
        EXPECT_EQ(receive_with_fd(sock.get(), buf, sizeof(buf), listener), 1);
        EXPECT_TRUE(listener.valid());
        EXPECT_EQ(::write(sock.get(), "g", 1), 1);
        sock_ = std::move(sock);
        return listener;
    }

    // The next notification within timeout_ms, or none.
    std::optional<seccomp::Notice> next(int listener, int timeout_ms = 5000) {
        pollfd p{listener, POLLIN, 0};
        if (::poll(&p, 1, timeout_ms) != 1 || !(p.revents & POLLIN)) return std::nullopt;
        auto n = seccomp::receive(listener);
        if (!n) return std::nullopt;
        return *n;
    }

    int exit_status() {
        int status = 0;
        ::waitpid(child_, &status, 0);
        child_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }

    fs::path dir_;
    pid_t child_ = -1;
    Fd sock_;
};

TEST_F(SeccompFilter, ARefusedUnlinkLeavesTheFileAndTheCallerSeesEperm) {
    std::string file = (dir_ / "table").string();
    {
        FILE* f = fopen(file.c_str(), "w");
        fputs("rows", f);
        fclose(f);
    }
    Fd l = start([file] {
        long rc = ::syscall(SYS_unlinkat, AT_FDCWD, file.c_str(), 0);
        return rc == -1 && errno == EPERM ? 0 : 1;
    });
    auto n = next(l.get());
    ASSERT_TRUE(n);
    EXPECT_EQ(n->nr, SYS_unlinkat);
    seccomp::Call c = seccomp::decode_call(n->nr, n->args);
    ASSERT_EQ(c.kind, seccomp::Call::Kind::kFiles);
    ASSERT_TRUE(seccomp::read_paths(n->tid, c));
    EXPECT_TRUE(seccomp::still_waiting(l.get(), n->id));
    ASSERT_EQ(c.paths.size(), 1u);
    EXPECT_EQ(c.paths[0].path, file);
    EXPECT_EQ(c.paths[0].op, KS_OP_UNLINK);
    // Not yet answered: the call has not run.
    EXPECT_TRUE(fs::exists(file));
    ASSERT_TRUE(seccomp::answer(l.get(), n->id, EPERM));
    EXPECT_EQ(exit_status(), 0);
    EXPECT_TRUE(fs::exists(file));
}

TEST_F(SeccompFilter, AnAnsweredCallGoesOnAndReadsNeverWait) {
    std::string file = (dir_ / "notes").string();
    {
        FILE* f = fopen(file.c_str(), "w");
        fputs("x", f);
        fclose(f);
    }
    Fd l = start([file] {
        // Reads and stats: not named by the filter.
        for (int i = 0; i < 100; ++i) {
            int fd = ::open(file.c_str(), O_RDONLY);
            if (fd < 0) return 1;
            ::close(fd);
            struct stat st;
            if (::stat(file.c_str(), &st) != 0) return 2;
        }
        int fd = ::open(file.c_str(), O_WRONLY | O_APPEND);
        if (fd < 0) return 3;
        ::close(fd);
        return ::unlink(file.c_str()) == 0 ? 0 : 4;
    });
    // The first call to reach the listener is the open for writing.
    auto n = next(l.get());
    ASSERT_TRUE(n);
    seccomp::Call c = seccomp::decode_call(n->nr, n->args);
    ASSERT_TRUE(seccomp::read_paths(n->tid, c));
    ASSERT_EQ(c.paths.size(), 1u);
    EXPECT_EQ(c.paths[0].op, KS_OP_OPEN_WRITE);
    EXPECT_EQ(c.paths[0].path, file);
    ASSERT_TRUE(seccomp::answer(l.get(), n->id, 0));
    n = next(l.get());
    ASSERT_TRUE(n);
    c = seccomp::decode_call(n->nr, n->args);
    ASSERT_EQ(c.paths.size(), 1u);
    EXPECT_EQ(c.paths[0].op, KS_OP_UNLINK);
    ASSERT_TRUE(seccomp::answer(l.get(), n->id, 0));
    EXPECT_EQ(exit_status(), 0);
    EXPECT_FALSE(fs::exists(file));
}

TEST_F(SeccompFilter, ASignalToAnotherProcessAsksAndA32BitCallIsRefused) {
    pid_t me = ::getpid();
    Fd l = start([me] {
        if (::kill(me, 0) != 0) return 1;  // answered: goes on
        // int 0x80 unlink (i386 number 10) of nothing: refused by the
        // filter itself, never asked.
        long rc;
        const char* path = "/nonexistent-ks";
        asm volatile("int $0x80" : "=a"(rc) : "a"(10), "b"(path) : "memory");
        return rc == -EPERM ? 0 : 2;
    });
    auto n = next(l.get());
    ASSERT_TRUE(n);
    seccomp::Call c = seccomp::decode_call(n->nr, n->args);
    EXPECT_EQ(c.kind, seccomp::Call::Kind::kProcess);
    EXPECT_EQ(c.target, me);
    EXPECT_EQ(c.arg, 0u);
    ASSERT_TRUE(seccomp::answer(l.get(), n->id, 0));
    EXPECT_EQ(exit_status(), 0);
}

TEST_F(SeccompFilter, TheListenerClosedRefusesWhatItWouldHaveAsked) {
    // With no one to answer (the daemon gone), a named call fails with
    // ENOSYS instead of running.
    std::string file = (dir_ / "kept").string();
    {
        FILE* f = fopen(file.c_str(), "w");
        fputs("x", f);
        fclose(f);
    }
    Fd l = start([file] {
        usleep(200 * 1000);
        long rc = ::syscall(SYS_unlinkat, AT_FDCWD, file.c_str(), 0);
        return rc == -1 && errno == ENOSYS ? 0 : 1;
    });
    l.reset();
    EXPECT_EQ(exit_status(), 0);
    EXPECT_TRUE(fs::exists(file));
}

}  // namespace
