#include "policy/policy.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cli/commands.h"

namespace ks::policy {
namespace {

namespace fs = std::filesystem;

// "LINE:COL: MESSAGE" of each diagnostic, to compare whole lists at once.
std::vector<std::string> brief(const std::vector<Diagnostic>& ds) {
    std::vector<std::string> out;
    for (const auto& d : ds)
        out.push_back(std::to_string(d.line) + ":" + std::to_string(d.column) + ": " + d.message);
    return out;
}

LoadResult parse(const std::string& text) { return parse_policy(text, "test.yaml"); }

// Parses text that must be valid (warnings allowed) and returns the policy.
Policy parse_ok(const std::string& text) {
    auto r = parse(text);
    EXPECT_TRUE(r.errors.empty()) << ::testing::PrintToString(brief(r.errors));
    EXPECT_TRUE(r.policy.has_value());
    return r.policy.value_or(Policy{});
}

// The one error of a text that must have exactly one, as "LINE:COL: MESSAGE".
std::string one_error(const std::string& text) {
    auto r = parse(text);
    EXPECT_FALSE(r.policy.has_value());
    EXPECT_EQ(r.errors.size(), 1u) << ::testing::PrintToString(brief(r.errors));
    return r.errors.empty() ? "" : brief(r.errors).front();
}

class TempDir {
  public:
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "ks-policy-test-XXXXXX").string();
        if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    std::string write(const std::string& name, const std::string& text) const {
        auto p = path_ / name;
        std::ofstream(p) << text;
        return p.string();
    }
    [[nodiscard]] const fs::path& path() const { return path_; }

