// Symbolic links to protected data made after the daemon started (issue 18
// item 5). On this kernel (libc uprobes and syscall tracepoints) a path is
// judged by walking its names from / along the edges the daemon published:
// a link the agent makes (`ln -s /data /tmp/x`) is a way to the data that
// walk does not know, and `unlink("/tmp/x/f")` through it passed. Now the
// link itself is judged (op symlink-to) by where its target leads: the data,
// inside it, or a directory above it. The libc layer holds the caller while
// the daemon resolves the target from the link's directory; the syscall
// tracepoint stops a static program as its call returns, and the daemon
// removes the link it made. Ordinary links (a tool's .bin, an interpreter)
// stay free. Against a real PostgreSQL 15: first shown to reach the data
// unguarded.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "db_servers.h"
#include "harness.h"

namespace ks::test {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

class SymlinksE2E : public PgProtectedSuite<SymlinksE2E> {
  protected:
    // A static program is stopped at a syscall tracepoint: its session is
    // left running (not frozen) so that its wrapper returns.
    static void SetUpTestSuite() { start("sessions:\n  on_contained: none\n"); }
    void SetUp() override {
        require_ready();
        if (IsSkipped() || HasFatalFailure()) return;
        canary_ = server_->data_dir() + "/canary";
        std::ofstream(canary_) << "rows\n";
        links_ = *dir_ / ("links-" + std::to_string(++round_));
        fs::create_directories(links_ + "/a/b");
    }
    // The data as it was: the canary there, the server serving.
    void expect_unharmed(const std::string& what) const {
        EXPECT_TRUE(fs::exists(canary_)) << what << ": the file in the data was deleted";
        EXPECT_EQ(server_->query("SELECT 1"), "1") << what;
    }
    // The data directory as seen from dir (a relative path).
    static std::string relative_to_data(const std::string& dir) {
        return fs::relative(server_->data_dir(), dir).string();
    }

