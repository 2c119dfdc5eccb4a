// The record outputs of a running daemon against real receivers on
// loopback: a private rsyslogd (Debian's rsyslog, its ossl TLS driver)
// taking RFC 5424 over TCP, TLS and UDP; an HTTP server (cpp-httplib)
// taking the webhook, whose hold and frozen-session notifications carry
// the commands a person runs (the test runs them); the OCSF file, every
// event checked against what OCSF 1.8.0 requires of its class. And
// receivers that are down: counted, retried, never holding enforcement up.
#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <fstream>
#include <future>
#include <mutex>
#include <set>
#include <sstream>

#include "../ocsf_schema_1_8.h"
#include "common/sysfs.h"
#include "decision/decision.h"
#include "harness.h"

namespace ks::test {
namespace {

using nlohmann::json;

bool exists(const std::string& p) { return ::access(p.c_str(), F_OK) == 0; }

int free_port(int type) {
    int fd = ::socket(AF_INET, type, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    socklen_t len = sizeof(a);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

// Whether 127.0.0.1:port is bound in /proc/net/tcp (listening) or udp.
bool bound(int port, bool udp) {
    auto text = read_file(udp ? "/proc/net/udp" : "/proc/net/tcp");
    if (!text) return false;
    char want[32];
    std::snprintf(want, sizeof(want), "0100007F:%04X", port);
    std::istringstream in(*text);
    for (std::string line; std::getline(in, line);) {
        std::istringstream f(line);
        std::string sl, local, remote, st;
        f >> sl >> local >> remote >> st;
        if (local == want && (udp || st == "0A")) return true;
    }
    return false;
}

// A private rsyslogd on 127.0.0.1: RFC 5424 over TCP (octet counting), TLS
// (a CA and server certificate of its own) and UDP, each message written as
// one JSON line with the fields rsyslog parsed.
class Rsyslog {
  public:
    explicit Rsyslog(const std::string& dir) : dir_(dir) {
        tcp = free_port(SOCK_STREAM);
        tls = free_port(SOCK_STREAM);
        while (tls == tcp) tls = free_port(SOCK_STREAM);
        udp = free_port(SOCK_DGRAM);
        ::mkdir((dir_ + "/work").c_str(), 0700);
        std::string tls_dir = dir_ + "/tls";
        ::mkdir(tls_dir.c_str(), 0700);
        auto ssl = [&](const std::string& cmd) {
            auto r = run_command({"/bin/sh", "-c", "cd " + tls_dir + " && " + cmd});
            if (r.status != 0) error += cmd + ": " + r.err;
        };
        ssl("openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -keyout ca.key -out ca.pem "
            "-subj /CN=killswitch-test-ca 2>/dev/null");
        ssl("openssl req -newkey rsa:2048 -nodes -sha256 -keyout server.key -out server.csr "
            "-subj /CN=127.0.0.1 2>/dev/null");
        ssl("printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > san.ext && openssl x509 -req "
            "-sha256 -days 2 -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
            "-extfile san.ext -out server.pem 2>/dev/null");
        ca = tls_dir + "/ca.pem";
        out = dir_ + "/out.jsonl";
        std::ofstream(dir_ + "/rsyslog.conf")
            << "global(workDirectory=\"" << dir_ << "/work\" maxMessageSize=\"64k\" "
            << "net.enableDNS=\"off\" processInternalMessages=\"on\" "
            << "parser.escapeControlCharactersOnReceive=\"off\")\n"
            << "module(load=\"imtcp\")\nmodule(load=\"imudp\")\n"
            << "template(name=\"jsonl\" type=\"list\" option.jsonf=\"on\") {\n"
            << "  property(outname=\"facility\" name=\"syslogfacility\" format=\"jsonf\" "
               "datatype=\"number\")\n"
            << "  property(outname=\"severity\" name=\"syslogseverity\" format=\"jsonf\" "
               "datatype=\"number\")\n"
            << "  property(outname=\"version\" name=\"protocol-version\" format=\"jsonf\")\n"
            << "  property(outname=\"timestamp\" name=\"timereported\" format=\"jsonf\" "
               "dateFormat=\"rfc3339\")\n"
            << "  property(outname=\"hostname\" name=\"hostname\" format=\"jsonf\")\n"
            << "  property(outname=\"appname\" name=\"app-name\" format=\"jsonf\")\n"
            << "  property(outname=\"procid\" name=\"procid\" format=\"jsonf\")\n"
            << "  property(outname=\"msgid\" name=\"msgid\" format=\"jsonf\")\n"
            << "  property(outname=\"sd\" name=\"structured-data\" format=\"jsonf\")\n"
            << "  property(outname=\"msg\" name=\"msg\" format=\"jsonf\")\n"
            << "  property(outname=\"input\" name=\"inputname\" format=\"jsonf\")\n"
            << "}\n"
            << "ruleset(name=\"recv\") {\n  action(type=\"omfile\" file=\"" << out
            << "\" template=\"jsonl\")\n  stop\n}\n"
            << "input(type=\"imtcp\" name=\"tcp\" address=\"127.0.0.1\" port=\"" << tcp
            << "\" ruleset=\"recv\")\n"
            << "input(type=\"imtcp\" name=\"tls\" address=\"127.0.0.1\" port=\"" << tls
            << "\" ruleset=\"recv\" streamDriver.name=\"ossl\" streamDriver.mode=\"1\" "
            << "streamDriver.authMode=\"anon\" streamDriver.CAFile=\"" << ca
            << "\" streamDriver.CertFile=\"" << tls_dir << "/server.pem\" streamDriver.KeyFile=\""
            << tls_dir << "/server.key\")\n"
            << "input(type=\"imudp\" name=\"udp\" address=\"127.0.0.1\" port=\"" << udp
            << "\" ruleset=\"recv\")\n"
            << "*.* action(type=\"omfile\" file=\"" << dir_ << "/internal.log\")\n";
        if (!error.empty()) return;
        pid_ = ::fork();
        if (pid_ == 0) {
            std::string conf = dir_ + "/rsyslog.conf", pidf = dir_ + "/rsyslogd.pid";
            int log = ::open((dir_ + "/rsyslogd.stderr").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
            ::dup2(log, 1);
            ::dup2(log, 2);
            ::execl("/usr/sbin/rsyslogd", "rsyslogd", "-n", "-f", conf.c_str(), "-i", pidf.c_str(),
                    nullptr);
            ::_exit(127);
        }
        if (!wait_until([&] { return bound(tcp, false) && bound(tls, false) && bound(udp, true); }))
        {
            auto log = read_file(dir_ + "/internal.log");
            error = "rsyslogd did not listen: " + (log ? *log : std::string("(no log)"));
        }
    }
    ~Rsyslog() {
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    std::vector<json> received() const { return read_jsonl(out); }

    int tcp = 0, tls = 0, udp = 0;
    std::string ca, out, error;

  private:
    std::string dir_;
    pid_t pid_ = -1;
};

// An HTTP server on loopback that keeps every JSON body POSTed to /hook.
class WebhookReceiver {
  public:
    WebhookReceiver() {
        server_.Post("/hook", [this](const httplib::Request& req, httplib::Response& res) {
            std::lock_guard lk(mu_);
            bodies_.push_back(json::parse(req.body, nullptr, false));
            content_types_.insert(req.get_header_value("Content-Type"));
            res.status = 204;
        });
        port = server_.bind_to_any_port("127.0.0.1");
        thread_ = std::thread([this] { server_.listen_after_bind(); });
    }
    ~WebhookReceiver() {
        server_.stop();
        thread_.join();
    }
    std::vector<json> bodies() const {
        std::lock_guard lk(mu_);
        return bodies_;
    }
    std::set<std::string> content_types() const {
        std::lock_guard lk(mu_);
        return content_types_;
    }
    // The first body of this kind ("hold", "frozen", "decision") whose
    // record pred accepts; null when none came within the timeout.
    json wait_for(const std::string& kind, const std::function<bool(const json&)>& pred) const {
        json found;
        wait_until(
            [&] {
                for (const auto& b : bodies())
                    if (b.value("kind", "") == kind && pred(b["record"])) {
                        found = b;
                        return true;
                    }
                return false;
            },
            std::chrono::seconds(15));
        return found;
    }
    int port = 0;

  private:
    httplib::Server server_;
    std::thread thread_;
    mutable std::mutex mu_;
    std::vector<json> bodies_;
    std::set<std::string> content_types_;
};

// "killswitch approve 12" as this test's daemon runs it.
CommandResult run_given(const Daemon& d, const std::string& command) {
    std::istringstream in(command);
    std::vector<std::string> words;
    for (std::string w; in >> w;) words.push_back(w);
    if (words.empty() || words[0] != "killswitch") return {-1, "", "not a killswitch command: " + command};
    return d.cli(std::vector<std::string>(words.begin() + 1, words.end()));
}

json status_of(const Daemon& d) { return json::parse(d.cli({"status", "--json"}).out, nullptr, false); }

json output_named(const json& status, const std::string& name, const std::string& target_prefix) {
    for (const auto& o : status.value("outputs", json::array()))
        if (o.value("name", "") == name && o.value("target", "").rfind(target_prefix, 0) == 0) return o;
    return {};
}

TEST(Outputs, SyslogWebhookAndOcsfReceiveTheDecisionsAndTheWebhookSaysHowToDecide) {
    KS_REQUIRE_ROOT();
    if (::access("/usr/sbin/rsyslogd", X_OK) != 0)
        GTEST_SKIP() << "rsyslogd is missing (scripts/deps.sh --test installs rsyslog)";
    TempDir dir;
    Rsyslog rsyslog(dir.path());
    ASSERT_EQ(rsyslog.error, "");
    WebhookReceiver hook;
    ASSERT_GT(hook.port, 0);

    std::string data = dir / "data", held = dir / "held";
    ::mkdir(data.c_str(), 0755);
    ::mkdir(held.c_str(), 0755);
    std::ofstream(data + "/rows") << "1\n";
    std::ofstream(held + "/rows") << "1\n";
    std::string ocsf = dir / "ocsf/events.jsonl";
    std::string policy = dir / "policy.yaml";
    // Some outputs in the policy, some on the command line.
    std::ofstream(policy) << "protect:\n  paths:\n    - {path: " << data << ", session: freeze}\n"
                          << "    - {path: " << held << ", action: hold}\n"
                          << "  session: none\n  hold_timeout: 120\n"
                          << "outputs:\n  - syslog=tcp://127.0.0.1:" << rsyslog.tcp << "\n"
                          << "  - ocsf=" << ocsf << "\n";
    Daemon d({.policy_file = policy,
              .extra_args = {"--output",
                             "syslog=tls://127.0.0.1:" + std::to_string(rsyslog.tls) + "?ca=" + rsyslog.ca,
                             "--output", "syslog=udp://127.0.0.1:" + std::to_string(rsyslog.udp),
                             "--output", "webhook=http://127.0.0.1:" + std::to_string(hook.port) + "/hook"}});
    ASSERT_TRUE(d.ready()) << d.stderr_text();

    // A refused rm freezes its session: the webhook says so, with the
    // commands; the test thaws it with the first of them.
    auto rm = std::async(std::launch::async, [&] {
        return d.cli({"run", "--session", "wipe", "--", "rm", "-f", data + "/rows"});
    });
    json frozen = hook.wait_for("frozen", [](const json& r) { return r.value("session", "") == "wipe"; });
    ASSERT_FALSE(frozen.is_null()) << "no frozen notification; got " << json(hook.bodies()).dump();
    ASSERT_EQ(frozen["commands"], json({"killswitch thaw --session wipe", "killswitch kill --session wipe"}));
    EXPECT_NE(frozen["text"].get<std::string>().find("`killswitch thaw --session wipe`"), std::string::npos);
    EXPECT_EQ(frozen["record"]["verdict"], "block");
    EXPECT_TRUE(exists(data + "/rows"));
    auto thaw = run_given(d, frozen["commands"][0]);
    EXPECT_EQ(thaw.status, 0) << thaw.err;
    auto rm_result = rm.get();
    EXPECT_EQ(rm_result.status, kRefusedExitStatus) << rm_result.err;
    EXPECT_TRUE(exists(data + "/rows"));

    // A held unlink: the webhook gives approve and deny; the test denies.
    auto py = std::async(std::launch::async, [&] {
        return d.cli({"run", "--session", "held", "--", "python3", "-c",
                      "import os; os.unlink('" + held + "/rows')"});
    });
    json hold = hook.wait_for("hold", [](const json& r) { return r.value("session", "") == "held"; });
    ASSERT_FALSE(hold.is_null()) << "no hold notification; got " << json(hook.bodies()).dump();
    std::string id = hold["record"]["hold_id"].dump();
    ASSERT_EQ(hold["commands"], json({"killswitch approve " + id, "killswitch deny " + id}));
    auto deny = run_given(d, hold["commands"][1]);
    EXPECT_EQ(deny.status, 0) << deny.err;
    EXPECT_EQ(py.get().status, 128 + SIGKILL);
    EXPECT_TRUE(exists(held + "/rows"));
    EXPECT_EQ(hook.content_types(), std::set<std::string>{"application/json"});

    // Each syslog transport carried the refusal: parsed as RFC 5424 by
    // rsyslog, its body the audit record itself.
    json block = first_record(d, [](const json& r) {
        return r.value("event", "") == "file" && r.value("session", "") == "wipe";
    });
    ASSERT_FALSE(block.is_null());
    std::string seq = block["seq"].dump();
    for (const char* input : {"tcp", "tls", "udp"}) {
        json got;
        ASSERT_TRUE(wait_until([&] {
            for (const auto& m : rsyslog.received())
                if (m.value("input", "") == input && m.value("msgid", "") == "file" &&
                    m.value("sd", "").find("sequenceId=\"" + seq + "\"") != std::string::npos)
                    got = m;
            return !got.is_null();
        })) << input << ": no message for seq " << seq;
        EXPECT_EQ(got["version"], "1") << input << ": not parsed as RFC 5424: " << got.dump();
        EXPECT_EQ(got["facility"], 10);  // authpriv
        EXPECT_EQ(got["severity"], 4);   // warning
        EXPECT_EQ(got["appname"], "killswitch");
        EXPECT_EQ(got["procid"], std::to_string(d.pid()));
        EXPECT_NE(got["sd"].get<std::string>().find("[origin software=\"killswitch\""), std::string::npos);
        EXPECT_EQ(json::parse(got["msg"].get<std::string>(), nullptr, false), block) << input;
    }

    // Every record reached every syslog transport, the exec records too.
    json st = status_of(d);
    for (const char* prefix : {"tcp://", "tls://", "udp://"}) {
        json o = output_named(st, "syslog", prefix);
        ASSERT_FALSE(o.is_null()) << st["outputs"].dump();
        EXPECT_GT(o.value("delivered", 0), 5) << o.dump();
        EXPECT_EQ(o.value("dropped", -1), 0) << o.dump();
        // One connection for all of them (TLS 1.3 session tickets do not
        // make it look closed), one socket for UDP.
        EXPECT_EQ(o.value("connects", 0), 1) << o.dump();
    }
    EXPECT_EQ(output_named(st, "webhook", "http://").value("dropped", -1), 0);
    ASSERT_EQ(d.stop(), 0);

    // The OCSF file: every event has what its class requires; the refusal
    // is a File System Activity (Delete) and a Detection Finding; the hold a
    // finding Delayed; the same events `events --format ocsf` renders.
    auto events = read_jsonl(ocsf);
    ASSERT_FALSE(events.empty());
    ocsf::Checker checker;
    std::set<std::string> classes, uids;
    json delete_ev, finding_ev, hold_finding;
    for (const auto& ev : events) {
        auto errs = checker.check(ev);
        EXPECT_TRUE(errs.empty()) << errs[0] << "\n" << ev.dump();
        classes.insert(ev["class_name"].get<std::string>());
        uids.insert(ev["metadata"]["uid"].get<std::string>());
        const json& rec = ev["unmapped"]["killswitch"];
        if (rec["seq"] == block["seq"] && ev["class_uid"] == 1001) delete_ev = ev;
        if (rec["seq"] == block["seq"] && ev["class_uid"] == 2004) finding_ev = ev;
        if (rec.value("verdict", "") == "hold" && ev["class_uid"] == 2004) hold_finding = ev;
    }
    EXPECT_EQ(classes, (std::set<std::string>{"Process Activity", "File System Activity", "Detection Finding"}));
    ASSERT_FALSE(delete_ev.is_null());
    EXPECT_EQ(delete_ev["activity_name"], "Delete");
    EXPECT_EQ(delete_ev["file"]["path"], data + "/rows");
    EXPECT_EQ(delete_ev["actor"]["session"]["uid"], "wipe");
    EXPECT_EQ(delete_ev["unmapped"]["ai_agent"]["name"], "wipe");
    ASSERT_FALSE(finding_ev.is_null());
    EXPECT_EQ(finding_ev["disposition"], "Blocked");
    ASSERT_FALSE(hold_finding.is_null());
    EXPECT_EQ(hold_finding["disposition"], "Delayed");
    auto cli = run_command({binary(), "events", "--format", "ocsf", "--audit-log", d.audit_log()});
    ASSERT_EQ(cli.status, 0) << cli.err;
    std::set<std::string> cli_uids;
    std::istringstream lines(cli.out);
    for (std::string line; std::getline(lines, line);) {
        json ev = json::parse(line, nullptr, false);
        ASSERT_FALSE(ev.is_discarded()) << line;
        EXPECT_TRUE(checker.check(ev).empty()) << line;
        cli_uids.insert(ev["metadata"]["uid"].get<std::string>());
    }
    EXPECT_EQ(cli_uids, uids);
}

TEST(Outputs, ReceiversThatAreDownAreCountedAndHoldNothingUp) {
    KS_REQUIRE_ROOT();
    TempDir dir;
    std::string data = dir / "data";
    ::mkdir(data.c_str(), 0755);
    std::ofstream(data + "/rows") << "1\n";
    // Nothing listens on these; the third listens and never accepts, so a
    // TLS handshake there waits for its timeout.
    int closed_tcp = free_port(SOCK_STREAM), closed_http = free_port(SOCK_STREAM);
    int stuck = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(stuck, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    ASSERT_EQ(::listen(stuck, 16), 0);
    socklen_t len = sizeof(a);
    ::getsockname(stuck, reinterpret_cast<sockaddr*>(&a), &len);
    std::string policy = dir / "policy.yaml";
    std::ofstream(policy) << "protect:\n  paths: [" << data << "]\n  session: none\n";
    Daemon d({.policy_file = policy,
              .extra_args = {"--output", "syslog=tcp://127.0.0.1:" + std::to_string(closed_tcp),
                             "--output", "syslog=tls://127.0.0.1:" + std::to_string(ntohs(a.sin_port)),
                             "--output", "webhook=http://127.0.0.1:" + std::to_string(closed_http) + "/x"}});
    ASSERT_TRUE(d.ready()) << d.stderr_text();

    // Enforcement goes on as if nothing were configured.
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 3; ++i) {
        auto rm = d.cli({"run", "--session", "s" + std::to_string(i), "--", "rm", "-f", data + "/rows"});
        EXPECT_EQ(rm.status, kRefusedExitStatus) << rm.err;
    }
    auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_TRUE(exists(data + "/rows"));
    EXPECT_LT(took, std::chrono::seconds(5)) << "three refused runs took "
                                            << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                                            << " ms with the receivers down";

    // What failed is counted and said.
    json tcp, http;
    ASSERT_TRUE(wait_until(
        [&] {
            json st = status_of(d);
            tcp = output_named(st, "syslog", "tcp://");
            http = output_named(st, "webhook", "http://");
            return tcp.value("retries", 0) + tcp.value("dropped", 0) > 0 &&
                   http.value("retries", 0) + http.value("dropped", 0) > 0;
        },
        std::chrono::seconds(15)))
        << tcp.dump() << http.dump();
    EXPECT_NE(tcp.value("last_error", "").find("Connection refused"), std::string::npos) << tcp.dump();
    EXPECT_NE(http.value("last_error", "").find("POST http://127.0.0.1:"), std::string::npos) << http.dump();
    EXPECT_FALSE(tcp.value("connected", true));

    // Stopping does not wait on them longer than its deadline, and says
    // what was not delivered.
    auto s0 = std::chrono::steady_clock::now();
    EXPECT_EQ(d.stop(), 0);
    EXPECT_LT(std::chrono::steady_clock::now() - s0, std::chrono::seconds(12));
    EXPECT_NE(d.stderr_text().find("records not delivered"), std::string::npos) << d.stderr_text();
    ::close(stuck);
}

}  // namespace
}  // namespace ks::test