  private:
    fs::path path_;
};

// ---- the built-in policy ----

TEST(DefaultPolicy, ParsesWithoutErrorsOrWarnings) {
    auto r = parse_policy(default_policy_text(), "<built-in>");
    EXPECT_TRUE(r.errors.empty()) << ::testing::PrintToString(brief(r.errors));
    EXPECT_TRUE(r.warnings.empty()) << ::testing::PrintToString(brief(r.warnings));
    ASSERT_TRUE(r.policy.has_value());
    EXPECT_EQ(*r.policy, default_policy());
}

TEST(DefaultPolicy, HasTheAgentsTheDataDirectoriesAndTheDefaults) {
    Policy p = default_policy();
    EXPECT_EQ(p.version, 1);
    EXPECT_EQ(p.mode, Mode::Enforce);
    EXPECT_EQ(p.agent_names, (std::vector<std::string>{"claude", "codex", "gemini", "aider",
                                                       "goose", "opencode", "cursor-agent"}));
    EXPECT_TRUE(p.hold_agents_at_exec);
    EXPECT_TRUE(p.guard_uids.empty());
    EXPECT_TRUE(p.guard_cgroups.empty());
    EXPECT_EQ(p.protect_paths,
              (std::vector<std::string>{"/var/lib/postgresql", "/var/lib/pgsql", "/var/lib/mysql",
                                        "/var/lib/mongodb", "/var/lib/mongo", "/var/lib/redis",
                                        "/var/lib/etcd", "/etc/killswitch",
                                        "/usr/local/sbin/killswitch", "/var/log/killswitch"}));
    EXPECT_EQ(p.audit_log, "/var/log/killswitch/audit.jsonl");
    EXPECT_EQ(p.source, "<built-in>");
}

TEST(DefaultPolicy, TextHasComments) {
    const std::string& text = default_policy_text();
    EXPECT_NE(text.find("# "), std::string::npos);
    EXPECT_NE(text.find("hold_at_exec: true"), std::string::npos);
}

TEST(DefaultPolicy, EmptyMappingGivesTheDefaults) {
    Policy p = parse_ok("{}\n");
    Policy d = default_policy();
    d.source = "test.yaml";
    EXPECT_EQ(p, d);
}

TEST(DefaultPolicy, EmptyFileGivesTheDefaultsWithAWarning) {
    for (const std::string text : {"", "\n", "# only a comment\n", "---\n"}) {
        auto r = parse(text);
        ASSERT_TRUE(r.policy.has_value()) << text;
        EXPECT_EQ(r.policy->agent_names, default_policy().agent_names);
        EXPECT_EQ(
            brief(r.warnings),
            std::vector<std::string>{"1:1: the policy is empty; every setting takes its default"})
            << text;
    }
}

// ---- valid policies ----

TEST(PolicyParse, OnlyModeMonitorKeepsTheOtherDefaults) {
    auto r = parse("mode: monitor\n");
    ASSERT_TRUE(r.policy.has_value());
    EXPECT_TRUE(r.warnings.empty());
    Policy expected = default_policy();
    expected.mode = Mode::Monitor;
    expected.source = "test.yaml";
    EXPECT_EQ(*r.policy, expected);
}

TEST(PolicyParse, MissingKeysInsideASectionKeepTheirDefaults) {
    Policy p = parse_ok("agents:\n  hold_at_exec: false\nguard:\n  uids: [1000]\n");
    EXPECT_FALSE(p.hold_agents_at_exec);
    EXPECT_EQ(p.agent_names, default_policy().agent_names);
    EXPECT_EQ(p.guard_uids, (std::vector<uint32_t>{1000}));
    EXPECT_TRUE(p.guard_cgroups.empty());
    EXPECT_EQ(p.protect_paths, default_policy().protect_paths);
}

TEST(PolicyParse, SectionWithNoValueKeepsItsDefaults) {
    auto r = parse("guard:\nagents:   # all commented out\n#  names: [x]\n");
    EXPECT_TRUE(r.errors.empty()) << ::testing::PrintToString(brief(r.errors));
    ASSERT_TRUE(r.policy.has_value());
    EXPECT_EQ(r.policy->agent_names, default_policy().agent_names);
}

TEST(PolicyParse, FullPolicy) {
    Policy p = parse_ok(R"(version: 1
mode: monitor
agents:
  names:
    - my-agent
    - "bot"
  hold_at_exec: false
guard:
  uids: [0, 1000, 4294967294]
  cgroups: [/ci.slice, agents/run]
protect:
  paths: ['/srv/db', /data]
audit:
  log: /tmp/audit.jsonl
)");
    EXPECT_EQ(p.version, 1);
    EXPECT_EQ(p.mode, Mode::Monitor);
    EXPECT_EQ(p.agent_names, (std::vector<std::string>{"my-agent", "bot"}));
    EXPECT_FALSE(p.hold_agents_at_exec);
    EXPECT_EQ(p.guard_uids, (std::vector<uint32_t>{0, 1000, 4294967294u}));
    EXPECT_EQ(p.guard_cgroups, (std::vector<std::string>{"/ci.slice", "/agents/run"}));
    EXPECT_EQ(p.protect_paths, (std::vector<std::string>{"/srv/db", "/data"}));
    EXPECT_EQ(p.audit_log, "/tmp/audit.jsonl");
    EXPECT_EQ(p.source, "test.yaml");
}

TEST(PolicyParse, EmptyListsAreAllowed) {
    Policy p = parse_ok("agents:\n  names: []\nprotect:\n  paths: []\n");
    EXPECT_TRUE(p.agent_names.empty());
    EXPECT_TRUE(p.protect_paths.empty());
}

TEST(PolicyParse, BooleanSpellings) {
    EXPECT_TRUE(parse_ok("agents: {hold_at_exec: True}").hold_agents_at_exec);
    EXPECT_TRUE(parse_ok("agents: {hold_at_exec: TRUE}").hold_agents_at_exec);
    EXPECT_FALSE(parse_ok("agents: {hold_at_exec: false}").hold_agents_at_exec);
    EXPECT_FALSE(parse_ok("agents: {hold_at_exec: !!bool false}").hold_agents_at_exec);
}

TEST(PolicyParse, QuotedModeIsAccepted) {
    EXPECT_EQ(parse_ok("mode: \"monitor\"\n").mode, Mode::Monitor);
}

TEST(PolicyMode, NamesAndParsing) {
    EXPECT_EQ(mode_name(Mode::Enforce), "enforce");
    EXPECT_EQ(mode_name(Mode::Monitor), "monitor");
    EXPECT_EQ(parse_mode("enforce"), Mode::Enforce);
    EXPECT_EQ(parse_mode("monitor"), Mode::Monitor);
    EXPECT_EQ(parse_mode("Enforce"), std::nullopt);
    EXPECT_EQ(parse_mode(""), std::nullopt);
}

// ---- diagnostics ----

TEST(PolicyDiagnostic, Format) {
    Diagnostic d{"/etc/killswitch/policy.yaml", 3, 7, "mode must be 'enforce' or 'monitor'"};
    EXPECT_EQ(d.str(),
              "/etc/killswitch/policy.yaml:3:7: error: mode must be 'enforce' or 'monitor'");
    EXPECT_EQ(d.warning_str(),
              "/etc/killswitch/policy.yaml:3:7: warning: mode must be 'enforce' or 'monitor'");
    Diagnostic nowhere{"p.yaml", 0, 0, "cannot read policy file: Permission denied"};
    EXPECT_EQ(nowhere.str(), "p.yaml: error: cannot read policy file: Permission denied");
}

TEST(PolicyErrors, DiagnosticsNameTheSource) {
    auto r = parse_policy("mode: x\n", "/etc/killswitch/policy.yaml");
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0].file, "/etc/killswitch/policy.yaml");
    EXPECT_EQ(r.errors[0].str(),
              "/etc/killswitch/policy.yaml:1:7: error: mode must be 'enforce' or 'monitor', got "
              "'x'");
}

// ---- YAML syntax and structure ----

TEST(PolicyErrors, SyntaxErrorHasItsPosition) {
    EXPECT_EQ(one_error("mode: enforce\nagents:\n  names: [claude, codex\n"),
              "4:1: YAML syntax error: end of sequence flow not found");
    EXPECT_EQ(one_error("mode: enforce\nguard: uids: [1]\n"),
              "2:12: YAML syntax error: illegal map value");
}

