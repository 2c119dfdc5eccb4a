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
constexpr size_t kProbeRowsKept = 8;  // per result of a probe
// The largest Bind a Parse waits for, to be judged with its values.
constexpr uint32_t kBindRead = 64 * 1024;

std::string message(char type, const std::string& body) {
    std::string m(1, type);
    put_be32(m, static_cast<uint32_t>(body.size() + 4));
    return m + body;
}

class PgWire : public Wire {
  public:
    explicit PgWire(const std::string& token)
        : stand_in_("killswitch_refused_" + token), savepoint_("killswitch_check_" + token) {}

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
                uint32_t len = get_be32(in, at), code = get_be32(in, at + 4);
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
                    if (code != kCancelRequest) {
                        scope_.assign(in, at + 8, len - 8);  // user, database, options...
                        startup_ = false;
                        ++owed_;  // authentication ends with ReadyForQuery
                    }
                }
                at += len;
                continue;
            }
            if (in.size() - at < 5) break;
            char type = in[at];
            uint32_t len = get_be32(in, at + 1);
            if (len < 4) {
                ok = fail("a message of length " + std::to_string(len));
                break;
            }
            size_t total = size_t{len} + 1;
            if (type != 'Q' && type != 'P') {
                // Nothing to judge: passed on as it comes (COPY data, Bind...).
                pass_up_ = total;
                note_sent(type);
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
            Request req{static_cast<uint8_t>(type), sql};
            if (type == 'P') {
                // The Bind that came with it, if one did (drivers send Parse,
                // Bind, Describe, Execute and Sync at once): the values, for
                // a probe of what the statement would reach.
                // A large Bind (bulk data) is not waited for.
                size_t b = at + total;
                if (in.size() - b >= 5 && in[b] == 'B') {
                    uint32_t blen = get_be32(in, b + 1);
                    bool small = blen >= 4 && blen < kBindRead;
                    if (small && in.size() - b < size_t{blen} + 1) break;  // on its way
                    if (small)
                        req.bound = bind_values(std::string_view(in.data() + b + 5, blen - 4), name,
                                                req.params);
                }
            }
            Verdict v = judge(req);
            if (v.later) break;
            note_sent(type);
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
        while (next_server_message(in, at, down)) {
            if (in.size() - at < 5) break;
            char type = in[at];
            uint32_t len = get_be32(in, at + 1);
            if (len < 4) {
                in.erase(0, at);
                return fail("the server sent a message of length " + std::to_string(len));
            }
            size_t total = size_t{len} + 1;
            if (checking_) {
                if (in.size() - at < total) break;
                if (probing_)
                    probe_answer(type, std::string_view(in.data() + at, total), down);
                else
                    check_answer(type, std::string_view(in.data() + at, total), down);
                at += total;
                continue;
            }
            if (type == 'Z') {
                // ReadyForQuery: one answer less owed; the transaction status.
                if (in.size() - at < total) break;
                if (owed_ > 0) --owed_;
                if (total >= 6) tx_ = in[at + 5];
            }
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

    [[nodiscard]] std::string scope() const override { return scope_; }

    bool notice(std::string_view text, std::string& down) override {
        tell_client(pg_notice_response(text), down);
        return true;
    }

    CheckReady can_check(std::string& why) override {
        if (tx_ == 'E') {
            why = "the client's transaction has already failed";
            return CheckReady::Never;
        }
        if (batch_open_) {
            // A Parse behind extended-query messages already sent: the
            // server owes nothing before their Sync, which waits behind it.
            why = "it comes in the middle of an extended-query batch, before its Sync";
            return CheckReady::Never;
        }
        if (startup_ || owed_ > 0 || pass_down_ > 0) return CheckReady::NotYet;
        return CheckReady::Now;
    }

    void start_check(const std::vector<std::string>& tables, std::string& up) override {
        to_check_.assign(tables.begin(), tables.end());
        checked_.clear();
        checking_ = true;
        send_check(up);
    }

    std::optional<std::vector<RowCheck>> take_checks() override {
        if (checking_ || !checks_done_ || probing_) return std::nullopt;
        checks_done_ = false;
        return std::move(checked_);
    }

    void start_probe(const std::string& sql, std::string& up) override {
        probe_ = {};
        rows_.clear();
        probing_ = checking_ = true;
        probe_done_ = recovering_ = false;
        wrapper_seen_ = false;
        probe_in_block_ = tx_ == 'T';
        err_code_.clear();
        err_text_.clear();
        // A new line before each ';' of the relay's: the last statement may
        // end in a -- comment.
        std::string q = tx_ == 'T' ? "SAVEPOINT " + savepoint_ + ";\n" + sql +
                                         "\n;ROLLBACK TO SAVEPOINT " + savepoint_ +
                                         ";RELEASE SAVEPOINT " + savepoint_
                                   : "BEGIN;\n" + sql + "\n;ROLLBACK";
        up += message('Q', q + std::string(1, '\0'));
    }

    std::optional<ProbeAnswer> take_probe() override {
        if (!probe_done_) return std::nullopt;
        probe_done_ = false;
        return std::move(probe_);
    }

  private:
    // A Bind's body (after type and length) for statement `name`: its
    // values when they are all in text format.
    static bool bind_values(std::string_view body, const std::string& name,
                            std::vector<std::optional<std::string>>& values) {
        auto portal_end = body.find('\0');
        if (portal_end == std::string_view::npos) return false;
        auto stmt_end = body.find('\0', portal_end + 1);
        if (stmt_end == std::string_view::npos ||
            body.substr(portal_end + 1, stmt_end - portal_end - 1) != name)
            return false;
        size_t i = stmt_end + 1;
        auto u16 = [&](size_t at) -> std::optional<uint16_t> {
            if (at + 2 > body.size()) return std::nullopt;
            return static_cast<uint16_t>(static_cast<uint8_t>(body[at]) << 8 |
                                         static_cast<uint8_t>(body[at + 1]));
        };
        auto nfmt = u16(i);
        if (!nfmt) return false;
        i += 2;
        for (uint16_t k = 0; k < *nfmt; ++k, i += 2) {
            auto f = u16(i);
            if (!f || *f != 0) return false;  // binary: not read here
        }
        auto n = u16(i);
        if (!n) return false;
        i += 2;
        values.clear();
        for (uint16_t k = 0; k < *n; ++k) {
            if (i + 4 > body.size()) return false;
            std::string four(body.substr(i, 4));
            uint32_t len = get_be32(four, 0);
            i += 4;
            if (len == 0xffffffffu) {
                values.emplace_back(std::nullopt);
                continue;
            }
            if (i + len > body.size()) return false;
            values.emplace_back(std::string(body.substr(i, len)));
            i += len;
        }
        return true;
    }

    void note_sent(char type) {
        switch (type) {
            case 'Q':
            case 'F':
                ++owed_;
                break;
            case 'S':
                ++owed_;
                batch_open_ = false;
                break;
            case 'P':
            case 'B':
            case 'E':
            case 'D':
            case 'C':
            case 'H':
                batch_open_ = true;
                break;
            default:
                break;
        }
    }

    // Back to the client's transaction as it was before the relay's savepoint.
    [[nodiscard]] std::string undo_savepoint() const {
        return "ROLLBACK TO SAVEPOINT " + savepoint_ + "; RELEASE SAVEPOINT " + savepoint_;
    }

    // One table: in a transaction block, inside a savepoint of the relay's.
    void send_check(std::string& up) {
        const std::string& t = to_check_.front();
        std::string sql = "SELECT 1 FROM " + t + " LIMIT 1";
        if (tx_ == 'T')
            sql = "SAVEPOINT " + savepoint_ + "; " + sql + "; RELEASE SAVEPOINT " + savepoint_;
        up += message('Q', sql + std::string(1, '\0'));
        saw_row_ = false;
        recovering_ = false;
        err_code_.clear();
        err_text_.clear();
    }

    void check_answer(char type, std::string_view msg, std::string& down) {
        switch (type) {
            case 'D':
                saw_row_ = true;
                return;
            case 'E':
                if (!recovering_) read_error(msg);
                return;
            case 'A':  // a notification, a notice, a parameter: the client's
            case 'N':
            case 'S':
                down.append(msg);
                return;
            case 'Z':
                break;
            default:
                return;  // RowDescription, CommandComplete...
        }
        char status = msg.size() >= 6 ? msg[5] : 'I';
        if (recovering_) {
            // Back to where the client was (or, should even that fail, the
            // client's transaction reads as failed, which it will see).
            tx_ = status;
            next_check();
            return;
        }
        RowCheck r;
        r.table = to_check_.front();
        if (!err_code_.empty()) {
            // 42P01 undefined_table, 3F000 invalid_schema_name: nothing to lose.
            r.outcome = err_code_ == "42P01" || err_code_ == "3F000" ? RowCheck::Outcome::Missing
                                                                     : RowCheck::Outcome::Failed;
            r.detail = err_text_;
        } else {
            r.outcome = saw_row_ ? RowCheck::Outcome::Rows : RowCheck::Outcome::Empty;
        }
        checked_.push_back(std::move(r));
        if (!err_code_.empty() && status == 'E') {
            // The check failed inside the client's transaction block: undo it.
            recovering_ = true;
            more_up_ += message('Q', undo_savepoint() + std::string(1, '\0'));
            return;
        }
        tx_ = status;
        next_check();
    }

    // The probe's answers: results kept for the daemon, notices (ANALYZE's
    // warnings) dropped, the client's notifications passed on; COPY FROM
    // STDIN in it is failed (there is no data to send).
    void probe_answer(char type, std::string_view msg, std::string& down) {
        switch (type) {
            case 'D':
                // The probe's own queries answer one row each; a statement of
                // the client's before them may answer millions, never kept.
                if (rows_.size() < kProbeRowsKept) rows_.push_back(data_row(msg));
                return;
            case 'C':
            case 'I': {
                std::string tag;
                if (type == 'C' && msg.size() > 5) tag = std::string(msg.substr(5));
                while (!tag.empty() && tag.back() == '\0') tag.pop_back();
                if (!wrapper_seen_)
                    wrapper_seen_ = true;  // the relay's BEGIN or SAVEPOINT
                else if (!recovering_)
                    probe_.results.push_back({std::move(tag), std::move(rows_)});
                rows_.clear();
                return;
            }
            case 'E':
                if (!recovering_ && err_code_.empty()) read_error(msg);
                return;
            case 'G':
            case 'W':
                more_up_ +=
                    message('f', "killswitch: no COPY data during a check" + std::string(1, '\0'));
                return;
            case 'A':
            case 'S':
                down.append(msg);
                return;
            case 'Z':
                break;
            default:
                return;  // RowDescription, NoticeResponse, COPY out data...
        }
        char status = msg.size() >= 6 ? msg[5] : 'I';
        if (!recovering_ && status == 'E') {
            // Stopped by an error inside the relay's block or savepoint.
            recovering_ = true;
            more_up_ +=
                message('Q', (probe_in_block_ ? undo_savepoint() : std::string("ROLLBACK")) +
                                 std::string(1, '\0'));
            return;
        }
        tx_ = status;
        probe_.code = err_code_;
        probe_.message = err_text_;
        probing_ = checking_ = recovering_ = false;
        probe_done_ = true;
    }

    static std::vector<std::string> data_row(std::string_view msg) {
        std::vector<std::string> row;
        if (msg.size() < 7) return row;
        size_t n = (static_cast<uint8_t>(msg[5]) << 8) | static_cast<uint8_t>(msg[6]);
        size_t i = 7;
        for (size_t k = 0; k < n && i + 4 <= msg.size(); ++k) {
            std::string four(msg.substr(i, 4));
            uint32_t len = get_be32(four, 0);
            i += 4;
            if (len == 0xffffffffu) {
                row.emplace_back();
                continue;
            }
            if (i + len > msg.size()) break;
            row.emplace_back(msg.substr(i, len));
            i += len;
        }
        return row;
    }

    void next_check() {
        to_check_.pop_front();
        if (to_check_.empty()) {
            checking_ = false;
            checks_done_ = true;
            return;
        }
        send_check(more_up_);
    }

    void read_error(std::string_view msg) {
        // Fields after the 5-byte header: a code byte, a NUL-ended string.
        size_t i = 5;
        while (i < msg.size() && msg[i] != '\0') {
            char code = msg[i++];
            size_t end = msg.find('\0', i);
            if (end == std::string_view::npos) break;
            if (code == 'C') err_code_ = std::string(msg.substr(i, end - i));
            if (code == 'M') err_text_ = std::string(msg.substr(i, end - i));
            i = end + 1;
        }
        if (err_code_.empty()) err_code_ = "?";
    }

    std::string stand_in_, savepoint_;
    bool startup_ = true;
    std::string scope_;
    // What the server still owes the client: a ReadyForQuery for each Query,
    // Sync and FunctionCall passed (and for the startup). batch_open_: an
    // extended-query message passed since the last Sync.
    int owed_ = 0;
    bool batch_open_ = false;
    char tx_ = 'I';  // the last ReadyForQuery's status: I, T (in a block), E (failed)
    // Row checks under way.
    bool checking_ = false, checks_done_ = false, saw_row_ = false, recovering_ = false;
    std::deque<std::string> to_check_;
    std::vector<RowCheck> checked_;
    std::string err_code_, err_text_;
    // A probe under way (checking_ too). probe_in_block_: sent inside the
    // client's transaction block, in a savepoint.
    bool probing_ = false, probe_done_ = false, probe_in_block_ = false, wrapper_seen_ = false;
    ProbeAnswer probe_;
    std::vector<std::vector<std::string>> rows_;
    size_t pass_up_ = 0;  // bytes of a client message still to pass unread
};

}  // namespace

