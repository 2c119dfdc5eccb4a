// The refusal message reaches the offender's stderr when it is a pipe (what
// an agent's tool reads), falls back to its parent's when it is gone, and
// is never written into a regular file.
#include "actions/tell.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace ks {
namespace {

// A child whose stderr is fd, stopped (as the kernel stops a held task).
pid_t stopped_child_with_stderr(int fd) {
    pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(fd, 2);
        ::raise(SIGSTOP);
        ::_exit(0);
    }
    int st = 0;
    ::waitpid(pid, &st, WUNTRACED);
    return pid;
}

void end(pid_t pid) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
}

std::string drain(int fd) {
    std::string out;
    char buf[4096];
    ::fcntl(fd, F_SETFL, O_NONBLOCK);
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
    return out;
}

TEST(Tell, TheMessageReachesTheOffendersStderrPipe) {
    int p[2];
    ASSERT_EQ(::pipe(p), 0);
    pid_t child = stopped_child_with_stderr(p[1]);
    auto r = tell_process(child, 0, "killswitch: refused rm -rf /srv/data\n");
    end(child);
    ::close(p[1]);
    ASSERT_TRUE(r) << r.error().str();
    EXPECT_EQ(*r, "pid " + std::to_string(child) + " stderr (pipe)");
    EXPECT_EQ(drain(p[0]), "killswitch: refused rm -rf /srv/data\n");
    ::close(p[0]);
}

TEST(Tell, AGoneOffenderIsToldThroughItsParent) {
    int p[2];
    ASSERT_EQ(::pipe(p), 0);
    pid_t parent = stopped_child_with_stderr(p[1]);
    pid_t gone = ::fork();
    if (gone == 0) ::_exit(0);
    ::waitpid(gone, nullptr, 0);
    auto r = tell_process(gone, parent, "why\n");
    end(parent);
    ::close(p[1]);
    ASSERT_TRUE(r) << r.error().str();
    EXPECT_EQ(drain(p[0]), "why\n");
    ::close(p[0]);
}

TEST(Tell, ARegularFileIsNeverWritten) {
    auto path = std::filesystem::temp_directory_path() / ("ks-tell-" + std::to_string(getpid()));
    std::ofstream(path) << "rows\n";
    int fd = ::open(path.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    pid_t child = stopped_child_with_stderr(fd);
    auto r = tell_process(child, 0, "killswitch: refused\n");
    end(child);
    ::close(fd);
    EXPECT_FALSE(r);
    std::ifstream in(path);
    std::string all((std::istreambuf_iterator<char>(in)), {});
    EXPECT_EQ(all, "rows\n");
    std::filesystem::remove(path);
}

TEST(Tell, AFullPipeDoesNotBlockTheDaemon) {
    int p[2];
    ASSERT_EQ(::pipe(p), 0);
    std::string fill(1 << 20, 'x');
    ::fcntl(p[1], F_SETFL, O_NONBLOCK);
    while (::write(p[1], fill.data(), fill.size()) > 0) {
    }
    pid_t child = stopped_child_with_stderr(p[1]);
    auto r = tell_process(child, 0, "killswitch: refused\n");
    end(child);
    EXPECT_FALSE(r) << "a full pipe must fail at once";
    ::close(p[0]);
    ::close(p[1]);
}

}  // namespace
}  // namespace ks
