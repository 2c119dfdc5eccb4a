// The daemon under a service manager (systemd's notify protocol, read here
// from a datagram socket of the test's own, as systemd reads it): READY=1
// only once it enforces, the watchdog pinged, RELOADING=1/READY=1 around a
// reload of the policy and its drop-in files, STOPPING=1; and the records a
// fleet needs: the host, the run, a seq without gaps, the policy's SHA-256.
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <regex>
#include <thread>

#include "common/digest.h"
#include "common/sysfs.h"
#include "common/identity.h"
#include "decision/decision.h"
#include "harness.h"

namespace ks::test {
namespace {

using nlohmann::json;

// NOTIFY_SOCKET's other end: keeps every message, and what `killswitch
// status` answered at the moment READY=1 came.
class NotifyReceiver {
  public:
    NotifyReceiver(std::string path, std::string runtime_dir_probe)
        : path_(std::move(path)), probe_dir_(std::move(runtime_dir_probe)) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::snprintf(a.sun_path, sizeof(a.sun_path), "%s", path_.c_str());
        bound_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
        timeval tv{0, 100000};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        thread_ = std::thread([this] { loop(); });
    }
    ~NotifyReceiver() {
        stop_ = true;
        thread_.join();
        ::close(fd_);
    }
    [[nodiscard]] bool bound() const { return bound_; }
    std::vector<std::string> messages() {
        std::lock_guard lk(mu_);
        return messages_;
    }
    // Index of the first message from `from` on that contains `what`; -1.
    int find(const std::string& what, size_t from = 0) {
        auto m = messages();
        for (size_t i = from; i < m.size(); ++i)
            if (m[i].find(what) != std::string::npos) return static_cast<int>(i);
        return -1;
    }
    bool wait_for(const std::string& what, size_t from = 0,
                  std::chrono::milliseconds t = std::chrono::seconds(20)) {
        return wait_until([&] { return find(what, from) >= 0; }, t);
    }
    int status_at_first_ready() const { return status_at_ready_; }

  private:
    void loop() {
        char buf[4096];
        while (!stop_) {
            ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
            if (n <= 0) continue;
            std::string msg(buf, static_cast<size_t>(n));
            if (msg.find("READY=1") != std::string::npos && status_at_ready_ == -2) {
                // At once, before anything else: does the daemon answer?
                status_at_ready_ = run_command({binary(), "--runtime-dir", probe_dir_, "status"},
                                               std::chrono::seconds(5))
                                       .status;
            }
            std::lock_guard lk(mu_);
            messages_.push_back(std::move(msg));
        }
    }
    std::string path_, probe_dir_;
    int fd_ = -1;
    bool bound_ = false;
    std::atomic<bool> stop_{false};
    std::atomic<int> status_at_ready_{-2};
    std::mutex mu_;
    std::vector<std::string> messages_;
    std::thread thread_;
};

class ServiceManager : public ::testing::Test {
  protected:
    void SetUp() override {
        KS_REQUIRE_ROOT();
        for (const char* d : {"a", "b", "c", "policy.d"}) ::mkdir((dir_ / d).c_str(), 0755);
        for (const char* d : {"a", "b", "c"}) std::ofstream(dir_ / (std::string(d) + "/rows")) << d;
    }
    std::string write(const std::string& rel, const std::string& text) {
        std::ofstream(dir_ / rel) << text;
        return dir_ / rel;
    }
    static std::string sha256_of_files(const std::vector<std::string>& files) {
        std::string all;
        for (const auto& f : files)
            if (auto t = read_file(f)) all += *t;
        return sha256_hex(all);
    }
    static json status(const Daemon& d) {
        auto r = d.cli({"status", "--json"});
        return json::parse(r.out, nullptr, false);
    }
    static CommandResult guarded_rm(const Daemon& d, const std::string& session,
                                    const std::string& path) {
        return d.cli({"run", "--session", session, "--", "rm", "-f", path});
    }
    TempDir dir_;
};

TEST_F(ServiceManager, ReadyOnlyOnceEnforcingReloadsAnnouncedAndRecordsNameHostRunAndPolicy) {
    std::string main = write("policy.yaml", "version: 1\nprotect:\n  paths: [" + (dir_ / "a") +
                                                "]\n  session: none\n");
    // Only the drop-in protects b: its list adds to the main file's.
    std::string drop_b =
        write("policy.d/50-b.yaml", "protect:\n  paths: [" + (dir_ / "b") + "]\n");
    std::string run_dir = dir_ / "run";
    NotifyReceiver rx(dir_ / "notify", run_dir);
    ASSERT_TRUE(rx.bound());
    Daemon::Options o{.policy_file = main,
                      .extra_args = {"--policy-dir", dir_ / "policy.d"},
                      .env = {"NOTIFY_SOCKET=" + (dir_ / "notify"), "WATCHDOG_USEC=2000000"},
                      .runtime_dir = run_dir};
    auto d = std::make_unique<Daemon>(o);
    ASSERT_TRUE(d->ready()) << d->stderr_text();

    // READY=1 is the daemon's first message, and when it came the control
    // socket already answered.
    ASSERT_TRUE(rx.wait_for("READY=1")) << d->stderr_text();
    EXPECT_EQ(rx.find("READY=1"), 0);
    EXPECT_EQ(rx.status_at_first_ready(), 0);
    // The watchdog: pinged from the event loop, about once a second.
    ASSERT_TRUE(rx.wait_for("WATCHDOG=1"));
    size_t after = rx.messages().size();
    EXPECT_TRUE(rx.wait_for("WATCHDOG=1", after, std::chrono::seconds(3)));

    // Both files are in force: a (main) and b (drop-in) keep their rows.
    EXPECT_EQ(guarded_rm(*d, "rm-a", dir_ / "a/rows").status, kRefusedExitStatus);
    EXPECT_EQ(guarded_rm(*d, "rm-b", dir_ / "b/rows").status, kRefusedExitStatus);
    EXPECT_TRUE(read_file(dir_ / "a/rows").ok());
    EXPECT_TRUE(read_file(dir_ / "b/rows").ok());
    json st = status(*d);
    std::string sha1 = sha256_of_files({main, drop_b});
    EXPECT_EQ(st.value("policy_sha256", ""), sha1) << st.dump();
    EXPECT_EQ(st["policy_files"], json({main, drop_b}));
    // `policy check --policy-dir` tells an operator the same digest offline.
    auto check = run_command({binary(), "policy", "check", main, "--policy-dir", dir_ / "policy.d"});
    EXPECT_EQ(check.status, 0) << check.err;
    EXPECT_NE(check.out.find("sha256 " + sha1), std::string::npos) << check.out;

    // A bad drop-in: refused, named at its line, the policy in force kept,
    // and the service is told it is ready again.
    size_t before = rx.messages().size();
    std::string bad = write("policy.d/60-bad.yaml", "protect:\n  paths:\n    - not/absolute\n");
    auto r = d->cli({"policy", "reload"});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find(bad + ":3:7: error:"), std::string::npos) << r.err;
    int reloading = rx.find("RELOADING=1", before);
    EXPECT_GE(reloading, 0);
    EXPECT_TRUE(rx.wait_for("READY=1", static_cast<size_t>(std::max(reloading, 0)) + 1));
    EXPECT_EQ(status(*d).value("policy_sha256", ""), sha1);
    EXPECT_EQ(guarded_rm(*d, "rm-b-2", dir_ / "b/rows").status, kRefusedExitStatus);