    static inline int round_ = 0;
    std::string canary_, links_;
};

const std::string kUnlinkThrough = "python3 -c 'import os, sys; os.unlink(sys.argv[1])' ";

TEST_F(SymlinksE2E, UnguardedALinkMadeLaterReachesTheData) {
    std::string link = links_ + "/x";
    auto r = run_command(
        {"sh", "-c", "ln -s " + server_->data_dir() + " " + link + " && " + kUnlinkThrough + link +
                         "/canary"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_FALSE(fs::exists(canary_)) << "the unlink through the link did not reach the data";
}

TEST_F(SymlinksE2E, ALinkToTheDataIsNotMade) {
    const std::string data = server_->data_dir();
    struct Case {
        std::string session, script, link, match;
    };
    const Case cases[] = {
        // Absolute target: walked in the kernel at the libc layer.
        {"absolute", "ln -s " + data + " " + links_ + "/x && " + kUnlinkThrough + links_ +
                         "/x/canary",
         links_ + "/x", "path-into-protected-tree"},
        {"python-absolute",
         "python3 -c 'import os, sys; os.symlink(sys.argv[1], sys.argv[2])' " + data + " " +
             links_ + "/p",
         links_ + "/p", "path-into-protected-tree"},
        // Inside the data.
        {"inside", "ln -s " + data + "/base " + links_ + "/i", links_ + "/i",
         "path-into-protected-tree"},
        // Relative, made in the start directory: walked from there.
        {"relative-here",
         "cd " + links_ + "/a && ln -s " + relative_to_data(links_ + "/a") + " here", links_ + "/a/here",
         "path-into-protected-tree"},
        // Relative, made elsewhere: the daemon resolves it from the link's
        // directory while the caller waits.
        {"relative-elsewhere",
         "ln -s " + relative_to_data(links_ + "/a/b") + " " + links_ + "/a/b/there",
         links_ + "/a/b/there", "path-into-protected-tree"},
        // A directory above the data leads there too.
        {"ancestor", "ln -s " + fs::path(data).parent_path().string() + " " + links_ + "/up",
         links_ + "/up", "ancestor-of-protected"},
    };
    for (const auto& c : cases) {
        auto r = guarded(c.session, c.script);
        EXPECT_NE(r.status, 0) << c.session << ": the link was made";
        EXPECT_FALSE(fs::is_symlink(c.link)) << c.session << ": " << c.link << " exists";
        EXPECT_NE(r.err.find("killswitch: refused symlink-to"), std::string::npos)
            << c.session << ": " << r.err;
        json rec = session_record(*daemon_, "file", c.session);
        ASSERT_FALSE(rec.is_null()) << c.session << ": no record";
        EXPECT_EQ(rec["op"], "symlink-to") << c.session;
        EXPECT_EQ(rec["match"], c.match) << c.session;
        EXPECT_EQ(rec["rule"], "protect:" + data) << c.session;
        EXPECT_EQ(rec["layer"], "uprobe") << c.session;
        EXPECT_EQ(rec["prevented"], true) << c.session;
        if (c.session == "relative-elsewhere") {
            EXPECT_EQ(rec.value("link", ""), c.link) << rec;
        }
        expect_unharmed(c.session);
    }
}

TEST_F(SymlinksE2E, OrdinaryLinksAreFree) {
    fs::create_directories(links_ + "/node_modules/.bin");
    fs::create_directories(links_ + "/node_modules/pkg/bin");
    std::string script =
        "ln -s ../pkg/bin/tool " + links_ + "/node_modules/.bin/tool && ln -s /usr/bin/python3 " +
        links_ + "/python && cd " + links_ + " && ln -s node_modules nm && ln -s " + links_ +
        "/a " + links_ + "/a-link";
    auto matches = [] {
        auto st = json::parse(daemon_->cli({"status", "--json"}).out, nullptr, false);
        return st.is_object() ? st["counters"].value("file_matches", uint64_t{0}) : 0;
    };
    uint64_t before = matches();
    auto r = guarded("ordinary", script);
    EXPECT_EQ(r.status, 0) << r.err;
    // Each link stopped its maker once, at the libc layer: the daemon's
    // ticket took its system call past the tracepoint.
    EXPECT_EQ(matches() - before, 4u) << "links asked about more than once each";
    for (const char* l : {"/node_modules/.bin/tool", "/python", "/nm", "/a-link"})
        EXPECT_TRUE(fs::is_symlink(links_ + l)) << l << " was not made";
    EXPECT_TRUE(session_record(*daemon_, "file", "ordinary", std::chrono::seconds(2)).is_null())
        << "an ordinary link was recorded";
}

// A static program has no libc layer: its symlink(2) is seen at the syscall
// tracepoint, which stops it only as the call returns, the link made. The
// daemon removes a link that reaches the data before its maker runs again
// (and kills the maker); the next static program finds no way through.
// Shown first without protection: a static unlink through the link
// deletes the file.
TEST_F(SymlinksE2E, AStaticProgramsLinkToTheDataIsRemovedBeforeItIsUsed) {
    std::string link = links_ + "/s";
    std::string script = "busybox ln -s " + server_->data_dir() + " " + link + "; " +
                         helper("raw_unlinkat") + " " + link + "/canary";
    auto shown = run_command({"sh", "-c", script});
    EXPECT_EQ(shown.status, 0) << shown.out << shown.err;
    EXPECT_FALSE(fs::exists(canary_)) << "unguarded, the static unlink through the link failed";
    std::ofstream(canary_) << "rows\n";
    fs::remove(link);

    auto r = guarded("static", script);
    EXPECT_FALSE(fs::is_symlink(link)) << "the static link to the data is still there";
    expect_unharmed("static");
    json rec = session_record(*daemon_, "file", "static");
    ASSERT_FALSE(rec.is_null()) << "no record";
    EXPECT_EQ(rec["op"], "symlink-to");
    EXPECT_EQ(rec["layer"], "tracepoint");
    EXPECT_EQ(rec["rule"], "protect:" + server_->data_dir());
    EXPECT_EQ(rec["prevented"], false) << "the link was made before its maker stopped";
    EXPECT_EQ(rec.value("link_removed", false), true) << rec;

    // A static program's other links are made, and say nothing.
    std::string other = links_ + "/static-python";
    r = guarded("static-ordinary", "busybox ln -s /usr/bin/python3 " + other);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(fs::is_symlink(other));
    EXPECT_TRUE(
        session_record(*daemon_, "file", "static-ordinary", std::chrono::seconds(2)).is_null())
        << "an ordinary static link was recorded";
}

// A hard link of a file of the data, made by a static program, is a second
// name the walk from / does not know: a write through it (a shell's `>`)
// empties the file. At the syscall tracepoint the name is made before its
// maker stops; the daemon removes it before the maker runs again.
TEST_F(SymlinksE2E, AStaticProgramsHardLinkOfTheDataIsRemovedBeforeItIsUsed) {
    std::string name = links_ + "/hl";
    std::string script = "busybox ln " + canary_ + " " + name + "; : > " + name;
    auto shown = run_command({"sh", "-c", script});
    EXPECT_EQ(shown.status, 0) << shown.err;
    EXPECT_EQ(fs::file_size(canary_), 0u) << "unguarded, the write through the link did not "
                                             "reach the file";
    fs::remove(name);
    std::ofstream(canary_) << "rows\n";

    auto r = guarded("hard-link", script);
    expect_unharmed("hard-link");
    EXPECT_EQ(fs::file_size(canary_), 5u) << "the file was emptied through a second name";
    struct stat data {
    }, made{};
    if (::stat(canary_.c_str(), &data) == 0 && ::stat(name.c_str(), &made) == 0) {
        EXPECT_NE(data.st_ino, made.st_ino) << name << " is still a name of the data's file";
    }
    json rec = session_record(*daemon_, "file", "hard-link");
    ASSERT_FALSE(rec.is_null()) << "no record";
    EXPECT_EQ(rec["op"], "link");
    EXPECT_EQ(rec["layer"], "tracepoint");
    EXPECT_EQ(rec["prevented"], false) << "the name was made before its maker stopped";
    EXPECT_EQ(rec.value("link", ""), name) << rec;
    EXPECT_EQ(rec.value("link_removed", false), true) << rec;
}

}  // namespace
}  // namespace ks::test