TEST(PolicyErrors, SyntaxErrorFromATabSaysSo) {
    EXPECT_EQ(one_error("agents:\n\tnames: [a]\n"),
              "2:7: YAML syntax error: illegal map value (this line is indented with a tab; "
              "YAML indentation must use spaces)");
}

TEST(PolicyErrors, TopLevelMustBeAMapping) {
    EXPECT_EQ(one_error("- mode: enforce\n"),
              "1:1: the policy must be a mapping of keys (version, mode, agents, guard, protect, "
              "processes, sessions, audit, databases, outputs), got a list");
    EXPECT_EQ(one_error("enforce\n"),
              "1:1: the policy must be a mapping of keys (version, mode, agents, guard, protect, "
              "processes, sessions, audit, databases, outputs), got 'enforce'");
}

TEST(PolicyErrors, OnlyOneDocument) {
    EXPECT_EQ(one_error("mode: enforce\n---\nmode: monitor\n"),
              "2:1: a second YAML document starts here; a policy file holds exactly one");
    EXPECT_EQ(one_error("mode: enforce\n---\n,\n"),
              "2:1: a second YAML document starts here; a policy file holds exactly one");
    // An explicit start and end of the one document are fine.
    EXPECT_EQ(parse_ok("---\nmode: monitor\n...\n").mode, Mode::Monitor);
}

// yaml-cpp 0.7's LoadAll() loops forever, allocating, on these.
TEST(PolicyErrors, StrayCommaIsASyntaxErrorNotAHang) {
    EXPECT_EQ(one_error(","), "1:1: YAML syntax error: unexpected ','");
    EXPECT_EQ(one_error("# policy\n\n  ,\nmode: x\n"), "3:3: YAML syntax error: unexpected ','");
}

TEST(PolicyErrors, UnknownTopLevelKey) {
    EXPECT_EQ(one_error("version: 1\nagent:\n  names: [claude]\n"),
              "2:1: unknown key 'agent' (expected one of: version, mode, agents, guard, protect, "
              "processes, sessions, audit, databases, outputs)");
}

TEST(PolicyErrors, UnknownKeyInASection) {
    EXPECT_EQ(one_error("version: 1\nmode: enforce\nagents:\n  namez: [claude]\n"),
              "4:3: unknown key 'namez' in agents (expected one of: names, hold_at_exec)");
    EXPECT_EQ(one_error("guard:\n  users: []\n"),
              "2:3: unknown key 'users' in guard (expected one of: uids, cgroups)");
    // protect takes more keys than paths (actions); only the start is fixed here.
    std::string protect = one_error("protect:\n  path: [/x]\n");
    EXPECT_TRUE(protect.starts_with("2:3: unknown key 'path' in protect (expected one of: paths"))
        << protect;
    EXPECT_EQ(one_error("audit: {file: /x}\n"),
              "1:9: unknown key 'file' in audit (expected one of: log, mode, group)");
}

TEST(PolicyErrors, KeysMustBeStrings) {
    EXPECT_EQ(one_error("? [mode]\n: enforce\n"), "1:3: keys must be strings, got a list");
}

TEST(PolicyErrors, DuplicateKeyIsReportedAtTheSecondOccurrence) {
    EXPECT_EQ(one_error("mode: enforce\nversion: 1\nmode: monitor\n"),
              "3:1: duplicate key 'mode' (first given at line 1)");
    EXPECT_EQ(one_error("agents:\n  names: [a]\n  hold_at_exec: true\n  names: [b]\n"),
              "4:3: duplicate key 'names' in agents (first given at line 2)");
    EXPECT_EQ(one_error("audit: {log: /a, log: /b}\n"),
              "1:18: duplicate key 'log' in audit (first given at line 1, column 9)");
}

TEST(PolicyErrors, SectionMustBeAMapping) {
    EXPECT_EQ(one_error("agents: [claude]\n"),
              "1:9: agents must be a mapping of keys (names, hold_at_exec), got a list");
    EXPECT_EQ(one_error("guard: 1000\n"),
              "1:8: guard must be a mapping of keys (uids, cgroups), got '1000'");
}

// ---- version, mode, booleans ----

TEST(PolicyErrors, Version) {
    EXPECT_EQ(one_error("version: 2\n"),
              "1:10: unsupported policy version 2 (this killswitch reads version 1)");
    EXPECT_EQ(one_error("version: \"1\"\n"),
              "1:10: version must be the integer 1, got the string '1'");
    EXPECT_EQ(one_error("version: 1.0\n"), "1:10: version must be the integer 1, got '1.0'");
    EXPECT_EQ(one_error("version: one\n"), "1:10: version must be the integer 1, got 'one'");
    EXPECT_EQ(one_error("mode: monitor\nversion:\n"),
              "2:1: version must be the integer 1, got no value");
    EXPECT_EQ(parse_ok("version: 1\n").version, 1);
}

