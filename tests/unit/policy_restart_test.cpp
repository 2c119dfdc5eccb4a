// Which policy changes a running daemon cannot take (policy reload).
#include <gtest/gtest.h>

#include "policy/policy.h"

namespace ks::policy {
namespace {

Policy parsed(const std::string& text) {
    auto r = parse_policy(text, "p.yaml");
    EXPECT_TRUE(r.policy) << (r.errors.empty() ? "" : r.errors[0].str());
    return r.policy.value_or(Policy{});
}

TEST(PolicyRestart, ChangesAppliedAtRuntimeNeedNoRestart) {
    Policy next = parsed(
        "mode: monitor\n"
        "agents:\n  names: [my-agent]\n"
        "guard:\n  uids: [1001]\n"
        "protect:\n  paths: [/srv/a]\n  action: hold\n  io_uring: allow\n"
        "databases:\n  endpoints: [postgres=*:5433]\n  action: kill\n");
    EXPECT_TRUE(restart_required_changes(default_policy(), next).empty());
}

TEST(PolicyRestart, EveryKeyReadOnlyAtStartIsNamed) {
    Policy next = parsed(
        "agents:\n  hold_at_exec: false\n"
        "guard:\n  cgroups: [/ci.slice]\n"
        "protect:\n  libc_uprobes: false\n"
        "databases:\n  client_probes: false\n"
        "audit:\n  log: /srv/audit.jsonl\n");
    auto msgs = restart_required_changes(default_policy(), next);
    ASSERT_EQ(msgs.size(), 5u);
    EXPECT_EQ(msgs[0],
              "audit.log changes from '/var/log/killswitch/audit.jsonl' to '/srv/audit.jsonl': "
              "the audit log is opened once, when the daemon starts (SIGHUP reopens the same "
              "path); restart the daemon to change it");
    EXPECT_EQ(msgs[1].rfind("agents.hold_at_exec changes from true to false: ", 0), 0u) << msgs[1];
    EXPECT_EQ(msgs[2].rfind("protect.libc_uprobes changes from true to false: ", 0), 0u);
    EXPECT_EQ(msgs[3].rfind("databases.client_probes changes from true to false: ", 0), 0u);
    EXPECT_EQ(msgs[4].rfind("guard.cgroups changes from [] to [/ci.slice]: ", 0), 0u) << msgs[4];
    for (const auto& m : msgs) EXPECT_NE(m.find("restart the daemon"), std::string::npos) << m;
}

}  // namespace
}  // namespace ks::policy
