// The protected set built from a real tree in a temporary directory.
#include "file_guard/protected_set.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace ks {
namespace {

namespace fs = std::filesystem;

class ProtectedSetTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/ks-pset-XXXXXX";
        dir_ = ::mkdtemp(tmpl);
        dir_ = fs::canonical(dir_).string();
        fs::create_directories(dir_ + "/data/base");
        std::ofstream(dir_ + "/data/base/f1") << "1";
        std::ofstream(dir_ + "/data/f2") << "2";
        fs::create_directories(dir_ + "/other");
        fs::create_hard_link(dir_ + "/data/f2", dir_ + "/other/hl");
        fs::create_directory_symlink(dir_ + "/data", dir_ + "/link");
    }
    void TearDown() override { fs::remove_all(dir_); }
    std::string dir_;
};

TEST_F(ProtectedSetTest, HoldsTheDirectoriesAndHardLinkedFilesOfTheTreeAndTheEdgesToIt) {
    std::vector<std::string> warnings;
    auto set = ProtectedSet::build({{dir_ + "/data", 5}}, 1000, warnings);
    ASSERT_EQ(set.roots().size(), 1u);
    EXPECT_TRUE(warnings.empty());
    // data, base, and f2 (two names); f1 (one name) through base: once it is
    // removed its inode number may be any new file's, anywhere.
    EXPECT_EQ(set.inodes().size(), 3u);
    struct stat f1 {};
    ASSERT_EQ(::stat((dir_ + "/data/base/f1").c_str(), &f1), 0);
    EXPECT_EQ(set.inodes().count(ks_inode_key{kernel_dev(f1.st_dev), f1.st_ino}), 0u);
    EXPECT_TRUE(set.classify(dir_ + "/data/base/f1", false).inside);
    for (const auto& [k, rule] : set.inodes()) EXPECT_EQ(rule, 5u);
    // One edge per component from "/" down to data.
    size_t depth = std::count(dir_.begin(), dir_.end(), '/') + 1;
    EXPECT_EQ(set.edges().size(), depth);
    struct stat st {};
    ::stat((dir_ + "/data").c_str(), &st);
    bool found = false;
    for (const auto& [k, child] : set.edges())
        if (k.name_hash == name_hash("data") && child.ino == st.st_ino) found = true;
    EXPECT_TRUE(found);
}

TEST_F(ProtectedSetTest, ClassifiesInsideContainsAndOutside) {
    std::vector<std::string> warnings;
    auto set = ProtectedSet::build({{dir_ + "/data", 1}}, 1000, warnings);
    EXPECT_TRUE(set.classify(dir_ + "/data/base/f1", false).inside);
    EXPECT_TRUE(set.classify(dir_ + "/data/new-file", false).inside);  // created later
    EXPECT_TRUE(set.classify(dir_ + "/other/../data/f2", false).inside);
    auto up = set.classify(dir_, false);
    EXPECT_FALSE(up.inside);
    EXPECT_TRUE(up.contains);
    EXPECT_FALSE(set.classify(dir_ + "/other/x", false).inside);
}

TEST_F(ProtectedSetTest, HardLinksAndSymlinksResolveToTheRealObject) {
    std::vector<std::string> warnings;
    auto set = ProtectedSet::build({{dir_ + "/data", 1}}, 1000, warnings);
    EXPECT_TRUE(set.classify(dir_ + "/other/hl", false).inside) << "hard link to a protected file";
    EXPECT_TRUE(set.classify(dir_ + "/link/", true).inside) << "through a symlink to the tree";
    EXPECT_TRUE(set.classify(dir_ + "/link/f2", false).inside);
    // The link itself is not protected data: removing it loses nothing.
    EXPECT_FALSE(set.classify(dir_ + "/link", false).inside);
}

TEST_F(ProtectedSetTest, MissingRootsAreWarnedAboutAndSkipped) {
    std::vector<std::string> warnings;
    auto set = ProtectedSet::build({{dir_ + "/nope", 1}, {dir_ + "/data", 2}}, 1000, warnings);
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_NE(warnings[0].find(dir_ + "/nope"), std::string::npos);
    EXPECT_EQ(set.roots().size(), 1u);
}

