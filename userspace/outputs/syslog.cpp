#include "outputs/syslog.h"

#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "common/fd.h"
#include "common/identity.h"

namespace ks::outputs {

namespace {

constexpr std::array<std::pair<const char*, int>, 20> kFacilities = {{
    {"kern", 0},    {"user", 1},    {"mail", 2},    {"daemon", 3},  {"auth", 4},
    {"syslog", 5},  {"lpr", 6},     {"news", 7},    {"uucp", 8},    {"cron", 9},
    {"authpriv", 10}, {"ftp", 11},  {"local0", 16}, {"local1", 17}, {"local2", 18},
    {"local3", 19}, {"local4", 20}, {"local5", 21}, {"local6", 22}, {"local7", 23},
}};

std::string openssl_errors() {
    std::string out;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof(buf));
        if (!out.empty()) out += "; ";
        out += buf;
    }
    return out.empty() ? "unknown TLS error" : out;
}

// RFC 5424 PARAM-VALUE: '"', '\' and ']' escaped.
std::string sd_escape(const std::string& v) {
    std::string out;
    for (char c : v) {
        if (c == '"' || c == '\\' || c == ']') out += '\\';
        out += c;
    }
    return out;
}

// A header field: printable US-ASCII, at most `max`, "-" when empty.
std::string header_field(const std::string& v, size_t max) {
    std::string out;
    for (char c : v)
        if (c > 32 && c < 127 && out.size() < max) out += c;
    return out.empty() ? "-" : out;
}

// The record's "ts" (nanoseconds) cut to the microseconds RFC 5424 allows.
std::string timestamp(const nlohmann::json& record) {
    std::string ts = record.value("ts", "");
    size_t dot = ts.find('.');
    if (dot == std::string::npos || ts.size() < dot + 8 || ts.back() != 'Z') return ts.empty() ? "-" : ts;
    return ts.substr(0, dot + 7) + "Z";
}

class SyslogSink final : public RecordSink {
  public:
    SyslogSink(const std::string& text, SyslogTarget t, Limits limits)
        : RecordSink("syslog", text, limits),
          t_(std::move(t)),
          hostname_(host_name()),
          pid_(static_cast<int>(::getpid())) {
        start();
    }
    ~SyslogSink() override {
        stop(std::chrono::milliseconds(0));
        reset();
        if (ctx_) SSL_CTX_free(ctx_);
    }

  protected:
    std::optional<std::string> render(const nlohmann::json& record) override {
        std::string msg = format_rfc5424(record, t_.facility, hostname_, pid_);
        if (t_.transport == SyslogTarget::Transport::Udp) {
            // One datagram per message: what does not fit is cut (RFC 5426
            // allows it; the receiver sees a cut JSON).
            if (msg.size() > kMaxDatagram) msg.resize(kMaxDatagram);
            return msg;
        }
        return std::to_string(msg.size()) + " " + msg;  // RFC 6587 octet counting
    }