    // A good one in its place: in force at once, with its digest.
    ::unlink(bad.c_str());
    std::string drop_c =
        write("policy.d/60-c.yaml", "protect:\n  paths: [" + (dir_ / "c") + "]\n");
    before = rx.messages().size();
    r = d->cli({"policy", "reload"});
    EXPECT_EQ(r.status, 0) << r.err;
    reloading = rx.find("RELOADING=1", before);
    EXPECT_GE(reloading, 0);
    EXPECT_TRUE(rx.wait_for("READY=1", static_cast<size_t>(std::max(reloading, 0)) + 1));
    std::string sha2 = sha256_of_files({main, drop_b, drop_c});
    EXPECT_EQ(status(*d).value("policy_sha256", ""), sha2);
    EXPECT_EQ(guarded_rm(*d, "rm-c", dir_ / "c/rows").status, kRefusedExitStatus);
    EXPECT_TRUE(read_file(dir_ / "c/rows").ok());

    // Stopping is announced.
    before = rx.messages().size();
    d->stop_keep_sessions();
    EXPECT_TRUE(rx.wait_for("STOPPING=1", before, std::chrono::seconds(5)));

    // The records: every one names this host and the run; seq 1, 2, 3...
    // without a gap; the start and the reloads carry the policy's digest.
    auto recs = read_jsonl(d->audit_log());
    ASSERT_FALSE(recs.empty());
    std::string host = machine_id();
    std::string run = recs[0].value("run", "");
    EXPECT_TRUE(std::regex_match(run, std::regex("[0-9a-f]{32}"))) << run;
    for (size_t i = 0; i < recs.size(); ++i) {
        EXPECT_EQ(recs[i].value("host", ""), host) << recs[i].dump();
        EXPECT_EQ(recs[i].value("run", ""), run) << recs[i].dump();
        EXPECT_EQ(recs[i].value("seq", 0u), i + 1) << recs[i].dump();
    }
    std::vector<json> reloads;
    for (const auto& rec : recs) {
        if (rec.value("event", "") == "daemon_start") {
            EXPECT_EQ(rec.value("policy_sha256", ""), sha1);
            EXPECT_EQ(rec["policy_files"], json({main, drop_b}));
        }
        if (rec.value("event", "") == "policy_reload") reloads.push_back(rec);
    }
    ASSERT_EQ(reloads.size(), 2u);
    EXPECT_EQ(reloads[0].value("result", ""), "refused");
    EXPECT_EQ(reloads[0].value("old_sha256", ""), sha1);
    EXPECT_EQ(reloads[1].value("result", ""), "accepted");
    EXPECT_EQ(reloads[1].value("old_sha256", ""), sha1);
    EXPECT_EQ(reloads[1].value("new_sha256", ""), sha2);

    // The next run of the daemon: the same host, another run, seq from 1.
    size_t old_count = recs.size();
    ASSERT_TRUE(d->restart()) << d->stderr_text();
    d->stop_keep_sessions();
    recs = read_jsonl(d->audit_log());
    ASSERT_GT(recs.size(), old_count);
    EXPECT_EQ(recs[old_count].value("host", ""), host);
    EXPECT_NE(recs[old_count].value("run", ""), run);
    EXPECT_EQ(recs[old_count].value("seq", 0u), 1u);
}

}  // namespace
}  // namespace ks::test
