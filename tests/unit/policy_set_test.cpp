// The policy of a host as the packaged service reads it: a main file and the
// drop-in files of policy.d, merged in name order, with each file's problems
// reported at its own name and line, and one SHA-256 for the whole set.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "common/digest.h"
#include "policy/policy.h"

namespace ks::policy {
namespace {

namespace fs = std::filesystem;

class PolicySet : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/ks-policy-set-XXXXXX";
        root_ = ::mkdtemp(tmpl);
        fs::create_directories(root_ + "/policy.d");
    }
    void TearDown() override { fs::remove_all(root_); }

    std::string write(const std::string& rel, const std::string& text) {
        std::string path = root_ + "/" + rel;
        std::ofstream(path) << text;
        return path;
    }
    std::string dir() const { return root_ + "/policy.d"; }

    std::string root_;
};

TEST(Sha256, KnownAnswers) {
    EXPECT_EQ(sha256_hex("abc"),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_F(PolicySet, DropInsApplyInNameOrderListsAddAndScalarsReplace) {
    std::string main = write("policy.yaml",
                             "version: 1\nmode: monitor\nagents:\n  names: [claude]\n"
                             "protect:\n  paths: [/srv/a]\n");
    write("policy.d/50-postgres.yaml",
          "protect:\n  paths: [/var/lib/postgresql, /srv/a]\nmode: enforce\n");
    write("policy.d/10-agents.yaml", "agents:\n  names: [codex]\naudit:\n  mode: \"0640\"\n");
    write("policy.d/90-last.yaml", "mode: monitor\n");
    // Not drop-ins: another suffix, a hidden file, what dpkg leaves beside a conffile.
    write("policy.d/README", "mode: [not yaml\n");
    write("policy.d/.50-hidden.yaml", "mode: [not yaml\n");
    write("policy.d/50-postgres.yaml.dpkg-old", "mode: [not yaml\n");

    auto r = load_policy_set(main, dir());
    ASSERT_TRUE(r.policy) << (r.errors.empty() ? "" : r.errors[0].str());
    const Policy& p = *r.policy;
    EXPECT_EQ(p.agent_names, (std::vector<std::string>{"claude", "codex"}));
    EXPECT_EQ(p.protect_paths, (std::vector<std::string>{"/srv/a", "/var/lib/postgresql"}));
    EXPECT_EQ(p.mode, Mode::Monitor);  // 90-last.yaml comes after 50-postgres.yaml
    EXPECT_EQ(p.audit_file_mode, 0640u);
    EXPECT_EQ(p.source, main);
    EXPECT_EQ(p.files, (std::vector<std::string>{main, dir() + "/10-agents.yaml",
                                                  dir() + "/50-postgres.yaml",
                                                  dir() + "/90-last.yaml"}));
}

TEST_F(PolicySet, Sha256IsOfTheTextsInOrderAsSha256sumOfCatGivesIt) {
    std::string main = write("policy.yaml", "version: 1\n");
    write("policy.d/b.yaml", "mode: monitor\n");
    write("policy.d/a.yaml", "protect:\n  paths: [/srv/x]\n");
    auto r = load_policy_set(main, dir());
    ASSERT_TRUE(r.policy);
    EXPECT_EQ(r.policy->sha256,
              sha256_hex("version: 1\nprotect:\n  paths: [/srv/x]\nmode: monitor\n"));
    // The same with sha256sum(1), as an operator checks a host by hand.
    std::string cmd = "cd " + root_ + " && LC_ALL=C cat policy.yaml policy.d/*.yaml | sha256sum";
    FILE* f = ::popen(cmd.c_str(), "r");
    ASSERT_NE(f, nullptr);
    char buf[128] = {};
    ASSERT_NE(std::fgets(buf, sizeof(buf), f), nullptr);
    ::pclose(f);
    EXPECT_EQ(std::string(buf).substr(0, 64), r.policy->sha256);

    // One byte changed in a drop-in changes it.
    write("policy.d/b.yaml", "mode: enforce\n");
    auto again = load_policy_set(main, dir());
    ASSERT_TRUE(again.policy);
    EXPECT_NE(again.policy->sha256, r.policy->sha256);

    // The built-in policy alone has the digest of its text.
    auto builtin = load_policy_set("", "");
    ASSERT_TRUE(builtin.policy);
    EXPECT_EQ(builtin.policy->sha256, sha256_hex(default_policy_text()));
    EXPECT_TRUE(builtin.policy->files.empty());
}

TEST_F(PolicySet, EveryFilesErrorsAreNamedWithTheirFileAndLine) {
    std::string main = write("policy.yaml", "version: 1\nmode: sometimes\n");
    write("policy.d/20-ok.yaml", "protect:\n  paths: [/srv/a]\n");
    write("policy.d/30-bad.yaml", "protect:\n  paths:\n    - relative/path\n");
    auto r = load_policy_set(main, dir());
    EXPECT_FALSE(r.policy);
    ASSERT_EQ(r.errors.size(), 2u);
    EXPECT_EQ(r.errors[0].file, main);
    EXPECT_EQ(r.errors[0].line, 2);
    EXPECT_EQ(r.errors[1].file, dir() + "/30-bad.yaml");
    EXPECT_EQ(r.errors[1].line, 3);
    EXPECT_NE(r.errors[1].str().find("30-bad.yaml:3:7: error:"), std::string::npos)
        << r.errors[1].str();
}

TEST_F(PolicySet, AMissingDirectoryIsAnError) {
    auto r = load_policy_set("", root_ + "/nowhere");
    EXPECT_FALSE(r.policy);
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0].str(),
              root_ + "/nowhere: error: cannot read policy directory: No such file or directory");
}

TEST(AuditAccess, ModeAndGroupAreCheckedWhereTheyAreWritten) {
    auto ok = parse_policy("audit:\n  mode: 0640\n  group: 12345\n", "p.yaml");
    ASSERT_TRUE(ok.policy) << ok.errors[0].str();
    EXPECT_EQ(ok.policy->audit_file_mode, 0640u);
    EXPECT_EQ(ok.policy->audit_gid, 12345);
    auto root = parse_policy("audit:\n  group: root\n", "p.yaml");
    ASSERT_TRUE(root.policy);
    EXPECT_EQ(root.policy->audit_gid, 0);

    struct Case {
        std::string yaml, error;
    };
    for (const auto& c : std::vector<Case>{
             {"audit:\n  mode: 0666\n",
              "p.yaml:2:9: error: audit.mode 0666 gives write or execute permission beyond the "
              "owner's (or a special bit): at most 0644, such as 0600 or 0640"},
             {"audit:\n  mode: 4600\n",
              "p.yaml:2:9: error: audit.mode 4600 gives write or execute permission beyond the "
              "owner's (or a special bit): at most 0644, such as 0600 or 0640"},
             {"audit:\n  mode: 0400\n",
              "p.yaml:2:9: error: audit.mode 0400 must let its owner (root) read and write: 06xx"},
             {"audit:\n  mode: rw-r-----\n",
              "p.yaml:2:9: error: audit.mode must be an octal file mode such as 0640, got "
              "'rw-r-----'"},
             {"audit:\n  group: no-such-group-here\n",
              "p.yaml:2:10: error: audit.group 'no-such-group-here' is not a group of this host "
              "(no such group)"},
         }) {
        auto r = parse_policy(c.yaml, "p.yaml");
        EXPECT_FALSE(r.policy) << c.yaml;
        ASSERT_EQ(r.errors.size(), 1u) << c.yaml;
        EXPECT_EQ(r.errors[0].str(), c.error);
    }
}

}  // namespace
}  // namespace ks::policy