TEST(PolicyErrors, Mode) {
    EXPECT_EQ(one_error("version: 1\nmode: enforcing\n"),
              "2:7: mode must be 'enforce' or 'monitor', got 'enforcing'");
    EXPECT_EQ(one_error("mode: [enforce]\n"),
              "1:7: mode must be 'enforce' or 'monitor', got a list");
    EXPECT_EQ(one_error("mode: ~\n"), "1:7: mode must be 'enforce' or 'monitor', got no value");
}

TEST(PolicyErrors, BooleansMustBeBooleans) {
    EXPECT_EQ(one_error("agents:\n  hold_at_exec: yes\n"),
              "2:17: agents.hold_at_exec must be true or false, got 'yes'");
    EXPECT_EQ(one_error("agents:\n  hold_at_exec: \"true\"\n"),
              "2:17: agents.hold_at_exec must be true or false, got the string 'true'");
    EXPECT_EQ(one_error("agents:\n  hold_at_exec: 1\n"),
              "2:17: agents.hold_at_exec must be true or false, got '1'");
    EXPECT_EQ(one_error("agents:\n  hold_at_exec:\n"),
              "2:3: agents.hold_at_exec must be true or false, got no value");
}

// ---- lists ----

TEST(PolicyErrors, ListsMustBeSequencesOfScalars) {
    EXPECT_EQ(one_error("agents:\n  names: claude\n"),
              "2:10: agents.names must be a list, got 'claude' (write [claude] for a list of one)");
    EXPECT_EQ(one_error("agents:\n  names:\n"),
              "2:3: agents.names must be a list, got no value (write [] for an empty list)");
    EXPECT_EQ(one_error("agents:\n  names: {a: b}\n"),
              "2:10: agents.names must be a list, got a mapping");
    EXPECT_EQ(one_error("agents:\n  names: [claude, [codex]]\n"),
              "2:19: agents.names entries must be strings, got a list");
    EXPECT_EQ(one_error("guard:\n  uids:\n    - 1\n    - {uid: 2}\n"),
              "4:7: guard.uids entries must be unsigned integers, got a mapping");
    EXPECT_EQ(one_error("guard:\n  cgroups: [{a: 1}]\n"),
              "2:13: guard.cgroups entries must be strings, got a mapping");
    std::string nested = one_error("protect:\n  paths: [[/a]]\n");
    EXPECT_TRUE(nested.starts_with("2:11: protect.paths entries must be ")) << nested;
    EXPECT_TRUE(nested.ends_with(", got a list")) << nested;
    EXPECT_EQ(one_error("protect:\n  paths: /var/lib/mysql\n"),
              "2:10: protect.paths must be a list, got '/var/lib/mysql' (write [/var/lib/mysql] "
              "for a list of one)");
}

// ---- agent names ----

TEST(PolicyErrors, AgentNameMustNotBeEmpty) {
    EXPECT_EQ(one_error("agents:\n  names: [claude, \"\"]\n"),
              "2:19: agents.names entries must not be empty");
    // An entry with nothing after its '-' is reported at the '-', not at the
    // next line where yaml-cpp marks it.
    EXPECT_EQ(one_error("agents:\n  names:\n    - claude\n    -   # nothing\n\n    - codex\n"),
              "4:5: agents.names entries must not be empty");
    EXPECT_EQ(one_error("agents:\n  names:\n    - claude\n    -\n"),
              "4:5: agents.names entries must not be empty");
    EXPECT_EQ(one_error("agents:\n  names: [claude, ~]\n"),
              "2:19: agents.names entries must not be empty");
    // The token after the empty entry starts with "null" but is not a null.
    EXPECT_EQ(brief(parse("agents:\n  names:\n    - a\n    -\nnullx: 1\n").errors),
              (std::vector<std::string>{
                  "4:5: agents.names entries must not be empty",
                  "5:1: unknown key 'nullx' (expected one of: version, mode, agents, guard, "
                  "protect, processes, sessions, audit, databases, outputs)"}));
}

TEST(PolicyErrors, AgentNameMustNotHaveASlash) {
    EXPECT_EQ(one_error("agents:\n  names:\n    - /usr/bin/claude\n"),
              "3:7: agent name '/usr/bin/claude' must not contain '/' (names are matched against "
              "the executable's basename)");
}

TEST(PolicyErrors, ReachableProgramNamesAreBasenames) {
    EXPECT_EQ(one_error("processes:\n  reachable: [nginx, /usr/sbin/nginx]\n"),
              "2:22: program name '/usr/sbin/nginx' must not contain '/' (names are matched "
              "against the executable's basename)");
    auto r = parse("processes:\n  reachable: [nginx, php-fpm8.2]\n");
    ASSERT_TRUE(r.policy.has_value());
    EXPECT_EQ(r.policy->reachable_names, (std::vector<std::string>{"nginx", "php-fpm8.2"}));
    EXPECT_TRUE(parse("version: 1\n").policy->reachable_names.empty());
}

