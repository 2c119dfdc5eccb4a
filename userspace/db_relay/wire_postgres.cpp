// PostgreSQL frontend/backend protocol v3 (docs: "Message Flow", "Message
// Formats"): every message after the startup is a type byte and a 32-bit
// big-endian length that counts itself.
#include <cstring>

#include "db_relay/wire.h"

namespace ks::relay {

namespace {

constexpr uint32_t kSslRequest = 80877103;
constexpr uint32_t kGssEncRequest = 80877104;
constexpr uint32_t kCancelRequest = 80877102;
constexpr uint32_t kMaxStartup = 10000;

uint32_t be32(const std::string& s, size_t at) {
    auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(s[at + i])); };
    return b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
}

void put_be32(std::string& s, uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) s += static_cast<char>((v >> shift) & 0xff);
}

std::string message(char type, const std::string& body) {
    std::string m(1, type);
    put_be32(m, static_cast<uint32_t>(body.size() + 4));
    return m + body;
}

class PgWire : public Wire {
  public:
    explicit PgWire(std::string token) : stand_in_("killswitch_refused_" + std::move(token)) {}

    bool from_client(std::string& in, std::string& up, std::string& down,
                     const Judge& judge) override {
        size_t at = 0;
        bool ok = true;
        while (ok) {
            if (pass_up_ > 0) {
                if (!pass_on(in, at, pass_up_, up)) break;
                continue;
            }
            if (startup_) {
                if (in.size() - at < 8) break;
                uint32_t len = be32(in, at), code = be32(in, at + 4);
                if (len < 8 || len > kMaxStartup) {
                    ok = fail("a startup message of " + std::to_string(len) + " bytes");
                    break;
                }
                if (in.size() - at < len) break;
                if (code == kSslRequest || code == kGssEncRequest) {
                    // Not here: the client goes on in clear text, or stops if
                    // it must have encryption.
                    down += 'N';
                } else {
                    up.append(in, at, len);
                    if (code != kCancelRequest) startup_ = false;
                }
                at += len;
                continue;
            }
            if (in.size() - at < 5) break;
            char type = in[at];
            uint32_t len = be32(in, at + 1);
            if (len < 4) {
                ok = fail("a message of length " + std::to_string(len));
                break;
            }
            size_t total = size_t{len} + 1;
            if (type != 'Q' && type != 'P') {
                // Nothing to judge: passed on as it comes (COPY data, Bind...).
                pass_up_ = total;
                continue;
            }
            if (total > kMaxRequest) {
                ok = fail("a statement of " + std::to_string(total) + " bytes, over the " +
                          std::to_string(kMaxRequest) + " the relay reads");
                break;
            }
            if (in.size() - at < total) break;
            std::string_view body(in.data() + at + 5, total - 5);
            std::string_view sql = body;
            std::string name;
            if (type == 'P') {
                auto nul = body.find('\0');
                if (nul == std::string_view::npos) {
                    ok = fail("a Parse message without its statement name");
                    break;
                }
                name = std::string(body.substr(0, nul));
                sql = body.substr(nul + 1);
            }
            if (auto nul = sql.find('\0'); nul != std::string_view::npos) sql = sql.substr(0, nul);
            Verdict v = judge(Request{static_cast<uint8_t>(type), sql});
            if (!v.refuse) {
                up.append(in, at, total);
            } else {
                // The server answers the stand-in with a syntax error in the
                // refused statement's place; from_server makes it ours.
                pending_.push_back(std::move(v.message));
                if (type == 'Q') {
                    up += message('Q', stand_in_ + std::string(1, '\0'));
                } else {
                    std::string b = name;
                    b += '\0';
                    b += stand_in_;
                    b += '\0';
                    b += std::string(2, '\0');  // no parameter types
                    up += message('P', b);
                }
            }
            at += total;
        }
        in.erase(0, at);
        return ok;
    }

    bool from_server(std::string& in, std::string& down) override {
        size_t at = 0;
        while (true) {
            if (pass_down_ > 0) {
                if (!pass_on(in, at, pass_down_, down)) break;
                continue;
            }
            if (in.size() - at < 5) break;
            char type = in[at];
            uint32_t len = be32(in, at + 1);
            if (len < 4) {
                in.erase(0, at);
                return fail("the server sent a message of length " + std::to_string(len));
            }
            size_t total = size_t{len} + 1;
            if (type != 'E' || pending_.empty()) {
                pass_down_ = total;
                continue;
            }
            if (in.size() - at < total) break;
            std::string_view body(in.data() + at, total);
            if (body.find(stand_in_) != std::string_view::npos) {
                down += pg_error_response(pending_.front());
                pending_.pop_front();
            } else {
                down.append(body);
            }
            at += total;
        }
        in.erase(0, at);
        return true;
    }

  private:
    std::string stand_in_;
    bool startup_ = true;
    size_t pass_up_ = 0;    // bytes of a client message still to pass unread
    size_t pass_down_ = 0;  // bytes of a server message still to pass unread
};

}  // namespace

std::string pg_error_response(std::string_view msg) {
    // The first line is the message, the rest the hint (psql prints HINT:).
    std::string text(msg);
    while (!text.empty() && text.back() == '\n') text.pop_back();
    std::string first = text, rest;
    if (auto nl = text.find('\n'); nl != std::string::npos) {
        first = text.substr(0, nl);
        rest = text.substr(nl + 1);
    }
    std::string body;
    auto field = [&](char code, const std::string& value) {
        body += code;
        for (char c : value) body += c == '\0' ? ' ' : c;
        body += '\0';
    };
    field('S', "ERROR");
    field('V', "ERROR");
    field('C', "42501");  // insufficient_privilege
    field('M', first);
    if (!rest.empty()) field('H', rest);
    body += '\0';
    return message('E', body);
}

std::unique_ptr<Wire> make_postgres_wire(std::string token) {
    return std::make_unique<PgWire>(std::move(token));
}

}  // namespace ks::relay
