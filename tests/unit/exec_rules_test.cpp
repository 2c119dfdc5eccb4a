// The argv rules, with a classifier that knows one protected tree: /data.
#include "file_guard/exec_rules.h"

#include <gtest/gtest.h>

namespace ks {
namespace {

PathVerdict fake_classify(const std::string& abs, bool) {
    PathVerdict v;
    // Normalise the few forms the tests use.
    std::string p = abs;
    for (std::string dup = "//"; p.find(dup) != std::string::npos;) p.replace(p.find(dup), 2, "/");
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    for (auto pos = p.find("/./"); pos != std::string::npos; pos = p.find("/./")) p.erase(pos, 2);
    v.resolved = p;
    v.root = "/data";
    v.rule_id = 7;
    v.block_device = p.rfind("/dev/sd", 0) == 0;
    if (p == "/data" || p.rfind("/data/", 0) == 0)
        v.inside = true;
    else if (p == "/" || p == "/srv" || p == "/srv/..")
        v.contains = true;
    return v;
}

std::optional<ExecMatch> eval(const std::vector<std::string>& argv,
                              const std::string& cwd = "/home/agent") {
    std::string tool = argv[0].substr(argv[0].find_last_of('/') + 1);
    return evaluate_exec_rules(tool, argv, cwd, fake_classify);
}

TEST(ExecRules, RmOfProtectedDataMatchesWithItsRule) {
    auto m = eval({"rm", "-rf", "/data"});
    ASSERT_TRUE(m);
    EXPECT_EQ(m->rule, "exec:rm");
    EXPECT_EQ(m->path, "/data");
    EXPECT_EQ(m->rule_id, 7u);
}

TEST(ExecRules, RelativeOperandsResolveFromTheCwd) {
    EXPECT_TRUE(eval({"rm", "f1"}, "/data/base"));
    EXPECT_TRUE(eval({"rm", "-r", "./sub"}, "/data"));
    EXPECT_FALSE(eval({"rm", "-rf", "build"}, "/home/agent"));
}

TEST(ExecRules, RecursiveRmOfAnAncestorMatchesPlainRmDoesNot) {
    auto m = eval({"rm", "-r", "--one-file-system", "/"});
    ASSERT_TRUE(m);
    EXPECT_EQ(m->rule, "exec:rm-recursive");
    EXPECT_FALSE(eval({"rm", "/srv"}));  // not recursive: cannot reach /data
    EXPECT_TRUE(eval({"rm", "-fR", "/srv"}));
}

TEST(ExecRules, OperandsAfterDoubleDashAreOperands) {
    EXPECT_TRUE(eval({"rm", "--", "/data/-weird"}));
    EXPECT_FALSE(eval({"rm", "--", "-rf"}));
}

TEST(ExecRules, FindOnlyWhenItDeletes) {
    EXPECT_TRUE(eval({"find", "/data", "-name", "*.log", "-delete"}));
    EXPECT_TRUE(eval({"find", "/", "-exec", "/bin/rm", "{}", ";"}));
    EXPECT_FALSE(eval({"find", "/data", "-name", "x"}));
    EXPECT_FALSE(eval({"find", "/tmp", "-delete"}));
}

TEST(ExecRules, DdOnlyWhenItWritesProtectedData) {
    EXPECT_TRUE(eval({"dd", "if=/dev/zero", "of=/data/f", "bs=1k"}));
    EXPECT_FALSE(eval({"dd", "if=/data/f", "of=/tmp/copy"}));  // reading is fine
}

TEST(ExecRules, TruncateSkipsTheSizeValue) {
    EXPECT_TRUE(eval({"truncate", "-s", "0", "/data/f"}));
    EXPECT_TRUE(eval({"truncate", "-s0", "/data/f"}));
    EXPECT_FALSE(eval({"truncate", "-s", "0", "/tmp/f"}));
}

TEST(ExecRules, MvAwayAndOntoCpOnto) {
    EXPECT_EQ(eval({"mv", "/data", "/tmp/x"})->rule, "exec:mv-away");
    EXPECT_EQ(eval({"mv", "/tmp/x", "/data/f"})->rule, "exec:mv-onto");
    EXPECT_EQ(eval({"mv", "-t", "/data", "/tmp/x"})->rule, "exec:mv-onto");
    EXPECT_EQ(eval({"cp", "/tmp/x", "/data/f"})->rule, "exec:cp-onto");
    EXPECT_FALSE(eval({"cp", "/data/f", "/tmp/backup"}));  // copying out is fine
    EXPECT_FALSE(eval({"mv", "/tmp/a", "/tmp/b"}));
}

TEST(ExecRules, ShredAndUnlink) {
    EXPECT_TRUE(eval({"shred", "-u", "-n", "3", "/data/f"}));
    EXPECT_TRUE(eval({"unlink", "/data/f"}));
    EXPECT_FALSE(eval({"shred", "/tmp/f"}));
}

TEST(ExecRules, DatabaseToolsThatDestroyEverything) {
    EXPECT_EQ(eval({"dropdb", "app"})->rule, "exec:dropdb");
    EXPECT_EQ(eval({"/usr/local/bin/prisma", "migrate", "reset", "--force"})->rule,
              "exec:prisma-migrate-reset");
    EXPECT_FALSE(eval({"prisma", "migrate", "deploy"}));
    EXPECT_EQ(eval({"alembic", "downgrade", "base"})->rule, "exec:alembic-downgrade-base");
    EXPECT_FALSE(eval({"alembic", "downgrade", "-1"}));
    EXPECT_EQ(eval({"mkfs.ext4", "/dev/sdb1"})->rule, "exec:mkfs");
    EXPECT_EQ(eval({"blkdiscard", "/dev/sdb"})->rule, "exec:blkdiscard");
    EXPECT_FALSE(eval({"dropdb", "app"})->rule_id.has_value());
}

TEST(ExecRules, EveryWatchedToolIsKnown) {
    // The kernel holds exactly these; each must be a tool the rules handle or
    // it would be held for nothing.
    for (const auto& t : watched_tools()) EXPECT_FALSE(t.empty());
    EXPECT_FALSE(eval({"ls", "/data"}));
}

using Names = std::vector<std::string>;

TEST(ExecIdentity, EveryNameTheProgramGoesByIsJudged) {
    // A symlink under a harmless name: the program is rm.
    EXPECT_EQ(identify_exec("tidy", "/usr/bin/rm", {"./tidy", "-rf", "/data"}).tools, Names{"rm"});
    // `exec -a bfs claude`: claude's built-in find, judged as find.
    auto bfs = identify_exec("claude", "/opt/claude/bin/claude.exe", {"bfs", "/data", "-delete"});
    EXPECT_EQ(bfs.tools, Names{"find"});
    ASSERT_EQ(bfs.tools.size(), 1u);
    auto m = evaluate_exec_rules(bfs.tools[0], bfs.argv, "/", fake_classify);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->rule, "exec:find-delete");
    // A plain tool: one name.
    EXPECT_EQ(identify_exec("rm", "/usr/bin/rm", {"rm", "-rf", "/data"}).tools, Names{"rm"});
    // A harmless program: nothing to judge.
    EXPECT_TRUE(identify_exec("ls", "/usr/bin/ls", {"ls", "/data"}).tools.empty());
    // An exe unlinked since it started still has its name.
    EXPECT_EQ(identify_exec("x", "/tmp/rm (deleted)", {"x"}).tools, Names{"rm"});
}

TEST(ExecIdentity, BusyboxIsJudgedByItsApplet) {
    auto id = identify_exec("busybox", "/usr/bin/busybox", {"busybox", "rm", "-rf", "/data"});
    EXPECT_EQ(id.tools, Names{"rm"});
    EXPECT_EQ(id.argv, (Names{"rm", "-rf", "/data"}));
    auto m = evaluate_exec_rules(id.tools[0], id.argv, "/", fake_classify);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->rule, "exec:rm");
    // Through an applet symlink, argv[0] and comm already say rm.
    EXPECT_EQ(identify_exec("rm", "/usr/bin/busybox", {"rm", "-rf", "/data"}).tools, Names{"rm"});
    EXPECT_TRUE(identify_exec("busybox", "/usr/bin/busybox", {"busybox", "ls"}).tools.empty());
}

TEST(ExecRules, WritingABlockDeviceMatchesTheBlockDeviceRule) {
    auto m = eval({"dd", "if=/dev/zero", "of=/dev/sdb", "bs=1M"});
    ASSERT_TRUE(m);
    EXPECT_EQ(m->rule, "exec:dd-device");
    EXPECT_EQ(m->rule_id, policy::kRuleBlockDevice);
    EXPECT_EQ(eval({"shred", "-n1", "/dev/sdb"})->rule, "exec:shred-device");
    EXPECT_EQ(eval({"mkswap", "/dev/sdb2"})->rule, "exec:mkswap-device");
    // Reading one, or writing a file, is not concerned.
    EXPECT_FALSE(eval({"dd", "if=/dev/sdb", "of=/tmp/disk.img"}));
    EXPECT_FALSE(eval({"mkswap", "/swapfile"}));
}

}  // namespace
}  // namespace ks