TEST(PolicyErrors, DeputySocketsAreAbsolutePaths) {
    EXPECT_EQ(one_error("processes:\n  deputies: [run/docker.sock]\n"),
              "2:14: deputy socket 'run/docker.sock' must be an absolute path (start with '/')");
    auto builtin = policy::default_policy().deputy_sockets;
    for (const char* s : {"/run/systemd/private", "/run/dbus/system_bus_socket", "/run/docker.sock",
                          "/run/containerd/containerd.sock"})
        EXPECT_NE(std::find(builtin.begin(), builtin.end(), s), builtin.end()) << s;
    auto r = parse("processes:\n  deputies: [/srv/agentd.sock]\n");
    ASSERT_TRUE(r.policy.has_value());
    EXPECT_EQ(r.policy->deputy_sockets, std::vector<std::string>{"/srv/agentd.sock"});
}

TEST(PolicyWarnings, LongAgentNameIsAWarning) {
    auto r = parse("agents:\n  names: [claude, my-very-long-agent]\n");
    EXPECT_TRUE(r.errors.empty());
    ASSERT_TRUE(r.policy.has_value());
    EXPECT_EQ(r.policy->agent_names, (std::vector<std::string>{"claude", "my-very-long-agent"}));
    EXPECT_EQ(brief(r.warnings),
              std::vector<std::string>{
                  "2:19: agent name 'my-very-long-agent' is 18 bytes long; the kernel keeps only "
                  "the first 15 characters of a program name ('my-very-long-ag'), so only those "
                  "are compared"});
    // Exactly 15 is fine.
    EXPECT_TRUE(parse("agents: {names: [abcdefghijklmno]}").warnings.empty());
}

TEST(PolicyWarnings, DuplicateAgentNameIsAWarningAndListedOnce) {
    auto r = parse("agents:\n  names:\n    - claude\n    - codex\n    - claude\n");
    EXPECT_TRUE(r.errors.empty());
    ASSERT_TRUE(r.policy.has_value());
    EXPECT_EQ(r.policy->agent_names, (std::vector<std::string>{"claude", "codex"}));
    EXPECT_EQ(brief(r.warnings), std::vector<std::string>{
                                     "5:7: agent name 'claude' is listed twice (first at line 3)"});
}

// ---- uids ----

TEST(PolicyErrors, Uids) {
    EXPECT_EQ(one_error("guard:\n  uids: [-1]\n"),
              "2:10: guard.uids entries must be unsigned integers, got '-1'");
    EXPECT_EQ(one_error("guard:\n  uids: [0, 4294967295]\n"),
              "2:13: uid 4294967295 is out of range (uids are below 4294967295)");
    EXPECT_EQ(one_error("guard:\n  uids: [99999999999999999999999]\n"),
              "2:10: uid 99999999999999999999999 is out of range (uids are below 4294967295)");
    EXPECT_EQ(one_error("guard:\n  uids: [\"1000\"]\n"),
              "2:10: guard.uids entries must be unsigned integers, got the string '1000' (write "
              "it without quotes)");
    EXPECT_EQ(one_error("guard:\n  uids: [postgres]\n"),
              "2:10: guard.uids entries must be unsigned integers, got 'postgres'");
    EXPECT_EQ(one_error("guard:\n  uids: [1.5]\n"),
              "2:10: guard.uids entries must be unsigned integers, got '1.5'");
    EXPECT_EQ(one_error("guard:\n  uids: [0x10]\n"),
              "2:10: guard.uids entries must be unsigned integers, got '0x10'");
    EXPECT_EQ(parse_ok("guard: {uids: [4294967294]}").guard_uids,
              (std::vector<uint32_t>{4294967294u}));
}

TEST(PolicyWarnings, DuplicateUid) {
    auto r = parse("guard:\n  uids: [1000, 1001, 1000]\n");
    ASSERT_TRUE(r.policy.has_value());
    EXPECT_EQ(r.policy->guard_uids, (std::vector<uint32_t>{1000, 1001}));
    EXPECT_EQ(
        brief(r.warnings),
        std::vector<std::string>{"2:22: uid 1000 is listed twice (first at line 2, column 10)"});
}

// ---- cgroups ----

TEST(PolicyParse, CgroupsAreNormalised) {
    Policy p = parse_ok("guard:\n  cgroups: [foo/bar, /a, //b//c/, 'x/', /]\n");
    EXPECT_EQ(p.guard_cgroups, (std::vector<std::string>{"/foo/bar", "/a", "/b/c", "/x", "/"}));
}

TEST(PolicyErrors, Cgroups) {
    EXPECT_EQ(one_error("guard:\n  cgroups: [\"\"]\n"),
              "2:13: guard.cgroups entries must not be empty");
    EXPECT_EQ(one_error("guard:\n  cgroups: [ci/../system.slice]\n"),
              "2:13: cgroup path 'ci/../system.slice' must not contain '.' or '..' components");
    EXPECT_EQ(one_error("guard:\n  cgroups:\n    - ..\n"),
              "3:7: cgroup path '..' must not contain '.' or '..' components");
    EXPECT_EQ(one_error("guard:\n  cgroups: [/a/./b]\n"),
              "2:13: cgroup path '/a/./b' must not contain '.' or '..' components");
}

