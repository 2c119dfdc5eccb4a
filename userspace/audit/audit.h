// The audit trail: one JSON object per line, appended, never rewritten.
// Schema: docs/audit-schema.md.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "common/clock.h"
#include "common/fd.h"
#include "common/result.h"

namespace ks {

// "2026-11-24T07:09:20.123456789Z"
std::string format_realtime_ns(uint64_t realtime_ns);
// CLOCK_BOOTTIME nanoseconds (what BPF records) to wall-clock nanoseconds.
uint64_t boot_to_realtime_ns(uint64_t boot_ns);

// The audit file's permission bits and group (audit.mode, audit.group).
struct AuditFileAccess {
    uint32_t mode = 0600;
    int64_t gid = -1;  // -1: the daemon's group
};

class AuditWriter {
  public:
    // Creates the file and its directory (0750) when missing; the file gets
    // access's mode and group, whether it is new or not.
    static Result<AuditWriter> open(const std::string& path, AuditFileAccess access = {});

    // Who writes: "host" (the machine id) and "run" (this daemon run's id),
    // added to every record from now on when not empty.
    void set_identity(std::string host, std::string run) {
        host_ = std::move(host);
        run_ = std::move(run);
    }
    // A new mode or group (a policy reload): the open file at once, and
    // every file reopen() opens.
    Status set_access(AuditFileAccess access);

    // Adds "ts" (if absent), "host" and "run" (when set) and "seq", and
    // queues the line.
    void append(nlohmann::json record);
    // Sees every record as it is appended (the daemon's decision counters).
    void set_observer(std::function<void(const nlohmann::json&)> f) { observer_ = std::move(f); }
    // Writes what is queued; records are never dropped on a short write.
    Status flush();
    // flush() and fdatasync().
    Status sync();
    // After log rotation (SIGHUP): open the path again.
    Status reopen();
    [[nodiscard]] const std::string& path() const { return path_; }
    [[nodiscard]] uint64_t written() const { return seq_; }

  private:
    AuditWriter() = default;
    Status apply_access();

    std::string path_;
    AuditFileAccess access_;
    std::string host_, run_;
    Fd fd_;
    std::string pending_;
    uint64_t seq_ = 0;
    bool dirty_ = false;
    bool regular_ = true;  // a FIFO or a device is written, never synced or re-moded
    std::function<void(const nlohmann::json&)> observer_;
};

struct AuditFilter {
    std::string session;  // empty: all
    std::string event;    // empty: all
};

bool audit_matches(const nlohmann::json& rec, const AuditFilter& f);
// One line for people: time, event, session, pid, and what happened.
std::string format_audit_human(const nlohmann::json& rec);
// A field of a record as text: a string as it is, another value as JSON,
// "" when absent or null.
std::string record_text(const nlohmann::json& rec, const char* key);
// The record's argv joined with spaces ("" when it has none).
std::string record_command(const nlohmann::json& rec);

// Calls on_record for every record of the file that matches; with follow,
// keeps reading as the file grows (and after rotation) until stop() is true.
Status read_audit(
    const std::string& path, const AuditFilter& filter, bool follow,
    const std::function<void(const nlohmann::json&, const std::string& line)>& on_record,
    const std::function<bool()>& stop = [] { return false; });

}  // namespace ks