TEST_F(ProtectedSetTest, BoundedWalkStillHasTheRootAndSaysSo) {
    std::vector<std::string> warnings;
    auto set = ProtectedSet::build({{dir_ + "/data", 1}}, 1, warnings);
    EXPECT_TRUE(set.truncated());
    EXPECT_FALSE(warnings.empty());
    EXPECT_LE(set.inodes().size(), 2u);
    EXPECT_TRUE(set.classify(dir_ + "/data/base/f1", false).inside);
}

TEST_F(ProtectedSetTest, ARemovedDirectoryMakesTheSetStaleARemovedFileDoesNot) {
    std::vector<std::string> warnings;
    auto set = ProtectedSet::build({{dir_ + "/data", 1}}, 1000, warnings);
    EXPECT_FALSE(set.stale());
    fs::remove(dir_ + "/data/base/f1");
    EXPECT_FALSE(set.stale()) << "a file of one name was never held by inode";
    fs::remove(dir_ + "/data/base");
    EXPECT_TRUE(set.stale()) << "base's inode number is free for anyone";
    set = ProtectedSet::build({{dir_ + "/data", 1}}, 1000, warnings);
    EXPECT_FALSE(set.stale());
    fs::remove(dir_ + "/other/hl");  // f2 has one name again, but is still f2
    EXPECT_FALSE(set.stale());
    fs::remove(dir_ + "/data/f2");
    EXPECT_TRUE(set.stale()) << "a file that had two names, held by inode";
}

TEST_F(ProtectedSetTest, KernelSettingsArePublishedByTheirRootAloneAndMissingOnesQuietly) {
    std::vector<std::string> warnings;
    policy::ProtectEntry sys{"/proc/sys", 7, false, true};
    policy::ProtectEntry kernel{"/sys/kernel", 8, false, true};
    policy::ProtectEntry none{dir_ + "/no-cron.d", 9, false, true};
    auto set = ProtectedSet::build({sys, kernel, none}, 100000, warnings);
    EXPECT_TRUE(warnings.empty()) << warnings[0];
    ASSERT_EQ(set.roots().size(), 2u);
    EXPECT_TRUE(set.roots()[0].shallow);
    EXPECT_TRUE(set.roots()[1].shallow);
    // procfs and sysfs are not walked (procfs makes its sysctl inodes anew):
    // the roots alone, which every layer finds by walking up from the object.
    EXPECT_EQ(set.inodes().size(), 2u);
    struct stat st {};
    ASSERT_EQ(::stat("/proc/sys", &st), 0);
    auto it = set.inodes().find(ks_inode_key{kernel_dev(st.st_dev), st.st_ino});
    ASSERT_NE(it, set.inodes().end());
    EXPECT_EQ(it->second, 7u);
    // A write under it is inside it, for the exec rules and the records.
    EXPECT_TRUE(set.classify("/proc/sys/kernel/core_pattern", true).inside);
    // A path the user asked to protect that is missing is still worth a word.
    auto plain = ProtectedSet::build({{dir_ + "/missing", 5}}, 1000, warnings);
    EXPECT_EQ(warnings.size(), 1u);
}

TEST_F(ProtectedSetTest, TheDirectoriesAboveARootAreItsAncestors) {
    std::vector<std::string> warnings;
    auto set = ProtectedSet::build({{dir_ + "/data/base", 5}}, 1000, warnings);
    auto key = [](const std::string& p) {
        struct stat st {};
        EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
        return ks_inode_key{kernel_dev(st.st_dev), st.st_ino};
    };
    const auto& a = set.ancestors();
    for (const std::string& p : {dir_ + "/data", dir_, std::string("/tmp"), std::string("/")}) {
        auto it = a.find(key(p));
        ASSERT_NE(it, a.end()) << p << " is not an ancestor";
        EXPECT_EQ(it->second, 5u) << p;
    }
    EXPECT_FALSE(a.count(key(dir_ + "/data/base")))
        << "the root itself is protected, not an ancestor";
    EXPECT_FALSE(a.count(key(dir_ + "/other"))) << "a sibling is not an ancestor";
}

