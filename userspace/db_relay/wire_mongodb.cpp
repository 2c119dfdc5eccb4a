// MongoDB wire protocol (docs: "MongoDB Wire Protocol"): every message is a
// 16-byte header (messageLength, requestID, responseTo, opCode, all 32-bit
// little-endian) and its body. A refused OP_MSG or OP_QUERY never reaches
// the server: the relay answers it itself, as the server answers a command
// it refuses (an error document: ok 0, errmsg, code 13 "Unauthorized"),
// addressed to the request (responseTo), so that the driver raises it as the
// command's error and the connection goes on. A request sent with
// moreToCome expects no answer and gets none.
#include "db_relay/wire.h"

namespace ks::relay {

namespace {

constexpr uint32_t kOpReply = 1;
constexpr uint32_t kOpQuery = 2004;
constexpr uint32_t kOpMsg = 2013;
constexpr uint32_t kMoreToCome = 1u << 1;
constexpr uint32_t kHeader = 16;

void put_cstring(std::string& s, std::string_view v) {
    for (char c : v) s += c == '\0' ? ' ' : c;
    s += '\0';
}

void put_string(std::string& doc, std::string_view name, std::string_view value) {
    doc += '\x02';
    put_cstring(doc, name);
    std::string v;
    put_cstring(v, value);
    put_le32(doc, static_cast<uint32_t>(v.size()));
    doc += v;
}

}  // namespace

std::string mongodb_error_document(std::string_view message) {
    std::string text(message);
    while (!text.empty() && text.back() == '\n') text.pop_back();
    std::string e;
    e += '\x01';  // double
    put_cstring(e, "ok");
    e.append(8, '\0');  // 0.0
    put_string(e, "errmsg", text);
    e += '\x10';  // int32
    put_cstring(e, "code");
    put_le32(e, 13);
    put_string(e, "codeName", "Unauthorized");
    std::string doc;
    put_le32(doc, static_cast<uint32_t>(e.size() + 5));
    return doc + e + '\0';
}

namespace {

class MongoWire : public Wire {
  public:
    bool from_client(std::string& in, std::string& up, std::string& down,
                     const Judge& judge) override {
        size_t at = 0;
        bool ok = true;
        while (in.size() - at >= kHeader) {
            uint32_t len = get_le(in, at);
            if (len < kHeader || len > kMaxRequest) {
                ok = fail("a message of " + std::to_string(len) + " bytes");
                break;
            }
            if (in.size() - at < len) break;
            std::string_view msg(in.data() + at, len);
            Verdict v = judge(Request{0, msg});
            if (v.later) break;
            if (!v.refuse) {
                up.append(msg);
            } else {
                uint32_t op = get_le(in, at + 12);
                bool more = op == kOpMsg && len >= 20 && (get_le(in, at + 16) & kMoreToCome);
                if (!more) {
                    std::string r = reply(get_le(in, at + 4), op, v.message);
                    tell_client(r, down);
                }
            }
            at += len;
        }
        in.erase(0, at);
        return ok;
    }

    bool from_server(std::string& in, std::string& down) override {
        size_t at = 0;
        while (next_server_message(in, at, down)) {
            if (in.size() - at < 4) break;
            uint32_t len = get_le(in, at);
            if (len < kHeader) {
                in.erase(0, at);
                return fail("the server sent a message of " + std::to_string(len) + " bytes");
            }
            pass_down_ = len;
        }
        in.erase(0, at);
        return true;
    }

  private:
    // The answer to a refused request: OP_MSG for OP_MSG, OP_REPLY for the
    // legacy OP_QUERY (drivers still send their first handshake that way).
    std::string reply(uint32_t request_id, uint32_t op, std::string_view message) {
        std::string doc = mongodb_error_document(message);
        std::string body;
        uint32_t reply_op = kOpMsg;
        if (op == kOpQuery) {
            reply_op = kOpReply;
            put_le32(body, 0);     // responseFlags
            body.append(8, '\0');  // cursorID
            put_le32(body, 0);     // startingFrom
            put_le32(body, 1);     // numberReturned
            body += doc;
        } else {
            put_le32(body, 0);  // flagBits
            body += '\0';       // section kind 0: the body document
            body += doc;
        }
        std::string m;
        put_le32(m, static_cast<uint32_t>(kHeader + body.size()));
        put_le32(m, next_id_++);
        put_le32(m, request_id);
        put_le32(m, reply_op);
        return m + body;
    }

    uint32_t next_id_ = 0x6b730000;
};

}  // namespace

std::unique_ptr<Wire> make_mongodb_wire() { return std::make_unique<MongoWire>(); }

}  // namespace ks::relay
