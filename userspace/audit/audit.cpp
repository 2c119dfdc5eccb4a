#include "audit/audit.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <thread>

namespace ks {

uint64_t boot_to_realtime_ns(uint64_t boot_ns) {
    timespec rt{}, bt{};
    clock_gettime(CLOCK_REALTIME, &rt);
    clock_gettime(CLOCK_BOOTTIME, &bt);
    int64_t offset = (static_cast<int64_t>(rt.tv_sec) - bt.tv_sec) * 1000000000ll +
                     (static_cast<int64_t>(rt.tv_nsec) - bt.tv_nsec);
    return static_cast<uint64_t>(static_cast<int64_t>(boot_ns) + offset);
}

std::string format_realtime_ns(uint64_t ns) {
    time_t secs = static_cast<time_t>(ns / 1000000000ull);
    struct tm tm {};
    gmtime_r(&secs, &tm);
    char buf[64];
    size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof(buf) - n, ".%09lluZ",
             static_cast<unsigned long long>(ns % 1000000000ull));
    return buf;
}

Result<AuditWriter> AuditWriter::open(const std::string& path, AuditFileAccess access) {
    AuditWriter w;
    w.path_ = path;
    w.access_ = access;
    std::error_code ec;
    auto dir = std::filesystem::path(path).parent_path();
    if (!dir.empty() && !std::filesystem::exists(dir, ec)) {
        std::filesystem::create_directories(dir, ec);
        if (ec) return Error{ec.value(), "create audit log directory " + dir.string()};
        ::chmod(dir.c_str(), 0750);
    }
    w.fd_.reset(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
    if (!w.fd_.valid()) return sys_error("open audit log " + path);
    if (auto st = w.apply_access(); !st) return st.error();
    return w;
}

Status AuditWriter::apply_access() {
    // Only a regular file is the trail's own: an audit log given as
    // /dev/null, a FIFO read by a shipper or another device keeps the owner
    // and mode it has (a chmod of /dev/null to 0600 would break every other
    // user of it on the host).
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0) return sys_error("stat audit log " + path_);
    regular_ = S_ISREG(st.st_mode);
    if (!regular_) return {};
    // The group first: a reader of the group never sees the file readable
    // with the group it had before.
    if (access_.gid >= 0 &&
        ::fchown(fd_.get(), static_cast<uid_t>(-1), static_cast<gid_t>(access_.gid)) != 0)
        return sys_error("set the group of audit log " + path_);
    if (::fchmod(fd_.get(), static_cast<mode_t>(access_.mode)) != 0)
        return sys_error("set the mode of audit log " + path_);
    return {};
}

Status AuditWriter::set_access(AuditFileAccess access) {
    access_ = access;
    return apply_access();
}

void AuditWriter::append(nlohmann::json record) {
    if (!record.contains("ts")) record["ts"] = format_realtime_ns(realtime_now_ns());
    if (!host_.empty()) record["host"] = host_;
    if (!run_.empty()) record["run"] = run_;
    record["seq"] = ++seq_;
    if (observer_) observer_(record);
    pending_ += record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    pending_ += '\n';
}

Status AuditWriter::flush() {
    size_t off = 0;
    while (off < pending_.size()) {
        ssize_t n = ::write(fd_.get(), pending_.data() + off, pending_.size() - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            pending_.erase(0, off);  // keep the rest for the next try
            return sys_error("write audit log " + path_);
        }
        off += static_cast<size_t>(n);
    }
    if (off) dirty_ = true;
    pending_.clear();
    return {};
}

Status AuditWriter::sync() {
    if (auto st = flush(); !st) return st;
    if (dirty_ && regular_ && ::fdatasync(fd_.get()) != 0)
        return sys_error("fdatasync audit log " + path_);
    dirty_ = false;
    return {};
}

Status AuditWriter::reopen() {
    if (auto st = flush(); !st) return st;
    Fd fd(::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
    if (!fd.valid()) return sys_error("reopen audit log " + path_);
    fd_ = std::move(fd);
    return apply_access();
}

namespace {

// Daemon records carry "session": null; any non-string field matches nothing.
std::string string_field(const nlohmann::json& rec, const char* key) {
    auto it = rec.find(key);
    return it != rec.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

bool audit_matches(const nlohmann::json& rec, const AuditFilter& f) {
    if (!f.session.empty() && string_field(rec, "session") != f.session) return false;
    if (!f.event.empty() && string_field(rec, "event") != f.event) return false;
    return true;
}

std::string record_text(const nlohmann::json& rec, const char* key) {
    if (!rec.contains(key) || rec[key].is_null()) return "";
    return rec[key].is_string() ? rec[key].get<std::string>() : rec[key].dump();
}

std::string record_command(const nlohmann::json& rec) {
    std::string cmd;
    if (rec.contains("argv") && rec["argv"].is_array())
        for (const auto& a : rec["argv"])
            cmd += (cmd.empty() ? "" : " ") + (a.is_string() ? a.get<std::string>() : a.dump());
    return cmd;
}

std::string format_audit_human(const nlohmann::json& rec) {
    auto str = [&](const char* k) { return record_text(rec, k); };
    std::string out = str("ts") + " " + str("event");
    if (rec.contains("session")) out += " session=" + str("session");
    if (rec.contains("pid")) out += " pid=" + str("pid");
    if (rec.contains("ppid")) out += " ppid=" + str("ppid");
    if (rec.contains("uid")) out += " uid=" + str("uid");
    if (rec.contains("argv") && rec["argv"].is_array()) {
        out += " : " + record_command(rec);
    } else if (rec.contains("comm")) {
        out += " comm=" + str("comm");
    }
    for (const char* k : {"op", "path", "statement", "rule", "verdict", "layer", "exit_code",
                          "signal", "count", "reason", "message"})
        if (rec.contains(k)) out += std::string(" ") + k + "=" + str(k);
    return out;
}

Status read_audit(const std::string& path, const AuditFilter& filter, bool follow,
                  const std::function<void(const nlohmann::json&, const std::string&)>& on_record,
                  const std::function<bool()>& stop) {
    Fd fd;
    ino_t ino = 0;
    off_t off = 0;
    std::string partial;
    auto open_file = [&]() -> bool {
        fd.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd.valid()) return false;
        struct stat st {};
        fstat(fd.get(), &st);
        ino = st.st_ino;
        off = 0;
        partial.clear();
        return true;
    };
    if (!open_file()) {
        if (!follow) return sys_error("open audit log " + path);
    }
    char buf[65536];
    for (;;) {
        if (fd.valid()) {
            ssize_t n = ::pread(fd.get(), buf, sizeof(buf), off);
            if (n < 0) return sys_error("read audit log " + path);
            if (n > 0) {
                off += n;
                partial.append(buf, static_cast<size_t>(n));
                size_t start = 0, nl;
                while ((nl = partial.find('\n', start)) != std::string::npos) {
                    std::string line = partial.substr(start, nl - start);
                    start = nl + 1;
                    if (line.empty()) continue;
                    auto rec = nlohmann::json::parse(line, nullptr, false);
                    if (rec.is_discarded()) continue;
                    if (audit_matches(rec, filter)) on_record(rec, line);
                }
                partial.erase(0, start);
                continue;
            }
        }
        if (!follow || stop()) return {};
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        // Rotated or truncated: start over on the new file.
        struct stat st {};
        if (::stat(path.c_str(), &st) == 0 && (!fd.valid() || st.st_ino != ino || st.st_size < off))
            open_file();
    }
}

}  // namespace ks