    Status deliver(const std::string& item) override {
        if (!fd_.valid() || peer_gone()) {
            reset();
            if (auto st = connect_peer(); !st) return st;
            count_connect();
        }
        if (ssl_) {
            size_t off = 0;
            while (off < item.size()) {
                int n = SSL_write(ssl_, item.data() + off, static_cast<int>(item.size() - off));
                if (n <= 0) return make_error("TLS write to " + t_.host + ": " + openssl_errors());
                off += static_cast<size_t>(n);
            }
            return {};
        }
        size_t off = 0;
        while (off < item.size()) {
            ssize_t n = ::send(fd_.get(), item.data() + off, item.size() - off, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR) continue;
                return sys_error("send to " + t_.host + ":" + t_.port);
            }
            off += static_cast<size_t>(n);
        }
        return {};
    }

    void reset() override {
        if (ssl_) {
            SSL_shutdown(ssl_);  // close_notify: the receiver sees an orderly end
            SSL_free(ssl_);
            ssl_ = nullptr;
        }
        fd_.reset();
    }

  private:
    static constexpr size_t kMaxDatagram = 65000;

    // A stream receiver that closed is gone: a send now would be lost on
    // the RST. A TLS 1.3 server sends session tickets after the handshake:
    // those are read (and dropped) here, without waiting, so that what is
    // left to see is the end of the stream or a close_notify.
    bool peer_gone() {
        if (t_.transport == SyslogTarget::Transport::Udp) return false;
        pollfd p{fd_.get(), POLLIN | POLLRDHUP, 0};
        if (::poll(&p, 1, 0) <= 0) return false;
        if (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) return true;
        if (!ssl_) {
            char c;
            return ::recv(fd_.get(), &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
        }
        int flags = ::fcntl(fd_.get(), F_GETFL);
        ::fcntl(fd_.get(), F_SETFL, flags | O_NONBLOCK);
        bool gone = false;
        char buf[512];
        for (;;) {
            int n = SSL_read(ssl_, buf, sizeof(buf));
            if (n > 0) continue;  // a syslog receiver has nothing to say
            int e = SSL_get_error(ssl_, n);
            gone = e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE;
            break;
        }
        ERR_clear_error();
        ::fcntl(fd_.get(), F_SETFL, flags);
        return gone;
    }

    Status connect_peer() {
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = t_.transport == SyslogTarget::Transport::Udp ? SOCK_DGRAM : SOCK_STREAM;
        hints.ai_flags = AI_NUMERICSERV;
        addrinfo* res = nullptr;
        if (int rc = ::getaddrinfo(t_.host.c_str(), t_.port.c_str(), &hints, &res); rc != 0)
            return make_error("resolve " + t_.host + ": " + ::gai_strerror(rc));
        Status last = make_error("no address for " + t_.host);
        for (addrinfo* a = res; a; a = a->ai_next) {
            Fd fd(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
            if (!fd.valid()) {
                last = sys_error("socket");
                continue;
            }
            if (::connect(fd.get(), a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
                last = sys_error("connect to " + t_.host + ":" + t_.port);
                continue;
            }
            pollfd p{fd.get(), POLLOUT, 0};
            int err = 0;
            socklen_t len = sizeof(err);
            if (::poll(&p, 1, kConnectTimeoutMs) != 1) {
                last = make_error("connect to " + t_.host + ":" + t_.port + ": timed out");
                continue;
            }
            ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
            if (err != 0) {
                last = sys_error("connect to " + t_.host + ":" + t_.port, err);
                continue;
            }
            // Blocking from here, with timeouts: a stalled receiver costs
            // this thread, never the daemon's loop.
            ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);
            timeval tv{kIoTimeoutS, 0};
            ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
            ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
            fd_ = std::move(fd);
            ::freeaddrinfo(res);
            if (t_.transport == SyslogTarget::Transport::Tls) return start_tls();
            return {};
        }
        ::freeaddrinfo(res);
        return last;
    }

    Status start_tls() {
        if (!ctx_) {
            ctx_ = SSL_CTX_new(TLS_client_method());
            if (!ctx_) return make_error("TLS: " + openssl_errors());
            SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
            SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
            int ok = t_.ca_file.empty()
                         ? SSL_CTX_set_default_verify_paths(ctx_)
                         : SSL_CTX_load_verify_locations(ctx_, t_.ca_file.c_str(), nullptr);
            if (ok != 1) {
                std::string e = "TLS CA " + (t_.ca_file.empty() ? "(system)" : t_.ca_file) + ": " +
                                openssl_errors();
                SSL_CTX_free(ctx_);
                ctx_ = nullptr;
                return make_error(e);
            }
            if (!t_.cert_file.empty() &&
                (SSL_CTX_use_certificate_chain_file(ctx_, t_.cert_file.c_str()) != 1 ||
                 SSL_CTX_use_PrivateKey_file(ctx_, t_.key_file.c_str(), SSL_FILETYPE_PEM) != 1)) {
                std::string e = "TLS client certificate " + t_.cert_file + ": " + openssl_errors();
                SSL_CTX_free(ctx_);
                ctx_ = nullptr;
                return make_error(e);
            }
        }
        ssl_ = SSL_new(ctx_);
        if (!ssl_) return make_error("TLS: " + openssl_errors());
        SSL_set_fd(ssl_, fd_.get());
        // The name the certificate must carry: an address, or a DNS name
        // (also sent as SNI).
        X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
        if (X509_VERIFY_PARAM_set1_ip_asc(param, t_.host.c_str()) != 1) {
            SSL_set_tlsext_host_name(ssl_, t_.host.c_str());
            SSL_set1_host(ssl_, t_.host.c_str());
        }
        if (SSL_connect(ssl_) != 1) {
            long v = SSL_get_verify_result(ssl_);
            std::string e = v != X509_V_OK ? X509_verify_cert_error_string(v) : openssl_errors();
            return make_error("TLS handshake with " + t_.host + ":" + t_.port + ": " + e);
        }
        return {};
    }

    static constexpr int kConnectTimeoutMs = 3000;
    static constexpr long kIoTimeoutS = 5;

    SyslogTarget t_;
    std::string hostname_;
    int pid_;
    Fd fd_;
    SSL_CTX* ctx_ = nullptr;
    SSL* ssl_ = nullptr;
};

}  // namespace

