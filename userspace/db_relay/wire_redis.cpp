// Redis serialization protocol: a command is an array of bulk strings
// ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n") or an inline line ("PING\r\n"); clients
// pipeline them and the server answers in order.
#include <charconv>

#include "db_relay/wire.h"

namespace ks::relay {

namespace {

// How long the command at the front of in is: 0 when it is not all there,
// -1 when it is not RESP.
long command_length(std::string_view in) {
    if (in.empty()) return 0;
    auto line = [&](size_t from, long& value) -> long {
        size_t end = in.find("\r\n", from);
        if (end == std::string_view::npos) return in.size() - from > 32 ? -1 : 0;
        auto [p, ec] = std::from_chars(in.data() + from, in.data() + end, value);
        if (ec != std::errc() || p != in.data() + end) return -1;
        return static_cast<long>(end + 2);
    };
    if (in[0] != '*') {
        size_t nl = in.find('\n');
        if (nl == std::string_view::npos) return in.size() > kMaxRequest ? -1 : 0;
        return static_cast<long>(nl + 1);
    }
    long count = 0;
    long at = line(1, count);
    if (at <= 0) return at;
    if (count < 0 || count > 1024 * 1024) return -1;
    for (long i = 0; i < count; ++i) {
        if (static_cast<size_t>(at) >= in.size()) return 0;
        if (in[at] != '$') return -1;
        long len = 0;
        long next = line(at + 1, len);
        if (next <= 0) return next;
        if (len < 0 || static_cast<size_t>(len) > kMaxRequest) return -1;
        at = next + len + 2;
        if (static_cast<size_t>(at) > in.size()) return 0;
        if (in.substr(at - 2, 2) != "\r\n") return -1;
    }
    return at;
}

class RedisWire : public Wire {
  public:
    explicit RedisWire(std::string token) : stand_in_("KILLSWITCH_REFUSED_" + std::move(token)) {}

    bool from_client(std::string& in, std::string& up, std::string&, const Judge& judge) override {
        size_t at = 0;
        bool ok = true;
        while (at < in.size()) {
            long n = command_length(std::string_view(in).substr(at));
            if (n < 0) {
                ok = fail("a request that is not RESP");
                break;
            }
            if (n == 0) {
                if (in.size() - at > kMaxRequest)
                    ok = fail("a command over the size the relay reads");
                break;
            }
            std::string_view cmd(in.data() + at, static_cast<size_t>(n));
            Verdict v = judge(Request{0, cmd});
            if (v.later) break;
            if (!v.refuse) {
                up.append(cmd);
            } else {
                // Answered by the server in its place: "unknown command".
                pending_.push_back(std::move(v.message));
                up += "*1\r\n$" + std::to_string(stand_in_.size()) + "\r\n" + stand_in_ + "\r\n";
            }
            at += static_cast<size_t>(n);
        }
        in.erase(0, at);
        return ok;
    }

    // The server's answers are passed unread, except for the error that
    // names the stand-in, which becomes killswitch's. While one is awaited,
    // the last bytes are kept back until it is clear they do not begin it.
    bool from_server(std::string& in, std::string& down) override {
        while (!pending_.empty()) {
            size_t hit = in.find(stand_in_);
            if (hit == std::string::npos) break;
            // "-ERR unknown command 'NAME'..." (quotes differ by version)
            size_t lo = hit > kLineHead ? hit - kLineHead : 0;
            size_t start = in.rfind("\r\n-", hit);
            if (start != std::string::npos && start >= lo)
                start += 2;
            else if (hit < kLineHead && in[0] == '-' && at_reply_start_)
                start = 0;
            else
                return fail("the server's answer to a refused command was not its error");
            size_t end = in.find("\r\n", hit);
            if (end == std::string::npos) {
                down.append(in, 0, start);
                in.erase(0, start);
                return true;
            }
            down.append(in, 0, start);
            down += redis_error(pending_.front());
            pending_.pop_front();
            in.erase(0, end + 2);
            at_reply_start_ = true;
            sent_tail_ = "\r\n";
        }
        size_t keep = pending_.empty() ? 0 : std::min(in.size(), stand_in_.size() + kLineHead);
        size_t out = in.size() - keep;
        if (out > 0) {
            sent_tail_ = (sent_tail_ + in.substr(out >= 2 ? out - 2 : 0, std::min<size_t>(out, 2)));
            sent_tail_ =
                sent_tail_.substr(sent_tail_.size() - std::min<size_t>(sent_tail_.size(), 2));
            at_reply_start_ = sent_tail_ == "\r\n";
        }
        down.append(in, 0, out);
        in.erase(0, out);
        return true;
    }

  private:
    static constexpr size_t kLineHead = 64;  // the error's text before the name, at most
    std::string stand_in_;
    bool at_reply_start_ = true;  // what was passed so far ends a line
    std::string sent_tail_;       // its last two bytes
};

}  // namespace

std::string redis_error(std::string_view msg) {
    std::string text(msg);
    while (!text.empty() && text.back() == '\n') text.pop_back();
    // One line: each run of line breaks becomes a space.
    std::string line;
    for (char c : text) {
        bool brk = c == '\r' || c == '\n';
        if (!brk)
            line += c;
        else if (line.empty() || line.back() != ' ')
            line += ' ';
    }
    text = line;
    // "killswitch: refused ..." -> "-ERR killswitch: refused ..."
    return "-ERR " + text + "\r\n";
}

std::unique_ptr<Wire> make_redis_wire(std::string token) {
    return std::make_unique<RedisWire>(std::move(token));
}

std::unique_ptr<Wire> make_postgres_wire(std::string token);
std::unique_ptr<Wire> make_mysql_wire();
std::unique_ptr<Wire> make_mongodb_wire();

std::unique_ptr<Wire> make_wire(Protocol p, std::string token) {
    switch (p) {
        case Protocol::Postgres:
            return make_postgres_wire(std::move(token));
        case Protocol::Mysql:
            return make_mysql_wire();
        case Protocol::Redis:
            return make_redis_wire(std::move(token));
        case Protocol::Mongodb:
            return make_mongodb_wire();
    }
    return nullptr;
}

}  // namespace ks::relay
