// Syslog output: every audit record as an RFC 5424 message, over UDP
// (RFC 5426), TCP (RFC 6587 octet counting) or TLS (RFC 5425, OpenSSL; the
// server's certificate is checked against the system's CAs or the one given,
// and its name against the host).
//
//   syslog=udp://HOST:PORT
//   syslog=tcp://HOST:PORT
//   syslog=tls://HOST:PORT?ca=/etc/killswitch/syslog-ca.pem&cert=C&key=K
//   ...&facility=local3 (default authpriv: the facility of security messages)
//
// A message: <PRI>1 TIMESTAMP HOSTNAME killswitch PID EVENT
//   [origin software="killswitch" swVersion="V"][meta sequenceId="SEQ"] JSON
// where JSON is the record exactly as the audit file has it.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/result.h"
#include "outputs/sink.h"

namespace ks::outputs {

struct SyslogTarget {
    enum class Transport { Udp, Tcp, Tls } transport = Transport::Tcp;
    std::string host;  // without brackets for IPv6
    std::string port;
    int facility = 10;  // authpriv
    std::string ca_file, cert_file, key_file;
};

Result<SyslogTarget> parse_syslog_target(const std::string& target);

// The severity of a record: 2 (crit) for tamper, 3 (err) for records lost
// and daemon errors, 4 (warning) for refusals, kills and freezes, 5
// (notice) for holds, would-be refusals and schema changes, else 6 (info).
int syslog_severity(const nlohmann::json& record);

// The RFC 5424 message of a record (no framing).
std::string format_rfc5424(const nlohmann::json& record, int facility,
                           const std::string& hostname, int pid);

std::unique_ptr<RecordSink> make_syslog_sink(const std::string& target_text,
                                             const SyslogTarget& target,
                                             RecordSink::Limits limits = {});

}  // namespace ks::outputs
