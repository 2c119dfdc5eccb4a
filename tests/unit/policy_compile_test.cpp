// compile(): rule ids and names, self rules, banks across a reload, the
// socket path's settings and endpoint errors, all without root.
#include <gtest/gtest.h>

#include "policy/compile.h"

namespace ks::policy {
namespace {

const Environment kEnv{"/usr/sbin/killswitch", "/sys/fs/cgroup", "/sys/fs/bpf/killswitch"};

Policy with_paths(std::vector<std::string> paths) {
    Policy p = default_policy();
    p.protect_paths = std::move(paths);
    return p;
}

TEST(PolicyCompile, FixedRulesThenPathsThenSelfRules) {
    auto c = compile(with_paths({"/srv/pg", "/srv/mysql"}), "/etc/killswitch/policy.yaml", kEnv,
                     nullptr);
    ASSERT_TRUE(c) << c.error().str();
    EXPECT_EQ(c->rule_name(kRuleUnresolved), "unresolved-path");
    EXPECT_EQ(c->rule_name(kRuleIoUring), "io_uring");
    EXPECT_EQ(c->rule_name(kRuleExecCommand), "exec-command");
    EXPECT_EQ(c->bank_first, kRuleFirstPath);
    EXPECT_EQ(c->rule_name(kRuleFirstPath), "protect:/srv/pg");
    EXPECT_EQ(c->rule_name(kRuleFirstPath + 1), "protect:/srv/mysql");
    // Then the built-in system paths, each a rule of protect's action that
    // a window may cover.
    const auto& system = c->policy.protect_system;
    ASSERT_FALSE(system.empty());
    EXPECT_EQ(system.front(), "/proc/sys");
    uint32_t first_system = kRuleFirstPath + 2;
    EXPECT_EQ(c->rule_name(first_system), "system:/proc/sys");
    EXPECT_EQ(c->rule(first_system).action, c->policy.protect_action);
    EXPECT_FALSE(c->rule(first_system).no_window);
    size_t system_entries = 0;
    for (const auto& e : c->protect) system_entries += e.system;
    EXPECT_EQ(system_entries, system.size());
    uint32_t first_self = first_system + static_cast<uint32_t>(system.size());
    // audit log, cgroup2, binary, policy file, pins
    std::vector<std::string> self;
    for (const auto& e : c->protect)
        if (e.self) self.push_back(e.path);
    EXPECT_EQ(self, (std::vector<std::string>{c->policy.audit_log, "/sys/fs/cgroup",
                                              "/usr/sbin/killswitch", "/etc/killswitch/policy.yaml",
                                              "/sys/fs/bpf/killswitch"}));
    EXPECT_EQ(c->bank_end, first_self + 5);
    EXPECT_EQ(c->rule_name(first_self), "self:" + c->policy.audit_log);
    // Self rules block, in every window; path rules follow the policy.
    EXPECT_EQ(c->rule(first_self).action, Action::Block);
    EXPECT_TRUE(c->rule(first_self).no_window);
    EXPECT_FALSE(c->rule(kRuleFirstPath).no_window);
    EXPECT_TRUE(c->rule(kRuleUnresolved).no_window);
    EXPECT_TRUE(c->rule(kRuleIoUring).no_window);
    EXPECT_EQ(c->rule_name(200), "rule-200");
    EXPECT_EQ(c->io_uring_rule, kRuleIoUring);
}

TEST(PolicyCompile, NoPinsNoPolicyFileMeansFewerSelfRules) {
    Policy p = with_paths({});
    p.protect_system.clear();  // protect.system: []
    auto c = compile(p, "", {"", "/sys/fs/cgroup/unified", ""}, nullptr);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->protect.size(), 2u) << "the audit log and the cgroup tree";
}

TEST(PolicyCompile, PerPathActionsAndModes) {
    auto res = parse_policy(
        "version: 1\nprotect:\n  action: kill\n  paths:\n    - /a\n    - {path: /b, action: hold}\n"
        "    - {path: /c, mode: monitor}\n",
        "t.yaml");
    ASSERT_TRUE(res.policy) << res.errors[0].str();
    auto c = compile(*res.policy, "", kEnv, nullptr);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->rule(kRuleFirstPath).action, Action::Kill);
    EXPECT_EQ(c->rule(kRuleFirstPath + 1).action, Action::Hold);
    EXPECT_TRUE(c->rule(kRuleFirstPath + 2).monitor);
    EXPECT_FALSE(c->rule(kRuleFirstPath).monitor);
    EXPECT_EQ(c->rule(kRuleExecCommand).action, Action::Kill);
}