Result<SyslogTarget> parse_syslog_target(const std::string& target) {
    const std::string usage =
        "syslog needs udp://HOST:PORT, tcp://HOST:PORT or tls://HOST:PORT, optionally "
        "?ca=FILE&cert=FILE&key=FILE&facility=NAME";
    SyslogTarget t;
    size_t sep = target.find("://");
    if (sep == std::string::npos) return make_error(usage);
    std::string scheme = target.substr(0, sep);
    if (scheme == "udp") t.transport = SyslogTarget::Transport::Udp;
    else if (scheme == "tcp") t.transport = SyslogTarget::Transport::Tcp;
    else if (scheme == "tls") t.transport = SyslogTarget::Transport::Tls;
    else return make_error("unknown transport '" + scheme + "'; " + usage);
    std::string rest = target.substr(sep + 3), query;
    if (size_t q = rest.find('?'); q != std::string::npos) {
        query = rest.substr(q + 1);
        rest.resize(q);
    }
    size_t colon;
    if (!rest.empty() && rest[0] == '[') {
        size_t close = rest.find(']');
        if (close == std::string::npos || close + 1 >= rest.size() || rest[close + 1] != ':')
            return make_error(usage);
        t.host = rest.substr(1, close - 1);
        colon = close + 1;
    } else {
        colon = rest.rfind(':');
        if (colon == std::string::npos) return make_error(usage);
        t.host = rest.substr(0, colon);
    }
    t.port = rest.substr(colon + 1);
    if (t.host.empty() || t.port.empty() || t.port.size() > 5 ||
        t.port.find_first_not_of("0123456789") != std::string::npos || std::stoi(t.port) == 0 ||
        std::stoi(t.port) > 65535)
        return make_error(usage);
    size_t pos = 0;
    while (pos < query.size()) {
        size_t amp = query.find('&', pos);
        std::string kv = query.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
        pos = amp == std::string::npos ? query.size() : amp + 1;
        size_t eq = kv.find('=');
        std::string k = kv.substr(0, eq), v = eq == std::string::npos ? "" : kv.substr(eq + 1);
        if (v.empty()) return make_error("'" + kv + "' needs a value; " + usage);
        if (k == "facility") {
            bool found = false;
            for (const auto& [name, code] : kFacilities)
                if (v == name) t.facility = code, found = true;
            if (!found) return make_error("unknown facility '" + v + "' (authpriv, auth, daemon, local0..local7, ...)");
        } else if (k == "ca" || k == "cert" || k == "key") {
            if (t.transport != SyslogTarget::Transport::Tls)
                return make_error("'" + k + "' is for tls:// only");
            if (v[0] != '/') return make_error("'" + k + "' needs an absolute path");
            (k == "ca" ? t.ca_file : k == "cert" ? t.cert_file : t.key_file) = v;
        } else {
            return make_error("unknown setting '" + k + "'; " + usage);
        }
    }
    if (t.cert_file.empty() != t.key_file.empty())
        return make_error("a client certificate needs both cert= and key=");
    return t;
}

int syslog_severity(const nlohmann::json& r) {
    std::string event = r.value("event", "");
    std::string verdict = r.contains("verdict") && r["verdict"].is_string() ? r["verdict"].get<std::string>() : "";
    if (event == "tamper") return 2;
    if (event == "lost" || event == "error") return 3;
    if (event == "policy_reload" && r.value("result", "") != "accepted") return 4;
    if (verdict == "block" || verdict == "kill" || verdict == "freeze" || verdict == "kill-session" ||
        verdict == "refused" || event == "reach" || event == "hold_denied" || event == "session_timeout" ||
        event == "session_wrapper_gone" || event == "uninstall")
        return 4;
    if (verdict == "hold" || verdict.rfind("would-", 0) == 0 || verdict == "allowed" ||
        event == "hold_approved" || event == "allow_start" || event == "protect_root")
        return 5;
    return 6;
}

std::string format_rfc5424(const nlohmann::json& record, int facility, const std::string& hostname,
                           int pid) {
    std::string out = "<" + std::to_string(facility * 8 + syslog_severity(record)) + ">1 ";
    out += timestamp(record);
    out += ' ';
    out += header_field(hostname, 255);
    out += " killswitch ";
    out += std::to_string(pid);
    out += ' ';
    out += header_field(record.value("event", ""), 32);
    out += " [origin software=\"killswitch\" swVersion=\"" + sd_escape(KS_VERSION) + "\"]";
    if (record.contains("seq") && record["seq"].is_number_integer() && record["seq"].get<int64_t>() > 0) {
        // sequenceId runs 1..2147483647 and wraps to 1.
        uint64_t seq = record["seq"].get<uint64_t>();
        out += "[meta sequenceId=\"" + std::to_string((seq - 1) % 2147483647 + 1) + "\"]";
    }
    out += ' ';
    out += record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return out;
}

std::unique_ptr<RecordSink> make_syslog_sink(const std::string& target_text,
                                             const SyslogTarget& target,
                                             RecordSink::Limits limits) {
    return std::make_unique<SyslogSink>(target_text, target, limits);
}

}  // namespace ks::outputs
