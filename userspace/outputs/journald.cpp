#include "outputs/journald.h"

#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include <cctype>

#include "audit/audit.h"
#include "common/result.h"
#include "outputs/syslog.h"

namespace ks::outputs {

namespace {

// A journal field name: upper-case letters, digits and '_', not starting
// with '_' (those are the journal's own), at most 64 bytes.
std::string field_name(const std::string& key) {
    std::string out = "KILLSWITCH_";
    for (char c : key) {
        if (out.size() >= 64) break;
        out += std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : '_';
    }
    return out;
}

std::string dump(const nlohmann::json& v) {
    return v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

class JournaldSink final : public RecordSink {
  public:
    explicit JournaldSink(Limits limits) : RecordSink("journald", "journald", limits) { start(); }
    ~JournaldSink() override { stop(std::chrono::milliseconds(0)); }

  protected:
    std::optional<std::string> render(const nlohmann::json& record) override {
        // Fields separated by NUL: values are single-line JSON or text
        // without NUL (json dumps escape it).
        std::string packed;
        for (const auto& f : journal_fields(record)) {
            packed += f;
            packed += '\0';
        }
        return packed;
    }

    Status deliver(const std::string& packed) override {
        std::vector<iovec> iov;
        size_t start = 0;
        while (start < packed.size()) {
            size_t end = packed.find('\0', start);
            iov.push_back({const_cast<char*>(packed.data() + start), end - start});
            start = end + 1;
        }
        int rc = sd_journal_sendv(iov.data(), static_cast<int>(iov.size()));
        if (rc < 0) return sys_error("sd_journal_sendv", -rc);
        return {};
    }
};

}  // namespace

std::vector<std::string> journal_fields(const nlohmann::json& record) {
    std::vector<std::string> out;
    std::string message = format_audit_human(record);
    for (char& c : message)
        if (c == '\n' || c == '\0') c = ' ';
    out.push_back("MESSAGE=" + message);
    out.push_back("PRIORITY=" + std::to_string(syslog_severity(record)));
    out.push_back("SYSLOG_IDENTIFIER=killswitch");
    for (const auto& [key, value] : record.items()) {
        if (value.is_null()) continue;
        std::string v = value.is_string() ? value.get<std::string>() : dump(value);
        for (char& c : v)
            if (c == '\0') c = ' ';
        out.push_back(field_name(key) + "=" + v);
    }
    out.push_back("KILLSWITCH_RECORD=" + dump(record));
    return out;
}

std::unique_ptr<RecordSink> make_journald_sink(RecordSink::Limits limits) {
    return std::make_unique<JournaldSink>(limits);
}

}  // namespace ks::outputs