TEST(PolicyWarnings, CgroupUnderTheMountPoint) {
    auto r = parse("guard:\n  cgroups: [/sys/fs/cgroup/ci.slice]\n");
    ASSERT_TRUE(r.policy.has_value());
    EXPECT_EQ(brief(r.warnings),
              std::vector<std::string>{
                  "2:13: cgroup path '/sys/fs/cgroup/ci.slice' starts with the cgroup2 mount "
                  "point; cgroup paths are relative to it (did you mean '/ci.slice'?)"});
}

TEST(PolicyWarnings, DuplicateCgroupAfterNormalising) {
    auto r = parse("guard:\n  cgroups: [a/b, /a/b/]\n");
    ASSERT_TRUE(r.policy.has_value());
    EXPECT_EQ(r.policy->guard_cgroups, (std::vector<std::string>{"/a/b"}));
    EXPECT_EQ(brief(r.warnings),
              std::vector<std::string>{
                  "2:18: cgroup '/a/b' is listed twice (first at line 2, column 13)"});
}

// ---- protect paths and the audit log ----

TEST(PolicyParse, PathsAreNormalised) {
    Policy p =
        parse_ok("protect:\n  paths: [/var//lib/mysql/, ///srv, /]\naudit:\n  log: //x//a.log\n");
    EXPECT_EQ(p.protect_paths, (std::vector<std::string>{"/var/lib/mysql", "/srv", "/"}));
    EXPECT_EQ(p.audit_log, "/x/a.log");
}

TEST(PolicyErrors, ProtectPaths) {
    EXPECT_EQ(one_error("protect:\n  paths:\n    - /var/lib/mysql\n    - var/lib/redis\n"),
              "4:7: protect path 'var/lib/redis' must be an absolute path (start with '/')");
    EXPECT_EQ(one_error("protect:\n  paths: ['']\n"),
              "2:11: protect.paths entries must not be empty");
    EXPECT_EQ(one_error("protect:\n  paths:\n    -\n"),
              "3:5: protect.paths entries must not be empty");
    EXPECT_EQ(one_error("protect:\n  paths: [/var/lib/../etc]\n"),
              "2:11: protect path '/var/lib/../etc' must not contain '.' or '..' components "
              "(paths are compared as written)");
    EXPECT_EQ(one_error("protect:\n  paths: [\"/a\\0b\"]\n"),
              "2:11: protect path '/a\\0b' must not contain a NUL byte");
}

TEST(PolicyWarnings, DuplicateProtectPathAfterNormalising) {
    auto r = parse("protect:\n  paths:\n    - /srv/db\n    - /srv//db/\n");
    ASSERT_TRUE(r.policy.has_value());
    EXPECT_EQ(r.policy->protect_paths, (std::vector<std::string>{"/srv/db"}));
    EXPECT_EQ(
        brief(r.warnings),
        std::vector<std::string>{"4:7: protect path '/srv/db' is listed twice (first at line 3)"});
}

TEST(PolicyParse, SystemPathsAreBuiltInAndReplaceable) {
    auto builtin = policy::default_policy().protect_system;
    for (const char* path :
         {"/proc/sys", "/proc/sysrq-trigger", "/sys/kernel/uevent_helper", "/etc/cron.d",
          "/var/spool/cron", "/etc/systemd", "/run/systemd/transient"})
        EXPECT_NE(std::find(builtin.begin(), builtin.end(), path), builtin.end()) << path;
    EXPECT_EQ(parse_ok("protect:\n  system: [/srv//jobs/]\n").protect_system,
              std::vector<std::string>{"/srv/jobs"});
    EXPECT_TRUE(parse_ok("protect:\n  system: []\n").protect_system.empty());
}

TEST(PolicyErrors, SystemPaths) {
    EXPECT_EQ(one_error("protect:\n  system: [etc/cron.d]\n"),
              "2:12: system path 'etc/cron.d' must be an absolute path (start with '/')");
    EXPECT_EQ(one_error("protect:\n  system: [{path: /etc/cron.d}]\n"),
              "2:12: protect.system entries must be an absolute path, got a mapping");
    auto r = parse("protect:\n  system: [/etc/cron.d, /etc//cron.d]\n");
    ASSERT_TRUE(r.policy.has_value());
    EXPECT_EQ(brief(r.warnings),
              std::vector<std::string>{
                  "2:25: system path '/etc/cron.d' is listed twice (first at line 2, column 12)"});
}

TEST(PolicyErrors, AuditLog) {
    EXPECT_EQ(one_error("audit:\n  log: audit.jsonl\n"),
              "2:8: audit.log 'audit.jsonl' must be an absolute path (start with '/')");
    EXPECT_EQ(one_error("audit:\n  log: ''\n"), "2:8: audit.log must not be empty");
    EXPECT_EQ(one_error("audit:\n  log:\n"),
              "2:3: audit.log must be an absolute path, got no value");
    EXPECT_EQ(one_error("audit:\n  log: [/a]\n"),
              "2:8: audit.log must be an absolute path, got a list");
    EXPECT_EQ(one_error("audit:\n  log: //\n"), "2:8: audit.log must name a file, not '/'");
}

