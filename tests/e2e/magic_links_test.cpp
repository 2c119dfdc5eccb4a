// Paths through the magic links of /proc and /dev (issue 18 item 5): a file
// opened for reading (which is free) and opened again for writing through
// /proc/self/fd/N or /dev/fd/N, and the database server's own working
// directory reached through /proc/<pid>/cwd. On this kernel (libc uprobes and
// syscall tracepoints) the path walk sees names, not objects: such paths were
// taken as unprotected. Now /proc/self/fd/N and its kin are judged by the
// open file they name, and a magic link into another process (its fd, cwd,
// root) is never taken as unprotected (rule unresolved-path). Writing to
// one's own stdout or stderr through /dev/stdout stays free. Against a real
// PostgreSQL 15: each case is first shown to change the data unguarded.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "db_servers.h"
#include "harness.h"

namespace ks::test {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

const std::string kReopen =
    "python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); "
    "f = open(\"/proc/self/fd/%d\" % fd, \"ab\"); f.write(b\"x\")' ";

class MagicLinksE2E : public PgProtectedSuite<MagicLinksE2E> {
  protected:
    // The static shell is stopped at a syscall tracepoint: its session is
    // left running (not frozen) so that its wrapper returns.
    static void SetUpTestSuite() { start("sessions:\n  on_contained: none\n"); }
    void SetUp() override {
        require_ready();
        if (IsSkipped() || HasFatalFailure()) return;
        version_ = server_->data_dir() + "/PG_VERSION";
        before_ = fs::file_size(version_);
    }
    static std::string postmaster_pid() {
        return read_pid_file(server_->data_dir() + "/postmaster.pid");
    }
    void expect_unchanged(const std::string& what) const {
        EXPECT_EQ(fs::file_size(version_), before_) << what << ": PG_VERSION was written";
        EXPECT_EQ(server_->query("SELECT 1"), "1") << what;
    }
    // A guarded attempt that must fail and leave the data as it was: its
    // record (null, and a failure, when none came).
    json refused(const std::string& session, const std::string& script) const {
        auto r = guarded(session, script);
        EXPECT_NE(r.status, 0) << session << ": it wrote";
        expect_unchanged(session);
        json rec = session_record(*daemon_, "file", session);
        EXPECT_FALSE(rec.is_null()) << session << ": no record";
        return rec;
    }

    std::string version_;
    uintmax_t before_ = 0;
};

TEST_F(MagicLinksE2E, UnguardedTheyReachTheData) {
    std::string copy = *dir_ / "PG_VERSION.orig";
    fs::copy_file(version_, copy, fs::copy_options::overwrite_existing);
    auto r = run_command({"sh", "-c", kReopen + version_});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(fs::file_size(version_), before_ + 1) << "the reopen did not write";
    r = run_command({"sh", "-c",
                     "python3 -c 'import sys; open(\"/proc/\" + sys.argv[1] + \"/cwd/PG_VERSION\", "
                     "\"ab\").write(b\"x\")' " +
                         postmaster_pid()});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(fs::file_size(version_), before_ + 2) << "the server's cwd did not lead to it";
    fs::copy_file(copy, version_, fs::copy_options::overwrite_existing);
    before_ = fs::file_size(version_);
}

TEST_F(MagicLinksE2E, AReopenThroughProcSelfFdIsJudgedByTheFile) {
    struct Case {
        std::string session, layer, script, object;
    };
    const std::string data = server_->data_dir();
    const Case cases[] = {
        // libc open of /proc/self/fd/N: stopped before the call.
        {"proc-self-fd", "uprobe", kReopen + version_, version_},
        // A static shell: no libc; the append's open is seen at the
        // tracepoint and the shell dies as it returns, before it writes.
        {"dev-fd", "tracepoint", "busybox sh -c 'exec 3< " + version_ + "; echo x >> /dev/fd/3'",
         version_},
        // Below an open directory of the data, as openat would use it.
        {"proc-self-fd-dir", "uprobe",
         "python3 -c 'import os, sys; d = os.open(sys.argv[1], os.O_RDONLY); "
         "open(\"/proc/self/fd/%d/PG_VERSION\" % d, \"ab\").write(b\"x\")' " +
             data,
         data},
    };
    for (const auto& c : cases) {
        json rec = refused(c.session, c.script);
        if (rec.is_null()) continue;
        EXPECT_EQ(rec["match"], "protected-inode") << c.session;
        EXPECT_EQ(rec["rule"], "protect:" + data) << c.session;
        EXPECT_EQ(rec["path"], c.object) << c.session << ": the record names the open file";
        EXPECT_EQ(rec["layer"], c.layer) << c.session;
    }
}

TEST_F(MagicLinksE2E, AnotherProcessesCwdIsNeverTakenAsUnprotected) {
    struct Case {
        std::string session, script;
    };
    const Case cases[] = {
        {"server-cwd",
         "python3 -c 'import sys; open(\"/proc/\" + sys.argv[1] + "
         "\"/cwd/PG_VERSION\", \"ab\").write(b\"x\")' " +
             postmaster_pid()},
        // From a directory of /proc: the walk cannot tell where it leads.
        {"proc-relative", "cd /proc/" + postmaster_pid() +
                              " && python3 -c 'open(\"cwd/PG_VERSION\", \"ab\").write(b\"x\")'"},
    };
    for (const auto& c : cases) {
        json rec = refused(c.session, c.script);
        if (rec.is_null()) continue;
        EXPECT_EQ(rec["match"], "unresolved-path") << c.session;
        EXPECT_EQ(rec["rule"], "unresolved-path") << c.session;
        EXPECT_EQ(rec["layer"], "uprobe") << c.session;
    }
}

TEST_F(MagicLinksE2E, WritingToOnesOwnOutputIsFree) {
    std::string out = *dir_ / "out.txt";
    // Claude Code writes its tools' output through /proc/self/fd/N/NAME, N
    // an open directory of its own.
    auto r = guarded("own-output",
                     "python3 -c 'open(\"/dev/stdout\", \"w\").write(\"a\")' > " + out +
                         " && echo b > /dev/stderr && exec 4>> " + out +
                         " && echo c > /proc/self/fd/4 && busybox sh -c 'echo d >> /dev/fd/1'" +
                         " && python3 -c 'import os, sys; d = os.open(sys.argv[1], os.O_RDONLY); "
                         "open(\"/proc/self/fd/%d/tool.output\" % d, \"w\").write(\"e\")' " +
                         dir_->path());
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(fs::exists(*dir_ / "tool.output"));
    EXPECT_NE(r.err.find('b'), std::string::npos);
    EXPECT_TRUE(session_record(*daemon_, "file", "own-output", std::chrono::seconds(2)).is_null())
        << "writing to its own output was recorded";
}

}  // namespace
}  // namespace ks::test
