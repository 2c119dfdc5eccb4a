#include "outputs/ocsf.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <ctime>
#include <filesystem>

#include "audit/audit.h"
#include "common/fd.h"
#include "common/identity.h"
#include "outputs/syslog.h"

namespace ks::outputs {

namespace {

using nlohmann::json;

std::string str(const json& r, const char* k) { return record_text(r, k); }

// "2026-12-01T10:00:00.123456789Z" -> milliseconds since the epoch.
int64_t epoch_ms(const std::string& ts) {
    struct tm tm {};
    const char* rest = ::strptime(ts.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
    if (!rest) return 0;
    int64_t ms = static_cast<int64_t>(::timegm(&tm)) * 1000;
    if (*rest == '.') {
        int64_t frac = 0, digits = 0;
        for (++rest; *rest >= '0' && *rest <= '9'; ++rest)
            if (digits < 3) frac = frac * 10 + (*rest - '0'), ++digits;
        while (digits++ < 3) frac *= 10;
        ms += frac;
    }
    return ms;
}

std::string basename_of(const std::string& path) {
    size_t slash = path.find_last_of('/');
    std::string b = slash == std::string::npos ? path : path.substr(slash + 1);
    return b.empty() ? path : b;
}

// RFC 5424 severity (syslog_severity) to OCSF severity_id.
int severity_id(const json& r) {
    switch (syslog_severity(r)) {
        case 2: return 5;  // Critical
        case 3: return 4;  // High
        case 4: return 3;  // Medium
        case 5: return 2;  // Low
        default: return 1;  // Informational
    }
}

struct Disposition {
    int disposition_id;
    const char* disposition;
    int action_id;
    const char* action;
};

// What a verdict did, as security_control's disposition and action.
std::optional<Disposition> disposition_of(const json& r) {
    std::string v = str(r, "verdict");
    bool prevented = r.value("prevented", true);
    if (v == "block" || v == "refused") return Disposition{2, "Blocked", 2, "Denied"};
    if (v == "kill" || v == "kill-session")
        return prevented ? Disposition{2, "Blocked", 2, "Denied"}
                         : Disposition{7, "Custom Action", 2, "Denied"};  // killed after the call
    if (v == "freeze") return Disposition{3, "Quarantined", 2, "Denied"};
    if (v == "hold") return Disposition{14, "Delayed", 2, "Denied"};
    if (v == "allowed") return Disposition{1, "Allowed", 1, "Allowed"};
    if (v == "allow")
        return r.contains("hold_id") ? Disposition{8, "Approved", 1, "Allowed"}
                                     : Disposition{1, "Allowed", 1, "Allowed"};
    if (v == "audit" || v.rfind("would-", 0) == 0) return Disposition{17, "Logged", 3, "Observed"};
    if (v == "deferred") return Disposition{16, "No Action", 1, "Allowed"};
    return std::nullopt;
}

// A decision worth a finding: something was (or in monitor mode would
// have been) refused, killed, frozen or held.
bool is_finding(const json& r) {
    std::string e = str(r, "event"), v = str(r, "verdict");
    if (e == "tamper" || e == "reach") return true;
    if (e != "file" && e != "db") return false;
    return v == "block" || v == "refused" || v == "kill" || v == "kill-session" || v == "freeze" ||
           v == "hold" || v.rfind("would-", 0) == 0;
}

// A destructive tool stopped at exec: what it would have done to the file.
std::pair<int, const char*> exec_activity(const std::string& tool) {
    for (const char* t : {"rm", "rmdir", "unlink", "shred", "find", "bfs", "wipefs", "blkdiscard"})
        if (tool == t) return {4, "Delete"};
    if (tool == "mv") return {5, "Rename"};
    for (const char* t : {"dd", "truncate", "cp", "rsync", "mkswap", "mke2fs"})
        if (tool == t) return {3, "Update"};
    if (tool.rfind("mkfs", 0) == 0) return {3, "Update"};
    return {99, "Other"};
}

class Builder {
  public:
    Builder(const json& r, std::string hostname) : r_(r), hostname_(std::move(hostname)) {
        uid_ = str(r, "host") + ":" + str(r, "run") + ":" + str(r, "seq");
    }

    json base(int class_uid, const char* class_name, int category_uid, const char* category_name,
              int activity_id, const char* activity_name, int severity, bool decision,
              const std::string& uid_suffix) const {
        json metadata = {{"version", kOcsfVersion},
                         {"product",
                          {{"name", "killswitch"}, {"vendor_name", "killswitch"}, {"version", KS_VERSION}}},
                         {"uid", uid_ + uid_suffix},
                         {"correlation_uid", uid_},
                         {"log_name", "audit"},
                         {"original_time", str(r_, "ts")}};
        if (r_.contains("seq") && r_["seq"].is_number_integer()) metadata["sequence"] = r_["seq"];
        json ev = {{"class_uid", class_uid},
                   {"class_name", class_name},
                   {"category_uid", category_uid},
                   {"category_name", category_name},
                   {"activity_id", activity_id},
                   {"activity_name", activity_name},
                   {"type_uid", class_uid * 100 + activity_id},
                   {"type_name", std::string(class_name) + ": " + activity_name},
                   {"severity_id", severity},
                   {"time", epoch_ms(str(r_, "ts"))},
                   {"metadata", metadata},
                   {"message", format_audit_human(r_)},
                   {"unmapped", unmapped()}};
        // What was decided, with the profile that defines it.
        if (auto d = decision ? disposition_of(r_) : std::nullopt) {
            ev["disposition_id"] = d->disposition_id;
            ev["disposition"] = d->disposition;
            ev["action_id"] = d->action_id;
            ev["action"] = d->action;
            if (str(r_, "verdict") == "kill" && !r_.value("prevented", true))
                ev["disposition"] = "Custom Action: killed as the call returned";
            ev["metadata"]["profiles"] = json::array({"security_control"});
        }
        return ev;
    }

    // The record whole, and the agent: OCSF 1.8.0 has no ai_agent object
    // (later versions do), so it goes where 1.8.0 puts what it does not
    // define, in the shape the later object has.
    json unmapped() const {
        json u = {{"killswitch", r_}};
        std::string session = str(r_, "session");
        if (!session.empty()) {
            json agent = {{"name", session}, {"uid", session}};
            if (r_.contains("session_id")) agent["instance_uid"] = str(r_, "session_id");
            u["ai_agent"] = agent;
        }
        return u;
    }

    json device() const {
        json d = {{"type_id", 0}, {"hostname", hostname_}};
        if (!str(r_, "host").empty()) d["uid"] = str(r_, "host");
        return d;
    }

    // The subject process of the record.
    json process() const {
        json p = {{"pid", r_.value("pid", 0)}};
        if (!str(r_, "comm").empty()) p["name"] = str(r_, "comm");
        std::string exe = str(r_, "exe");
        if (!exe.empty()) p["file"] = {{"name", basename_of(exe)}, {"path", exe}, {"type_id", 1}};
        if (r_.contains("argv") && r_["argv"].is_array() && str(r_, "event") == "exec")
            p["cmd_line"] = record_command(r_);
        if (!str(r_, "cwd").empty()) p["working_directory"] = str(r_, "cwd");
        if (r_.contains("uid")) p["user"] = {{"uid", str(r_, "uid")}};
        if (r_.contains("ppid")) p["parent_process"] = {{"pid", r_.value("ppid", 0)}};
        return p;
    }

    // Who acted: the process (or, for exec and fork, its parent), the
    // user, and the guarded session that names the agent.
    json actor(bool parent) const {
        json a;
        a["process"] = parent ? json{{"pid", r_.value("ppid", 0)}} : process();
        if (r_.contains("uid")) a["user"] = {{"uid", str(r_, "uid")}};
        std::string session = str(r_, "session");
        if (!session.empty()) {
            a["session"] = {{"uid", session}};
            a["app_name"] = session;
        }
        return a;
    }

    json status(json ev) const {
        bool failed = r_.value("prevented", false) || str(r_, "verdict") == "refused";
        ev["status_id"] = failed ? 2 : 1;
        ev["status"] = failed ? "Failure" : "Success";
        return ev;
    }

    json process_activity() const {
        std::string e = str(r_, "event");
        bool exit = e == "exit";
        json ev = base(1007, "Process Activity", 1, "System Activity", exit ? 2 : 1,
                       exit ? "Terminate" : "Launch", 1, false, "");
        ev["actor"] = actor(!exit);
        ev["device"] = device();
        ev["process"] = process();
        if (exit && r_.contains("exit_code")) ev["exit_code"] = r_["exit_code"];
        ev["status_id"] = 1;
        ev["status"] = "Success";
        return ev;
    }

    json file_activity() const {
        std::string op = str(r_, "op");
        std::pair<int, const char*> act = {99, "Other"};
        if (op == "unlink" || op == "rmdir") act = {4, "Delete"};
        else if (op == "rename-from" || op == "rename-onto") act = {5, "Rename"};
        else if (op == "truncate" || op == "open-truncate" || op == "open-write" || op == "device-write")
            act = {3, "Update"};
        else if (op == "link" || op == "create-in" || op == "symlink-to")
            act = {1, "Create"};
        else if (op == "file-flags") act = {6, "Set Attributes"};
        else if (op == "chmod" || op == "chown" || op == "xattr") act = {7, "Set Security"};
        else if (op == "mount" || op == "mount-source" || op == "remount")
            act = {12, "Mount"};
        else if (op == "umount") act = {13, "Unmount"};
        else if (op == "exec") act = exec_activity(str(r_, "judged_as"));
        json ev = base(1001, "File System Activity", 1, "System Activity", act.first, act.second,
                       severity_id(r_), true, "");
        ev["actor"] = actor(false);
        ev["device"] = device();
        ev["file"] = file();
        return status(ev);
    }

    json file() const {
        std::string path = str(r_, "path");
        if (path.empty() && str(r_, "op") == "exec") path = str(r_, "program");
        int type = str(r_, "op") == "rmdir" ? 2 : str(r_, "op") == "device-write" ? 4 : 0;
        json f = {{"name", path.empty() ? "-" : basename_of(path)}, {"type_id", type}};
        if (!path.empty()) f["path"] = path;
        return f;
    }

    json database() const {
        std::string db = str(r_, "db");
        int type = db == "postgres" || db == "mysql" ? 1 : db == "redis" || db == "mongodb" ? 6 : 0;
        json d = {{"type_id", type}, {"uid", str(r_, "address")}};
        if (!db.empty()) d["type"] = db;
        return d;
    }

    json endpoint_of_address() const {
        std::string addr = str(r_, "address");
        json e = {{"svc_name", str(r_, "db").empty() ? "database" : str(r_, "db")}};
        size_t colon = addr.rfind(':');
        if (colon != std::string::npos) {
            std::string host = addr.substr(0, colon), port = addr.substr(colon + 1);
            if (!port.empty() && port.find_first_not_of("0123456789") == std::string::npos)
                e["port"] = std::stoi(port);
            if (!host.empty() && host != "*") e["ip"] = host.front() == '[' ? host.substr(1, host.size() - 2) : host;
        }
        return e;
    }

    json datastore_activity() const {
        json ev = base(6005, "Datastore Activity", 6, "Application Activity", 4, "Query",
                       severity_id(r_), true, "");
        ev["actor"] = actor(false);
        ev["device"] = device();
        ev["src_endpoint"] = {{"hostname", hostname_}};
        ev["dst_endpoint"] = endpoint_of_address();
        ev["database"] = database();
        ev["type_id"] = 1;
        ev["type"] = "Database";
        std::string q = str(r_, "statement");
        if (q.empty() && r_.contains("request_bytes"))
            q = "(binary request, " + str(r_, "request_bytes") + " bytes)";
        if (!q.empty()) ev["query_info"] = {{"uid", uid_}, {"query_string", q}};
        return status(ev);
    }

    json finding() const {
        std::string e = str(r_, "event"), v = str(r_, "verdict");
        int sev = e == "tamper" ? 5 : v.rfind("would-", 0) == 0 ? 3 : 4;
        json ev =
            base(2004, "Detection Finding", 2, "Findings", 1, "Create", sev, true, "-finding");
        std::string rule = str(r_, "rule");
        std::string title = str(r_, "reason");
        if (title.empty()) {
            std::string what = e == "db" ? str(r_, "statement") : str(r_, "op") + " " + str(r_, "path");
            title = e + ": " + what;
        }
        json info = {{"uid", uid_},
                     {"title", title},
                     {"types", {"killswitch:" + e}},
                     {"created_time", epoch_ms(str(r_, "ts"))}};
        if (!rule.empty()) info["analytic"] = {{"type_id", 1}, {"type", "Rule"}, {"name", rule}, {"uid", rule}};
        ev["finding_info"] = info;
        json evidence = {{"process", process()}};
        if (e == "file") evidence["file"] = file();
        if (e == "db") {
            evidence["database"] = database();
            evidence["dst_endpoint"] = endpoint_of_address();
        }
        if (r_.contains("uid")) evidence["user"] = {{"uid", str(r_, "uid")}};
        ev["evidences"] = json::array({evidence});
        ev["device"] = device();
        ev["is_alert"] = true;
        ev["status_id"] = 1;
        ev["status"] = "New";
        return ev;
    }

  private:
    const json& r_;
    std::string hostname_;
    std::string uid_;
};

class OcsfFileSink final : public RecordSink {
  public:
    OcsfFileSink(const std::string& path, Limits limits)
        : RecordSink("ocsf", path, limits), hostname_(host_name()) {
        start();
    }
    ~OcsfFileSink() override { stop(std::chrono::milliseconds(0)); }
    void reopen() override { reopen_ = true; }

  protected:
    std::optional<std::string> render(const json& record) override {
        auto events = to_ocsf(record, hostname_);
        if (events.empty()) return std::nullopt;
        std::string out;
        for (const auto& e : events) {
            out += e.dump(-1, ' ', false, json::error_handler_t::replace);
            out += '\n';
        }
        return out;
    }

    Status deliver(const std::string& lines) override {
        if (reopen_.exchange(false)) fd_.reset();
        if (!fd_.valid()) {
            std::error_code ec;
            auto dir = std::filesystem::path(target()).parent_path();
            if (!std::filesystem::exists(dir, ec)) {
                std::filesystem::create_directories(dir, ec);
                ::chmod(dir.c_str(), 0750);
            }
            fd_.reset(::open(target().c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
            if (!fd_.valid()) return sys_error("open " + target());
        }
        size_t off = 0;
        while (off < lines.size()) {
            ssize_t n = ::write(fd_.get(), lines.data() + off, lines.size() - off);
            if (n < 0) {
                if (errno == EINTR) continue;
                // Half a line would break the file: end it before the retry.
                if (off) (void)!::write(fd_.get(), "\n", 1);
                return sys_error("write " + target());
            }
            off += static_cast<size_t>(n);
        }
        return {};
    }

    void reset() override { fd_.reset(); }

  private:
    std::string hostname_;
    std::atomic<bool> reopen_{false};
    Fd fd_;
};

}  // namespace

std::vector<json> to_ocsf(const json& record, const std::string& hostname) {
    Builder b(record, hostname);
    std::string e = str(record, "event");
    std::vector<json> out;
    if (e == "exec" || e == "fork" || e == "exit") out.push_back(b.process_activity());
    else if (e == "file") out.push_back(b.file_activity());
    else if (e == "db") out.push_back(b.datastore_activity());
    if (is_finding(record)) out.push_back(b.finding());
    return out;
}

std::unique_ptr<RecordSink> make_ocsf_sink(const std::string& path, RecordSink::Limits limits) {
    return std::make_unique<OcsfFileSink>(path, limits);
}

}  // namespace ks::outputs