// ---- all errors at once ----

TEST(PolicyErrors, AllErrorsAreCollectedInOrder) {
    auto r = parse(R"(version: 3
mode: off
agents:
  names: [ok, "a/b", ""]
  hold_at_exec: maybe
  extra: 1
guard:
  uids: [-5, 12]
  cgroups: [x/../y]
protect:
  paths: [relative]
audit:
  log: rel.log
mode: enforce
bogus: true
)");
    EXPECT_FALSE(r.policy.has_value());
    EXPECT_EQ(
        brief(r.errors),
        (std::vector<std::string>{
            "1:10: unsupported policy version 3 (this killswitch reads version 1)",
            "2:7: mode must be 'enforce' or 'monitor', got 'off'",
            "4:15: agent name 'a/b' must not contain '/' (names are matched against the "
            "executable's basename)",
            "4:22: agents.names entries must not be empty",
            "5:17: agents.hold_at_exec must be true or false, got 'maybe'",
            "6:3: unknown key 'extra' in agents (expected one of: names, hold_at_exec)",
            "8:10: guard.uids entries must be unsigned integers, got '-5'",
            "9:13: cgroup path 'x/../y' must not contain '.' or '..' components",
            "11:11: protect path 'relative' must be an absolute path (start with '/')",
            "13:8: audit.log 'rel.log' must be an absolute path (start with '/')",
            "14:1: duplicate key 'mode' (first given at line 2)",
            "15:1: unknown key 'bogus' (expected one of: version, mode, agents, guard, protect, "
            "processes, sessions, audit, databases, outputs)",
        }));
}

TEST(PolicyErrors, WarningsAreKeptAlongsideErrors) {
    auto r = parse("mode: x\nagents:\n  names: [a, a]\n");
    EXPECT_FALSE(r.policy.has_value());
    EXPECT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.warnings.size(), 1u);
}

// ---- files ----

TEST(PolicyFile, MissingFile) {
    auto r = load_policy_file("/nonexistent/killswitch/policy.yaml");
    EXPECT_FALSE(r.policy.has_value());
    ASSERT_EQ(r.errors.size(), 1u);
    const auto& d = r.errors[0];
    EXPECT_EQ(d.file, "/nonexistent/killswitch/policy.yaml");
    EXPECT_EQ(d.line, 0);
    EXPECT_EQ(d.column, 0);
    EXPECT_EQ(d.message, "cannot read policy file: No such file or directory");
    EXPECT_EQ(d.str(),
              "/nonexistent/killswitch/policy.yaml: error: cannot read policy file: No such file "
              "or directory");
}

TEST(PolicyFile, DirectoryIsNotAPolicy) {
    TempDir dir;
    auto r = load_policy_file(dir.path().string());
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0].message, "cannot read policy file: Is a directory");
}

TEST(PolicyFile, LoadsAndNamesTheFile) {
    TempDir dir;
    auto path = dir.write("policy.yaml", "mode: monitor\nguard:\n  uids: [1001]\n");
    auto r = load_policy_file(path);
    ASSERT_TRUE(r.policy.has_value());
    EXPECT_EQ(r.policy->source, path);
    EXPECT_EQ(r.policy->mode, Mode::Monitor);
    EXPECT_EQ(r.policy->guard_uids, (std::vector<uint32_t>{1001}));
    EXPECT_EQ(r.policy->agent_names, default_policy().agent_names);
}

TEST(PolicyFile, ErrorsNameThePathAsGiven) {
    TempDir dir;
    auto path = dir.write("bad.yaml", "version: 1\nmode: enforce\nagents:\n  namez: [claude]\n");
    auto r = load_policy_file(path);
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0].str(), path +
                                     ":4:3: error: unknown key 'namez' in agents (expected one "
                                     "of: names, hold_at_exec)");
}

// ---- `killswitch policy` ----

struct CliRun {
    int code = -1;
    std::string out;
    std::string err;
};

CliRun run_cli(std::vector<std::string> args) {
    CLI::App app{"test", "killswitch"};
    cli::Registry reg;
    cli::add_policy_command(app, reg);
    args.insert(args.begin(), "killswitch");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    CliRun run;
    try {
        app.parse(static_cast<int>(argv.size()), argv.data());
    } catch (const CLI::ParseError& e) {
        run.code = 100 + e.get_exit_code();
        return run;
    }
    if (!reg.action) return run;
    ::testing::internal::CaptureStdout();
    ::testing::internal::CaptureStderr();
    run.code = reg.action();
    std::fflush(stdout);
    std::fflush(stderr);
    run.out = ::testing::internal::GetCapturedStdout();
    run.err = ::testing::internal::GetCapturedStderr();
    return run;
}

TEST(PolicyCommand, CheckGoodFile) {
    TempDir dir;
    auto path = dir.write("good.yaml", "mode: monitor\n");
    auto r = run_cli({"policy", "check", path});
    EXPECT_EQ(r.code, 0);
    EXPECT_EQ(r.out, path + ": ok\n");
    EXPECT_EQ(r.err, "");
}