TEST(PolicyCompile, MonitorModeReachesEveryRuleAndTheSocketPath) {
    Policy p = with_paths({"/srv/pg"});
    p.mode = Mode::Monitor;
    auto c = compile(p, "", kEnv, nullptr);
    ASSERT_TRUE(c);
    for (uint32_t id = 0; id < c->bank_end; ++id) EXPECT_TRUE(c->rule(id).monitor) << id;
    EXPECT_TRUE(c->db_wire.monitor);
    EXPECT_TRUE(c->db_client_monitor);
}

TEST(PolicyCompile, DatabasesAuditRecordsOnTheSocketPathButHoldsAtLibpq) {
    Policy p = with_paths({});
    p.db_action = Action::Audit;
    auto c = compile(p, "", kEnv, nullptr);
    ASSERT_TRUE(c);
    EXPECT_TRUE(c->db_wire.monitor);
    EXPECT_FALSE(c->db_client_monitor);
}

TEST(PolicyCompile, AReloadUsesTheOtherBankAndKeepsTheOldNamesReadable) {
    auto first = compile(with_paths({"/a", "/b"}), "", kEnv, nullptr);
    ASSERT_TRUE(first);
    auto second = compile(with_paths({"/c"}), "", kEnv, &*first);
    ASSERT_TRUE(second);
    EXPECT_EQ(second->bank_first, first->bank_end) << "above the rules in force";
    EXPECT_EQ(second->rule_name(second->bank_first), "protect:/c");
    EXPECT_EQ(second->rule_name(kRuleFirstPath), "protect:/a") << "records in flight still read";
    auto third = compile(with_paths({"/d"}), "", kEnv, &*second);
    ASSERT_TRUE(third);
    EXPECT_EQ(third->bank_first, kRuleFirstPath) << "below, where there is room again";
    EXPECT_EQ(third->rule_name(kRuleFirstPath), "protect:/d");
}

TEST(PolicyCompile, TooManyPathsAndBadEndpointsAreErrors) {
    std::vector<std::string> many;
    for (int i = 0; i < KS_MAX_RULES; ++i) many.push_back("/p" + std::to_string(i));
    auto c = compile(with_paths(many), "", kEnv, nullptr);
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().str().find("too many protected paths"), std::string::npos);

    Policy p = with_paths({});
    p.db_endpoints = {"postgres=nowhere:notaport"};
    auto bad = compile(p, "", kEnv, nullptr);
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().str().find("database endpoint"), std::string::npos);
}

TEST(PolicyCompile, BlockDevicesAreRefusedByDefaultAndAllowHasNoRule) {
    auto c = compile(with_paths({}), "", kEnv, nullptr);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->block_device_rule, kRuleBlockDevice);
    EXPECT_EQ(c->rule_name(kRuleBlockDevice), "block-device");
    EXPECT_EQ(c->rule(kRuleBlockDevice).action, Action::Block);
    EXPECT_TRUE(c->rule(kRuleBlockDevice).no_window) << "an allow window opened the disks";
    auto parsed = parse_policy("version: 1\nprotect:\n  block_devices: allow\n", "t.yaml");
    ASSERT_TRUE(parsed.policy);
    auto allowed = compile(*parsed.policy, "", kEnv, nullptr);
    ASSERT_TRUE(allowed);
    EXPECT_EQ(allowed->block_device_rule, uint32_t{KS_MAX_RULES});
    auto bad = parse_policy("version: 1\nprotect:\n  block_devices: maybe\n", "t.yaml");
    ASSERT_FALSE(bad.errors.empty());
    EXPECT_NE(bad.errors[0].str().find("protect.block_devices"), std::string::npos)
        << bad.errors[0].str();
}