// A path that appears, goes, or is made anew (another inode) after the set
// was built: the daemon builds the set again for it (issue 18 item 5).
TEST_F(ProtectedSetTest, ChangesSaysWhichRootsAreNotAsTheSetHoldsThem) {
    std::vector<std::string> warnings;
    std::vector<ProtectedSet::Entry> entries = {
        {dir_ + "/later", 4}, {dir_ + "/data", 5}, {dir_ + "/other", 6}};
    auto set = ProtectedSet::build(entries, 1000, warnings);
    EXPECT_TRUE(set.changes(entries).empty());
    fs::create_directories(dir_ + "/later");
    fs::remove_all(dir_ + "/other");
    fs::rename(dir_ + "/data", dir_ + "/data.old");
    fs::create_directories(dir_ + "/data");
    auto changes = set.changes(entries);
    ASSERT_EQ(changes.size(), 3u);
    EXPECT_EQ(changes[0].path, dir_ + "/later");
    EXPECT_EQ(changes[0].kind, RootChange::Kind::kAppeared);
    EXPECT_EQ(changes[1].path, dir_ + "/data");
    EXPECT_EQ(changes[1].kind, RootChange::Kind::kReplaced);
    EXPECT_EQ(changes[1].rule_id, 5u);
    EXPECT_EQ(changes[2].path, dir_ + "/other");
    EXPECT_EQ(changes[2].kind, RootChange::Kind::kGone);
    // Built again, the set holds them as they are.
    auto again = ProtectedSet::build(entries, 1000, warnings);
    EXPECT_TRUE(again.changes(entries).empty());
    EXPECT_TRUE(again.classify(dir_ + "/later/x", false).inside);
    EXPECT_FALSE(again.classify(dir_ + "/data.old/f2", false).inside);
}

// A bind mount whose root is a directory above protected data leads to it:
// its mount point gets an edge to that directory's inode, and the edges below
// go on from there. (No mount here: the mount table names a symlink to the
// directory, which stat()s as the bind mount's root would.)
TEST_F(ProtectedSetTest, ABindMountOfADirectoryAboveARootGetsEdges) {
    fs::create_directories(dir_ + "/other/db");
    fs::create_directory_symlink(dir_ + "/other", dir_ + "/view");
    std::string mountinfo = dir_ + "/mountinfo";
    std::ofstream(mountinfo) << "99 1 0:1 / " << dir_ << "/view rw - tmpfs x rw\n"
                             << "98 1 0:1 / " << dir_ << "/data rw - tmpfs x rw\n";
    std::vector<std::string> warnings;
    auto set = ProtectedSet::build({{dir_ + "/other/db", 5}}, 1000, warnings, mountinfo);
    struct stat st {};
    ASSERT_EQ(::stat((dir_ + "/other").c_str(), &st), 0);
    ks_inode_key other{kernel_dev(st.st_dev), st.st_ino};
    size_t to_other = 0;
    for (const auto& [k, child] : set.edges())
        if (child.dev == other.dev && child.ino == other.ino)
            to_other += k.name_hash == name_hash("view") ? 10 : 1;
    EXPECT_EQ(to_other, 11u) << "one edge by its name, one by the mount point";
    // A mount whose root is neither protected nor above it adds nothing.
    auto plain = ProtectedSet::build({{dir_ + "/other/db", 5}}, 1000, warnings, "/dev/null");
    EXPECT_EQ(set.edges().size(), plain.edges().size() + 1);
}

TEST(NameHash, IsFnv1a64) {
    EXPECT_EQ(name_hash(""), 0xcbf29ce484222325ULL);
    EXPECT_EQ(name_hash("a"), 0xaf63dc4c8601ec8cULL);
}

}  // namespace
}  // namespace ks
