// The refusal message reaches the offender's stderr where the agent's tool
// reads it (a pipe, a socket, the output file it collects), falls back to
// its parent's when it is gone, and is never written into a file the check
// refuses (protected data, killswitch's own) or one not open for writing.
#include "actions/tell.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
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
    auto r = tell_process({child}, "killswitch: refused rm -rf /srv/data\n");
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
    auto r = tell_process({gone, parent}, "why\n");
    end(parent);
    ::close(p[1]);
    ASSERT_TRUE(r) << r.error().str();
    EXPECT_EQ(drain(p[0]), "why\n");
    ::close(p[0]);
}

std::string slurp(const std::filesystem::path& path) {
    std::ifstream in(path);
    return std::string((std::istreambuf_iterator<char>(in)), {});
}

TEST(Tell, TheOutputFileAnAgentCollectsGetsTheLineAtTheProcesssOffset) {
    auto path = std::filesystem::temp_directory_path() / ("ks-tell-" + std::to_string(getpid()));
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, "out so far\n", 11), 11);
    pid_t child = stopped_child_with_stderr(fd);
    std::string seen;
    auto r = tell_process({child}, "killswitch: refused\n", [&](const std::string& p) {
        seen = p;
        return true;
    });
    end(child);
    ::close(fd);
    ASSERT_TRUE(r) << r.error().str();
    EXPECT_EQ(seen, path.string()) << "the check is asked about the file itself";
    EXPECT_EQ(slurp(path), "out so far\nkillswitch: refused\n") << "appended, not overwritten";
    std::filesystem::remove(path);
}

TEST(Tell, AFileTheCheckRefusesOrOneNotOpenForWritingIsNeverWritten) {
    auto path = std::filesystem::temp_directory_path() / ("ks-tell-p" + std::to_string(getpid()));
    std::ofstream(path) << "rows\n";
    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND);
    ASSERT_GE(fd, 0);
    pid_t child = stopped_child_with_stderr(fd);
    auto none = tell_process({child}, "killswitch: refused\n");
    auto refused =
        tell_process({child}, "killswitch: refused\n", [](const std::string&) { return false; });
    end(child);
    ::close(fd);
    EXPECT_FALSE(none) << "no check: never a file";
    EXPECT_FALSE(refused);
    int ro = ::open(path.c_str(), O_RDONLY);
    pid_t reader = stopped_child_with_stderr(ro);
    auto r = tell_process({reader}, "x\n", [](const std::string&) { return true; });
    end(reader);
    ::close(ro);
    EXPECT_FALSE(r) << "stderr open read-only";
    EXPECT_EQ(slurp(path), "rows\n");
    std::filesystem::remove(path);
}

TEST(Tell, ASocketStderrGetsTheMessage) {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    pid_t child = stopped_child_with_stderr(sv[1]);
    auto r = tell_process({child}, "killswitch: refused DROP TABLE t\n");
    end(child);
    ::close(sv[1]);
    ASSERT_TRUE(r) << r.error().str();
    EXPECT_EQ(*r, "pid " + std::to_string(child) + " stderr (socket)");
    EXPECT_EQ(drain(sv[0]), "killswitch: refused DROP TABLE t\n");
    ::close(sv[0]);
}

TEST(Tell, AFullPipeDoesNotBlockTheDaemon) {
    int p[2];
    ASSERT_EQ(::pipe(p), 0);
    std::string fill(1 << 20, 'x');
    ::fcntl(p[1], F_SETFL, O_NONBLOCK);
    while (::write(p[1], fill.data(), fill.size()) > 0) {
    }
    pid_t child = stopped_child_with_stderr(p[1]);
    auto r = tell_process({child}, "killswitch: refused\n");
    end(child);
    EXPECT_FALSE(r) << "a full pipe must fail at once";
    ::close(p[0]);
    ::close(p[1]);
}

}  // namespace
}  // namespace ks