TEST(PolicyCompile, TheSpaceBudgetIsOnByDefaultAndOffHasNoRule) {
    auto c = compile(with_paths({}), "", kEnv, nullptr);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->space_rule, kRuleSpace);
    EXPECT_EQ(c->rule_name(kRuleSpace), "low-space");
    EXPECT_EQ(c->rule(kRuleSpace).action, Action::Block);
    EXPECT_EQ(c->policy.min_free, (MinFree{.percent = 5}));
    auto parsed = parse_policy("version: 1\nprotect:\n  min_free: off\n", "t.yaml");
    ASSERT_TRUE(parsed.policy);
    auto off = compile(*parsed.policy, "", kEnv, nullptr);
    ASSERT_TRUE(off);
    EXPECT_EQ(off->space_rule, uint32_t{KS_MAX_RULES});
}

TEST(PolicyMinFree, ASharePercentOrASizeOrOff) {
    EXPECT_EQ(parse_min_free("5%"), (MinFree{.percent = 5}));
    EXPECT_EQ(parse_min_free("90%"), (MinFree{.percent = 90}));
    EXPECT_EQ(parse_min_free("2GiB"), (MinFree{.bytes = 2ull << 30}));
    EXPECT_EQ(parse_min_free("512M"), (MinFree{.bytes = 512ull << 20}));
    EXPECT_EQ(parse_min_free("1048576"), (MinFree{.bytes = 1048576}));
    EXPECT_EQ(parse_min_free("1T"), (MinFree{.bytes = 1ull << 40}));
    EXPECT_TRUE(parse_min_free("off")->off());
    for (const char* bad :
         {"0%", "91%", "0", "5 %", "5GB", "-1G", "1.5G", "", "%", "lots", "99999999999999999G"})
        EXPECT_FALSE(parse_min_free(bad)) << bad;
    EXPECT_EQ(MinFree{.percent = 5}.floor(1000), 50u);
    EXPECT_EQ(MinFree{.bytes = 300}.floor(1000), 300u);
    EXPECT_EQ(MinFree{.bytes = 2ull << 30}.text(), "2GiB");
    EXPECT_EQ(MinFree{.bytes = 1536}.text(), "1536");
    EXPECT_EQ(MinFree{.percent = 7}.text(), "7%");
    EXPECT_EQ(MinFree{}.text(), "off");
    for (const char* t : {"5%", "2GiB", "512MiB", "off"})
        EXPECT_EQ(parse_min_free(t)->text(), t) << t;
}

TEST(PolicyMinFree, ABadValueIsAnErrorWithItsLine) {
    auto bad = parse_policy("version: 1\nprotect:\n  min_free: 95%\n", "p.yaml");
    ASSERT_EQ(bad.errors.size(), 1u);
    EXPECT_EQ(bad.errors[0].line, 3);
    EXPECT_NE(bad.errors[0].str().find("protect.min_free must be"), std::string::npos)
        << bad.errors[0].str();
    EXPECT_NE(bad.errors[0].str().find("95%"), std::string::npos) << bad.errors[0].str();
}

TEST(PolicyCompile, IoUringAllowedHasNoRule) {
    Policy p = with_paths({});
    p.io_uring_allowed = true;
    auto c = compile(p, "", kEnv, nullptr);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->io_uring_rule, uint32_t{KS_MAX_RULES});
}

}  // namespace
}  // namespace ks::policy
