// MySQL/MariaDB client/server protocol: packets of a 3-byte little-endian
// length and a sequence id; a command starts a new sequence (id 0). The
// classic protocol answers one command before the client sends the next.
#include "db_relay/wire.h"

namespace ks::relay {

namespace {

constexpr uint8_t kComQuery = 0x03;
constexpr uint8_t kComStmtPrepare = 0x16;
constexpr uint32_t kMaxPayload = 0xffffff;
// Capabilities the relay cannot read through, struck from the greeting.
constexpr uint32_t kClientCompress = 0x20;
constexpr uint32_t kClientSsl = 0x800;
constexpr uint32_t kClientZstd = 1u << 26;
constexpr uint32_t kClientQueryAttributes = 1u << 27;

class MysqlWire : public Wire {
  public:
    bool from_client(std::string& in, std::string& up, std::string& down,
                     const Judge& judge) override {
        size_t at = 0;
        bool ok = true;
        while (ok) {
            if (pass_up_ > 0) {
                if (!pass_on(in, at, pass_up_, up)) break;
                continue;
            }
            if (in.size() - at < 5) break;
            uint32_t len = get_le(in, at, 3);
            uint8_t seq = static_cast<uint8_t>(in[at + 3]);
            uint8_t cmd = static_cast<uint8_t>(in[at + 4]);
            if (seq == 1 && !greeted_) {
                ok = fail("the client spoke before the server's greeting");
                break;
            }
            if (seq == 1 && !handshake_answered_) {
                // The handshake response: capabilities the relay struck from
                // the greeting are not to be asked for.
                if (in.size() - at < 8) break;
                uint32_t caps = static_cast<uint32_t>(static_cast<uint8_t>(in[at + 4])) |
                                static_cast<uint32_t>(static_cast<uint8_t>(in[at + 5])) << 8 |
                                static_cast<uint32_t>(static_cast<uint8_t>(in[at + 6])) << 16 |
                                static_cast<uint32_t>(static_cast<uint8_t>(in[at + 7])) << 24;
                if (caps & (kClientSsl | kClientCompress | kClientZstd)) {
                    ok =
                        fail("the client asks for TLS or compression, which the relay cannot read");
                    break;
                }
                handshake_answered_ = true;  // what follows until a command is authentication
            }
            bool judged = seq == 0 && (cmd == kComQuery || cmd == kComStmtPrepare);
            size_t total = size_t{len} + 4;
            if (!judged || len == kMaxPayload) {
                if (judged) {
                    // A statement of 16 MiB or more spans packets: not read here.
                    ok = fail("a statement of 16 MiB or more, over the packet the relay reads");
                    break;
                }
                pass_up_ = total;
                continue;
            }
            if (in.size() - at < total) break;
            std::string_view sql(in.data() + at + 5, len - 1);
            Verdict v = judge(Request{cmd, sql});
            if (v.later) break;
            if (!v.refuse)
                up.append(in, at, total);
            else
                down += mysql_err_packet(1, v.message);
            at += total;
        }
        in.erase(0, at);
        return ok;
    }

    bool from_server(std::string& in, std::string& down) override {
        if (greeted_) {
            down += in;
            in.clear();
            return true;
        }
        // The greeting (Protocol::HandshakeV10): version 10, server version
        // NUL-terminated, connection id, 8 bytes of scramble, a filler, the
        // lower capability bytes, charset, status, the upper capability bytes.
        if (in.size() < 4) return true;
        uint32_t len = get_le(in, 0, 3);
        if (in.size() < len + 4) return true;
        std::string pkt = in.substr(0, len + 4);
        in.erase(0, len + 4);
        greeted_ = true;
        if (len > 0 && static_cast<uint8_t>(pkt[4]) == 10) {
            size_t nul = pkt.find('\0', 5);
            size_t lower = nul == std::string::npos ? pkt.size() : nul + 1 + 4 + 8 + 1;
            size_t upper = lower + 2 + 1 + 2;
            if (upper + 2 <= pkt.size()) {
                uint32_t strike =
                    kClientSsl | kClientCompress | kClientZstd | kClientQueryAttributes;
                pkt[lower] = static_cast<char>(static_cast<uint8_t>(pkt[lower]) & ~(strike & 0xff));
                pkt[lower + 1] = static_cast<char>(static_cast<uint8_t>(pkt[lower + 1]) &
                                                   ~((strike >> 8) & 0xff));
                pkt[upper] =
                    static_cast<char>(static_cast<uint8_t>(pkt[upper]) & ~((strike >> 16) & 0xff));
                pkt[upper + 1] = static_cast<char>(static_cast<uint8_t>(pkt[upper + 1]) &
                                                   ~((strike >> 24) & 0xff));
            }
        }
        down += pkt;
        return from_server(in, down);
    }

  private:
    bool greeted_ = false;
    bool handshake_answered_ = false;
    size_t pass_up_ = 0;
};

}  // namespace

std::string mysql_err_packet(uint8_t seq, std::string_view msg) {
    std::string text(msg);
    while (!text.empty() && text.back() == '\n') text.pop_back();
    std::string payload;
    payload += static_cast<char>(0xff);
    uint16_t code = 1227;  // ER_SPECIFIC_ACCESS_DENIED_ERROR
    payload += static_cast<char>(code & 0xff);
    payload += static_cast<char>(code >> 8);
    payload += "#42000";
    payload += text.substr(0, kMaxPayload - payload.size());
    std::string pkt;
    auto n = static_cast<uint32_t>(payload.size());
    pkt += static_cast<char>(n & 0xff);
    pkt += static_cast<char>((n >> 8) & 0xff);
    pkt += static_cast<char>((n >> 16) & 0xff);
    pkt += static_cast<char>(seq);
    return pkt + payload;
}

std::unique_ptr<Wire> make_mysql_wire() { return std::make_unique<MysqlWire>(); }

}  // namespace ks::relay
