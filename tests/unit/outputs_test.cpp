// The record outputs' own logic: how targets are read, what a syslog
// message, a webhook body and a journal entry hold, and the bounded queue
// that keeps a slow or dead receiver from ever holding the daemon up.
// (Each output against a real receiver: tests/kernel/outputs_test.cpp.)
#include <gtest/gtest.h>

#include <atomic>
#include <regex>
#include <thread>

#include "outputs/journald.h"
#include "outputs/outputs.h"
#include "outputs/sink.h"
#include "outputs/syslog.h"
#include "outputs/webhook.h"

namespace ks::outputs {
namespace {

using nlohmann::json;

TEST(Outputs, EachKindIsReadAndABadTargetSaysHowItIsSpelled) {
    EXPECT_EQ(parse_output("syslog=tcp://127.0.0.1:514")->kind, Kind::Syslog);
    EXPECT_EQ(parse_output("webhook=https://hooks.example.com/ks")->kind, Kind::Webhook);
    EXPECT_EQ(parse_output("ocsf=/var/log/killswitch/ocsf.jsonl")->kind, Kind::Ocsf);
    EXPECT_EQ(parse_output("journald")->kind, Kind::Journald);

    auto no_scheme = parse_output("syslog=127.0.0.1:514");
    ASSERT_FALSE(no_scheme);
    EXPECT_NE(no_scheme.error().str().find("udp://HOST:PORT, tcp://HOST:PORT or tls://HOST:PORT"),
              std::string::npos);
    auto ftp = parse_output("webhook=ftp://x/y");
    ASSERT_FALSE(ftp);
    EXPECT_NE(ftp.error().str().find("unknown scheme 'ftp'"), std::string::npos);
    EXPECT_FALSE(parse_output("webhook=http://"));
    auto rel = parse_output("ocsf=ocsf.jsonl");
    ASSERT_FALSE(rel);
    EXPECT_NE(rel.error().str().find("ocsf needs an absolute path"), std::string::npos);
    auto pigeon = parse_output("pigeon=x");
    ASSERT_FALSE(pigeon);
    EXPECT_NE(pigeon.error().str().find("there are metrics, metrics-file, syslog, webhook, ocsf"),
              std::string::npos);
}

TEST(Outputs, SyslogTargetsNameTransportAddressTlsFilesAndFacility) {
    auto t = parse_syslog_target(
        "tls://logs.example.com:6514?ca=/etc/ks/ca.pem&cert=/etc/ks/c.pem&key=/etc/ks/k.pem"
        "&facility=local3");
    ASSERT_TRUE(t) << t.error().str();
    EXPECT_EQ(t->transport, SyslogTarget::Transport::Tls);
    EXPECT_EQ(t->host, "logs.example.com");
    EXPECT_EQ(t->port, "6514");
    EXPECT_EQ(t->ca_file, "/etc/ks/ca.pem");
    EXPECT_EQ(t->key_file, "/etc/ks/k.pem");
    EXPECT_EQ(t->facility, 19);
    auto v6 = parse_syslog_target("udp://[::1]:514");
    ASSERT_TRUE(v6);
    EXPECT_EQ(v6->host, "::1");
    EXPECT_EQ(v6->transport, SyslogTarget::Transport::Udp);
    EXPECT_EQ(v6->facility, 10);  // authpriv

    EXPECT_FALSE(parse_syslog_target("tcp://host:0"));
    EXPECT_FALSE(parse_syslog_target("tcp://host:70000"));
    EXPECT_FALSE(parse_syslog_target("tcp://:514"));
    auto ca_on_tcp = parse_syslog_target("tcp://h:514?ca=/x");
    ASSERT_FALSE(ca_on_tcp);
    EXPECT_NE(ca_on_tcp.error().str().find("'ca' is for tls:// only"), std::string::npos);
    EXPECT_FALSE(parse_syslog_target("tls://h:6514?cert=/c"));  // no key
    EXPECT_FALSE(parse_syslog_target("tls://h:6514?ca=relative.pem"));
    auto fac = parse_syslog_target("tcp://h:514?facility=local9");
    ASSERT_FALSE(fac);
    EXPECT_NE(fac.error().str().find("unknown facility 'local9'"), std::string::npos);
}

json block_record() {
    return json{{"ts", "2026-12-01T10:00:00.123456789Z"},
                {"seq", 7},
                {"host", "0123456789abcdef0123456789abcdef"},
                {"run", "fedcba9876543210fedcba9876543210"},
                {"event", "file"},
                {"pid", 4242},
                {"session", "fix-migrations"},
                {"op", "unlink"},
                {"path", "/var/lib/postgresql/15/main/PG_VERSION"},
                {"rule", "protect:/var/lib/postgresql"},
                {"verdict", "block"},
                {"session_action", "freeze"},
                {"frozen_timeout", {{"seconds", 900}, {"then", "kill-session"}}},
                {"note", "quote \" and ] and \\"}};
}

TEST(Outputs, ARecordIsOneRfc5424MessageWithItsJsonAsTheBody) {
    json r = block_record();
    std::string m = format_rfc5424(r, 10, "db1.example.com", 99);
    // <authpriv*8 + warning> VERSION TIMESTAMP(µs) HOST APP PROCID MSGID SD MSG
    std::regex shape(
        R"(^<84>1 2026-12-01T10:00:00\.123456Z db1\.example\.com killswitch 99 file )"
        R"(\[origin software="killswitch" swVersion="[^"]+"\]\[meta sequenceId="7"\] \{.*\}$)");
    EXPECT_TRUE(std::regex_match(m, shape)) << m;
    std::string body = m.substr(m.find("] {") + 2);
    EXPECT_EQ(json::parse(body), r);

    EXPECT_EQ(syslog_severity(json{{"event", "tamper"}}), 2);
    EXPECT_EQ(syslog_severity(json{{"event", "lost"}}), 3);
    EXPECT_EQ(syslog_severity(json{{"event", "db"}, {"verdict", "refused"}}), 4);
    EXPECT_EQ(syslog_severity(json{{"event", "file"}, {"verdict", "hold"}}), 5);
    EXPECT_EQ(syslog_severity(json{{"event", "exec"}}), 6);
    EXPECT_EQ(syslog_severity(json{{"event", "policy_reload"}, {"result", "refused"}}), 4);
    // A host name with a space cannot be a header field; seq wraps where
    // RFC 5424's sequenceId does.
    json big = json{{"event", "exec"}, {"seq", 2147483648ull}};
    std::string m2 = format_rfc5424(big, 16, "bad host", 1);
    EXPECT_EQ(m2.rfind("<134>1 - badhost killswitch 1 exec ", 0), 0u) << m2;
    EXPECT_NE(m2.find("[meta sequenceId=\"1\"]"), std::string::npos) << m2;
}

TEST(Outputs, TheWebhookSaysWhatAPersonRunsForAHoldAndAFrozenSession) {
    json hold = {{"event", "file"},     {"pid", 77},        {"session", "s1"},
                 {"op", "unlink"},      {"path", "/srv/db/x"}, {"rule", "protect:/srv/db"},
                 {"verdict", "hold"},   {"hold_id", 12},    {"hold_timeout_s", 300},
                 {"host", "abc"}};
    auto h = webhook_payload(hold, "db1");
    ASSERT_TRUE(h);
    EXPECT_EQ((*h)["kind"], "hold");
    EXPECT_EQ((*h)["commands"], json({"killswitch approve 12", "killswitch deny 12"}));
    EXPECT_NE((*h)["text"].get<std::string>().find("`killswitch approve 12`"), std::string::npos);
    EXPECT_EQ((*h)["record"], hold);
    EXPECT_EQ((*h)["hostname"], "db1");

    auto f = webhook_payload(block_record(), "db1");
    ASSERT_TRUE(f);
    EXPECT_EQ((*f)["kind"], "frozen");
    EXPECT_EQ((*f)["commands"], json({"killswitch thaw --session fix-migrations",
                                      "killswitch kill --session fix-migrations"}));
    EXPECT_NE((*f)["text"].get<std::string>().find("in 900 s: kill-session"), std::string::npos)
        << (*f)["text"];

    json failed_freeze = block_record();
    failed_freeze["session_action_error"] = "cgroup.freeze: ENOENT";
    EXPECT_EQ((*webhook_payload(failed_freeze, "db1"))["kind"], "decision");

    EXPECT_FALSE(webhook_payload(json{{"event", "exec"}}, "h"));
    EXPECT_FALSE(webhook_payload(json{{"event", "fork"}}, "h"));
    EXPECT_FALSE(webhook_payload(json{{"event", "db"}, {"class", "harmless"}, {"verdict", "allow"}}, "h"));
    auto tamper = webhook_payload(json{{"event", "tamper"}, {"verdict", "block"}}, "h");
    ASSERT_TRUE(tamper);
    EXPECT_EQ((*tamper)["kind"], "decision");
    EXPECT_EQ((*tamper)["commands"], json::array());
}

TEST(Outputs, AJournalEntryHasEveryFieldOfTheRecordUnderItsOwnName) {
    auto fields = journal_fields(block_record());
    auto has = [&](const std::string& f) {
        return std::find(fields.begin(), fields.end(), f) != fields.end();
    };
    EXPECT_TRUE(has("PRIORITY=4"));
    EXPECT_TRUE(has("SYSLOG_IDENTIFIER=killswitch"));
    EXPECT_TRUE(has("KILLSWITCH_EVENT=file"));
    EXPECT_TRUE(has("KILLSWITCH_SESSION=fix-migrations"));
    EXPECT_TRUE(has("KILLSWITCH_PID=4242"));
    EXPECT_TRUE(has("KILLSWITCH_SESSION_ACTION=freeze"));
    EXPECT_TRUE(has("KILLSWITCH_FROZEN_TIMEOUT={\"seconds\":900,\"then\":\"kill-session\"}"));
    EXPECT_TRUE(has("KILLSWITCH_RECORD=" + block_record().dump()));
    ASSERT_FALSE(fields.empty());
    EXPECT_EQ(fields[0].rfind("MESSAGE=", 0), 0u);
    EXPECT_NE(fields[0].find("verdict=block"), std::string::npos) << fields[0];
}

// A stand-in receiver for the queue's own logic: it fails while `down`
// and can be made to stall, so that the tests see what the daemon's loop
// sees. (The outputs' real transports: tests/kernel/outputs_test.cpp.)
class TestSink final : public RecordSink {
  public:
    explicit TestSink(Limits l) : RecordSink("test", "memory", l) { start(); }
    ~TestSink() override { stop(std::chrono::milliseconds(0)); }
    std::atomic<bool> down{false};
    std::atomic<bool> stall{false};
    std::atomic<int> got{0};