TEST(PolicyCommand, CheckFileWithWarningsOnly) {
    TempDir dir;
    auto path = dir.write("warn.yaml", "agents:\n  names: [a, a]\n");
    auto r = run_cli({"policy", "check", path});
    EXPECT_EQ(r.code, 0);
    EXPECT_EQ(r.out, path + ": ok\n");
    EXPECT_EQ(
        r.err,
        path + ":2:14: warning: agent name 'a' is listed twice (first at line 2, column 11)\n");
}

TEST(PolicyCommand, CheckBadFile) {
    TempDir dir;
    auto path = dir.write("bad.yaml", "mode: x\nagents:\n  names: [a, a]\nfoo: 1\n");
    auto r = run_cli({"policy", "check", path});
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err,
              path + ":1:7: error: mode must be 'enforce' or 'monitor', got 'x'\n" + path +
                  ":3:14: warning: agent name 'a' is listed twice (first at line 3, column 11)\n" +
                  path +
                  ":4:1: error: unknown key 'foo' (expected one of: version, mode, agents, guard, "
                  "protect, processes, sessions, audit, databases, outputs)\n");
}

TEST(PolicyCommand, CheckMissingFile) {
    auto r = run_cli({"policy", "check", "/nonexistent/p.yaml"});
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err,
              "/nonexistent/p.yaml: error: cannot read policy file: No such file or directory\n");
}

TEST(PolicyCommand, CheckSeveralFiles) {
    TempDir dir;
    auto good = dir.write("good.yaml", "mode: enforce\n");
    auto bad = dir.write("bad.yaml", "mode: x\n");
    auto r = run_cli({"policy", "check", good, bad});
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.out, good + ": ok\n");
    EXPECT_EQ(r.err, bad + ":1:7: error: mode must be 'enforce' or 'monitor', got 'x'\n");
}

TEST(PolicyCommand, CheckNeedsAFile) {
    auto r = run_cli({"policy", "check"});
    EXPECT_GT(r.code, 100);  // a CLI11 parse error
}

TEST(PolicyCommand, ShowDefaultPrintsTheBuiltInPolicy) {
    auto r = run_cli({"policy", "show-default"});
    EXPECT_EQ(r.code, 0);
    EXPECT_EQ(r.out, default_policy_text());
    // What it prints is a valid policy file.
    TempDir dir;
    auto path = dir.write("default.yaml", r.out);
    auto loaded = load_policy_file(path);
    ASSERT_TRUE(loaded.policy.has_value());
    EXPECT_TRUE(loaded.warnings.empty());
    Policy expected = default_policy();
    expected.source = path;
    EXPECT_EQ(*loaded.policy, expected);
}

}  // namespace
}  // namespace ks::policy

namespace ks::policy {
namespace {

TEST(PolicyDatabasesEffect, DefaultsAndSettingsAndTheirErrors) {
    Policy d = default_policy();
    EXPECT_TRUE(d.db_effect);
    EXPECT_EQ(d.db_effect_percent, 90);
    EXPECT_EQ(d.db_effect_min_rows, 2);
    EXPECT_EQ(d.db_effect_max_rows, 100000);
    Policy p = parse_ok(
        "version: 1\ndatabases:\n  effect:\n    check: false\n    percent: 50\n"
        "    min_rows: 10\n    max_rows: 0\n");
    EXPECT_FALSE(p.db_effect);
    EXPECT_EQ(p.db_effect_percent, 50);
    EXPECT_EQ(p.db_effect_min_rows, 10);
    EXPECT_EQ(p.db_effect_max_rows, 0);
    EXPECT_NE(one_error("version: 1\ndatabases:\n  effect:\n    percent: 0\n").find("4:"),
              std::string::npos);
    EXPECT_NE(one_error("version: 1\ndatabases:\n  effect:\n    percent: 101\n")
                  .find("databases.effect.percent"),
              std::string::npos);
    EXPECT_NE(one_error("version: 1\ndatabases:\n  effect:\n    fraction: 0.5\n").find("fraction"),
              std::string::npos);
}

TEST(PolicyDatabasesDiscover, OnByDefaultOffBySettingAndItsErrors) {
    EXPECT_TRUE(default_policy().db_discover);
    EXPECT_FALSE(parse_ok("version: 1\ndatabases:\n  discover: false\n").db_discover);
    auto err = one_error("version: 1\ndatabases:\n  discover: sometimes\n");
    EXPECT_NE(err.find("3:"), std::string::npos) << err;
    EXPECT_NE(err.find("databases.discover"), std::string::npos) << err;
    // The same for terminal multiplexers' servers as deputies.
    EXPECT_TRUE(default_policy().deputy_multiplexers);
    EXPECT_FALSE(parse_ok("version: 1\nprocesses:\n  multiplexers: false\n").deputy_multiplexers);
    EXPECT_NE(
        one_error("version: 1\nprocesses:\n  multiplexers: 2\n").find("processes.multiplexers"),
        std::string::npos);
}

}  // namespace
}  // namespace ks::policy