namespace {

// ErrorResponse and NoticeResponse fields: severity, SQLSTATE, the first line
// as the message, the rest as the hint (psql prints HINT:).
std::string pg_fields(std::string_view msg, const char* severity, const char* code) {
    std::string text(msg);
    while (!text.empty() && text.back() == '\n') text.pop_back();
    std::string first = text, rest;
    if (auto nl = text.find('\n'); nl != std::string::npos) {
        first = text.substr(0, nl);
        rest = text.substr(nl + 1);
    }
    std::string body;
    auto field = [&](char c, const std::string& value) {
        body += c;
        for (char ch : value) body += ch == '\0' ? ' ' : ch;
        body += '\0';
    };
    field('S', severity);
    field('V', severity);
    field('C', code);
    field('M', first);
    if (!rest.empty()) field('H', rest);
    body += '\0';
    return body;
}

}  // namespace

std::string pg_notice_response(std::string_view msg) {
    return message('N', pg_fields(msg, "NOTICE", "01000"));  // warning
}

std::string pg_error_response(std::string_view msg) {
    return message('E', pg_fields(msg, "ERROR", "42501"));  // insufficient_privilege
}

std::unique_ptr<Wire> make_postgres_wire(std::string token) {
    return std::make_unique<PgWire>(token);
}

}  // namespace ks::relay