  protected:
    std::optional<std::string> render(const json& r) override {
        if (r.value("event", "") == "exec") return std::nullopt;
        return r.dump();
    }
    Status deliver(const std::string&) override {
        while (stall) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        if (down) return make_error("receiver down");
        ++got;
        return {};
    }
};

TEST(Outputs, AFullQueueDropsAndCountsAndOfferingNeverWaitsForTheReceiver) {
    TestSink s({.queue = 8, .attempts = 0, .backoff_first = std::chrono::milliseconds(5),
                .backoff_max = std::chrono::milliseconds(20)});
    s.stall = true;
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 100; ++i) s.offer(json{{"event", "file"}, {"seq", i}});
    s.offer(json{{"event", "exec"}});  // not taken, not counted
    auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_LT(took, std::chrono::milliseconds(100));
    SinkStats st = s.stats();
    // 8 queued (the one in the stalled delivery among them), the rest dropped.
    EXPECT_EQ(st.queued, 8u);
    EXPECT_EQ(st.dropped, 92u);
    EXPECT_EQ(st.dropped, st.queue_full);
    s.stall = false;
    for (int i = 0; i < 200 && s.stats().queued; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    EXPECT_EQ(s.stats().delivered, 100 - st.dropped);
    EXPECT_EQ(s.got, static_cast<int>(100 - st.dropped));
}

TEST(Outputs, AReceiverThatIsDownIsRetriedWithBackoffThenTheRecordIsCountedDropped) {
    TestSink s({.queue = 100, .attempts = 3, .backoff_first = std::chrono::milliseconds(5),
                .backoff_max = std::chrono::milliseconds(10)});
    s.down = true;
    s.offer(json{{"event", "file"}});
    for (int i = 0; i < 400 && s.stats().dropped == 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    SinkStats st = s.stats();
    EXPECT_EQ(st.dropped, 1u);
    EXPECT_EQ(st.retries, 2u);  // three attempts in all
    EXPECT_EQ(st.last_error, "receiver down");
    EXPECT_FALSE(st.connected);
    // Back up: the next record goes through.
    s.down = false;
    s.offer(json{{"event", "file"}});
    for (int i = 0; i < 400 && s.stats().delivered == 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    EXPECT_EQ(s.stats().delivered, 1u);
    EXPECT_TRUE(s.stats().connected);
}

TEST(Outputs, StoppingWithTheReceiverDownTakesNoLongerThanTheDeadline) {
    TestSink s({.queue = 100, .attempts = 0, .backoff_first = std::chrono::milliseconds(50),
                .backoff_max = std::chrono::milliseconds(1000)});
    s.down = true;
    for (int i = 0; i < 10; ++i) s.offer(json{{"event", "file"}});
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto t0 = std::chrono::steady_clock::now();
    s.stop(std::chrono::milliseconds(300));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1000));
    EXPECT_EQ(s.stats().dropped, 10u);
    EXPECT_EQ(s.stats().queued, 0u);
}

}  // namespace
}  // namespace ks::outputs
