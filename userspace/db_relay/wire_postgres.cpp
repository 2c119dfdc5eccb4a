// PostgreSQL frontend/backend protocol v3 (docs: "Message Flow", "Message
// Formats"): every message after the startup is a type byte and a 32-bit
// big-endian length that counts itself.
#include <algorithm>
#include <cstring>

#include "db_relay/wire.h"

namespace ks::relay {

namespace {

constexpr uint32_t kSslRequest = 80877103;
constexpr uint32_t kGssEncRequest = 80877104;
constexpr uint32_t kCancelRequest = 80877102;
constexpr uint32_t kMaxStartup = 10000;
constexpr size_t kProbeRowsKept = 8;  // per result of a probe
// The largest Bind the relay reads whole, to judge its statement with its
// values (a larger one is judged without them).
constexpr uint32_t kBindRead = 1u << 20;
// Statements whose Binds are judged (prepared DELETE/UPDATE), most per
// connection, and the longest names a Bind may start with.
constexpr size_t kMaxPrepared = 4096;
constexpr size_t kMaxNames = 8192;
// Describe and Close carry a name only.
constexpr uint32_t kMaxSmall = 64 * 1024;

// A statement whose Binds may need judging: one that can DELETE or UPDATE
// (MERGE's actions, writable CTEs), as any spelling of those keywords has
// these letters.
bool binds_judged(std::string_view sql) {
    auto has = [&](std::string_view word) {
        return std::search(sql.begin(), sql.end(), word.begin(), word.end(), [](char a, char b) {
                   return (a >= 'A' && a <= 'Z' ? a + 32 : a) == b;
               }) != sql.end();
    };
    return has("delete") || has("update");
}

std::string message(char type, const std::string& body) {
    std::string m(1, type);
    put_be32(m, static_cast<uint32_t>(body.size() + 4));
    return m + body;
}

class PgWire : public Wire {
    // A prepared statement whose Binds the relay may judge: the unnamed one
    // (kept for after the relay's own queries end it) and those that can
    // DELETE or UPDATE. types: its parameters' OIDs, from the Parse or the
    // server's ParameterDescription.
    struct Prepared {
        std::string text;
        std::vector<uint32_t> types;
        bool judge_binds = false;
    };
    // A Parse sent, its ParseComplete not seen yet. injected: the relay's
    // own (the unnamed statement parsed again), whose answer the client
    // never sees.
    struct Parsing {
        std::string name;
        Prepared st;
        bool injected = false;
    };

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
            if (skip_up_ > 0) {
                // A refused Bind: the rest of it never reaches the server.
                size_t n = std::min(skip_up_, in.size() - at);
                at += n;
                skip_up_ -= n;
                if (skip_up_ > 0) break;
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
            if (type == 'B') {
                Step step = bind(in, at, total, up, judge);
                if (step == Step::Fail) ok = false;
                if (step != Step::Done) break;
                continue;
            }
            if (type == 'D' || type == 'C') {
                // Describe and Close of a statement: what the server will
                // say it takes, and which statement no longer is.
                if (total > kMaxSmall) {
                    ok = fail("a Describe or Close of " + std::to_string(total) + " bytes");
                    break;
                }
                if (in.size() - at < total) break;
                if (total >= 7) {
                    std::string name(in.data() + at + 6, total - 7);
                    if (auto nul = name.find('\0'); nul != std::string::npos) name.resize(nul);
                    if (type == 'D' && in[at + 5] == 'S') describing_.push_back(name);
                    if (type == 'C')
                        closing_.push_back(in[at + 5] == 'S' ? std::optional(name) : std::nullopt);
                }
                up.append(in, at, total);
                note_sent(type);
                at += total;
                continue;
            }
            if (type != 'Q' && type != 'P') {
                // Nothing to judge: passed on as it comes (COPY data...).
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
            Prepared parsed;
            if (type == 'P') {
                auto nul = body.find('\0');
                if (nul == std::string_view::npos) {
                    ok = fail("a Parse message without its statement name");
                    break;
                }
                name = std::string(body.substr(0, nul));
                sql = body.substr(nul + 1);
                parsed.types = parse_types(sql);
            }
            if (auto nul = sql.find('\0'); nul != std::string_view::npos) sql = sql.substr(0, nul);
            Request req{static_cast<uint8_t>(type), sql};
            bool with_bind = false;
            if (type == 'P') {
                // The Bind that came with it, if one did (drivers send Parse,
                // Bind, Describe, Execute and Sync at once): the statement
                // is judged with its values, and that Bind is not again.
                size_t b = at + total;
                if (in.size() - b >= 5 && in[b] == 'B') {
                    uint32_t blen = get_be32(in, b + 1);
                    bool small = blen >= 4 && blen < kBindRead;
                    if (small && in.size() - b < size_t{blen} + 1) break;  // on its way
                    if (small && bind_names(std::string_view(in.data() + b + 5, blen - 4))
                                         .value_or(BindNames{.statement = "\1"})
                                         .statement == name) {
                        req.bound = bind_values(std::string_view(in.data() + b + 5, blen - 4),
                                                parsed.types, req.params, req.unread);
                        // Values not read: the Bind is judged on its own, after.
                        with_bind = req.bound;
                    }
                }
            }
            parsed.judge_binds = type == 'P' && binds_judged(sql);
            Verdict v;
            if (parsed.judge_binds && following() >= kMaxPrepared) {
                v.refuse = true;
                v.message = "killswitch: refused: this connection has " +
                            std::to_string(kMaxPrepared) +
                            " prepared statements that can DELETE or UPDATE, the most the relay "
                            "follows; close some first.\n";
            } else {
                v = judge(req);
                if (v.later) break;
            }
            note_sent(type);
            if (type == 'Q') {
                // A simple Query ends the unnamed statement.
                prepared_.erase("");
                unnamed_lost_ = false;
            } else {
                // The server drops its unnamed statement before it parses a
                // new one, whatever comes of it; a named one is known once
                // the server says ParseComplete.
                if (name.empty()) prepared_.erase("");
                unnamed_lost_ = false;
                bound_with_parse_ = with_bind ? std::optional(name) : std::nullopt;
            }
            if (!v.refuse) {
                up.append(in, at, total);
                if (type == 'P') {
                    if (parsed.judge_binds || name.empty()) parsed.text = std::string(sql);
                    parsing_.push_back({name, std::move(parsed), false});
                }
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
            if (type == '1' || type == '3' || type == 't') {
                // ParseComplete, CloseComplete, ParameterDescription: which
                // statements the server has, and their parameters' types.
                if (in.size() - at < total) break;
                if (answered(type, std::string_view(in.data() + at, total)))
                    down.append(in, at, total);
                at += total;
                continue;
            }
            if (type == 'Z') {
                // ReadyForQuery: one answer less owed; the transaction status.
                if (in.size() - at < total) break;
                if (owed_ > 0) --owed_;
                if (total >= 6) tx_ = in[at + 5];
                // What the batch left unanswered was skipped after an error.
                parsing_.clear();
                describing_.clear();
                closing_.clear();
                if (swallow_ready_ > 0) {
                    // The answer to the relay's own Sync (can_check).
                    --swallow_ready_;
                    at += total;
                    continue;
                }
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
            return CheckReady::Failing;
        }
        if (batch_open_ && batch_ran_) {
            // Behind extended-query messages that bound or ran a statement:
            // the server owes nothing before their Sync, which waits behind
            // the request, and a Sync of the relay's would end what they
            // began (commit it, drop the unnamed portal).
            why = "it comes in the middle of an extended-query batch, before its Sync";
            return CheckReady::Never;
        }
        if (startup_ || owed_ > 0 || pass_down_ > 0) return CheckReady::NotYet;
        if (batch_open_) {
            // Only statements parsed or described since the last Sync (as
            // asyncpg prepares: Parse, Describe, Flush): a Sync of the
            // relay's ends the batch, nothing having run in it; its
            // ReadyForQuery is not the client's.
            more_up_ += message('S', "");
            batch_open_ = false;
            ++owed_;
            ++swallow_ready_;
            return CheckReady::NotYet;
        }
        return CheckReady::Now;
    }

    void start_check(const std::vector<std::string>& tables, std::string& up) override {
        unnamed_lost_ = prepared_.count("") > 0;  // a Query ends it
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
        unnamed_lost_ = prepared_.count("") > 0;  // a Query ends it
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
    enum class Step { Done, Wait, Fail };

    // A Bind: passed on as it comes, unless it binds a statement whose
    // Binds are judged (and was not judged with its Parse); that one is
    // read whole, when it is not too large, and judged with its values.
    Step bind(std::string& in, size_t& at, size_t total, std::string& up, const Judge& judge) {
        size_t have = std::min(in.size() - at, total) - 5;
        std::string_view body(in.data() + at + 5, have);
        auto names = bind_names(body);
        if (!names) {
            if (have < total - 5 && have < kMaxNames) return Step::Wait;
            fail("a Bind message without its portal and statement names");
            return Step::Fail;
        }
        std::string portal(names->portal), name(names->statement);
        bool judged_with_parse = bound_with_parse_ && *bound_with_parse_ == name;
        const Prepared* st = find(name);
        if (!judged_with_parse && st && st->judge_binds) {
            Request req{'B', st->text};
            if (total - 5 > kBindRead) {
                req.unread = "its Bind is " + std::to_string(total) + " bytes, over the " +
                             std::to_string(kBindRead) + " the relay reads";
            } else {
                if (have < total - 5) return Step::Wait;
                req.bound = bind_values(body, st->types, req.params, req.unread);
            }
            Verdict v = judge(req);
            if (v.later) return Step::Wait;
            bound_with_parse_.reset();
            note_sent('B');
            if (v.refuse) {
                // A Bind of a statement that does not exist: the server's
                // error in its place, made ours on the way back; the rest of
                // the batch is skipped as after any error.
                pending_.push_back(std::move(v.message));
                up += message('B', portal + '\0' + stand_in_ + '\0' + std::string(6, '\0'));
                skip_up_ = total;
                return Step::Done;
            }
        } else {
            bound_with_parse_.reset();
            note_sent('B');
        }
        if (name.empty() && unnamed_lost_ && st) {
            // The relay's own Query (a probe, a check) ended the unnamed
            // statement: parsed again, its ParseComplete kept from the client.
            std::string b = std::string(1, '\0') + st->text + '\0';
            b += static_cast<char>(st->types.size() >> 8);
            b += static_cast<char>(st->types.size() & 0xff);
            for (uint32_t t : st->types) put_be32(b, t);
            up += message('P', b);
            parsing_.push_back({"", *st, true});
            unnamed_lost_ = false;
        }
        pass_up_ = total;
        return Step::Done;
    }

    // The statement a Bind's body (after type and length) names.
    // A Bind's body (after type and length) starts with its portal's and
    // its statement's names, each ended by a NUL.
    struct BindNames {
        std::string_view portal, statement;
        size_t end = 0;  // where the rest starts
    };
    static std::optional<BindNames> bind_names(std::string_view body) {
        auto portal_end = body.find('\0');
        if (portal_end == std::string_view::npos) return std::nullopt;
        auto stmt_end = body.find('\0', portal_end + 1);
        if (stmt_end == std::string_view::npos) return std::nullopt;
        return BindNames{body.substr(0, portal_end),
                         body.substr(portal_end + 1, stmt_end - portal_end - 1), stmt_end + 1};
    }

    // A Parse's parameter types, after its statement name: the text, then
    // their number and OIDs (0: for the server to infer).
    static std::vector<uint32_t> parse_types(std::string_view rest) {
        std::vector<uint32_t> types;
        auto nul = rest.find('\0');
        if (nul == std::string_view::npos || nul + 3 > rest.size()) return types;
        std::string tail(rest.substr(nul + 1));
        size_t n = static_cast<uint8_t>(tail[0]) << 8 | static_cast<uint8_t>(tail[1]);
        for (size_t k = 0; k < n && 2 + 4 * k + 4 <= tail.size(); ++k)
            types.push_back(get_be32(tail, 2 + 4 * k));
        return types;
    }

    // A Bind's body (after type and length): its values as text, binary
    // ones read back by the statement's parameter types. False (unread says
    // why) when a value cannot be read.
    static bool bind_values(std::string_view body, const std::vector<uint32_t>& types,
                            std::vector<std::optional<std::string>>& values, std::string& unread) {
        auto names = bind_names(body);
        unread = "its Bind message is cut short";
        if (!names) return false;
        size_t i = names->end;
        auto u16 = [&](size_t at) -> std::optional<uint16_t> {
            if (at + 2 > body.size()) return std::nullopt;
            return static_cast<uint16_t>(static_cast<uint8_t>(body[at]) << 8 |
                                         static_cast<uint8_t>(body[at + 1]));
        };
        auto nfmt = u16(i);
        if (!nfmt) return false;
        i += 2;
        std::vector<uint16_t> formats;
        for (uint16_t k = 0; k < *nfmt; ++k, i += 2) {
            auto f = u16(i);
            if (!f) return false;
            formats.push_back(*f);
        }
        auto n = u16(i);
        if (!n || (formats.size() > 1 && formats.size() != *n)) return false;
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
            std::string_view raw = body.substr(i, len);
            i += len;
            uint16_t format = formats.empty() ? 0 : formats.size() == 1 ? formats[0] : formats[k];
            if (format == 0) {
                values.emplace_back(std::string(raw));
                continue;
            }
            uint32_t oid = k < types.size() ? types[k] : 0;
            auto text = pg_binary_text(oid, raw);
            if (!text) {
                unread =
                    "its parameter $" + std::to_string(k + 1) + " is in binary format" +
                    (oid ? " of a type (OID " + std::to_string(oid) + ") the relay does not read"
                         : " of a type the server did not name");
                return false;
            }
            values.emplace_back(std::move(*text));
        }
        unread.clear();
        return true;
    }

    // The statement a Bind of `name` binds, as far as the relay knows: one
    // parsed and not answered yet, or one the server has.
    const Prepared* find(const std::string& name) const {
        for (auto it = parsing_.rbegin(); it != parsing_.rend(); ++it)
            if (it->name == name) return &it->st;
        auto it = prepared_.find(name);
        return it == prepared_.end() ? nullptr : &it->second;
    }

    // Statements whose Binds are judged, held or on their way.
    size_t following() const {
        size_t n = 0;
        for (const auto& [name, st] : prepared_) n += st.judge_binds;
        for (const auto& p : parsing_) n += p.st.judge_binds;
        return n;
    }

    // The server's answer about a statement; false when it answers the
    // relay's own message (not for the client).
    bool answered(char type, std::string_view msg) {
        if (type == '1') {
            if (parsing_.empty()) return true;
            Parsing p = std::move(parsing_.front());
            parsing_.pop_front();
            if (p.st.judge_binds || p.name.empty())
                prepared_[p.name] = std::move(p.st);
            else
                prepared_.erase(p.name);  // one the relay need not follow
            return !p.injected;
        }
        if (type == '3') {
            if (closing_.empty()) return true;
            if (closing_.front()) prepared_.erase(*closing_.front());
            closing_.pop_front();
            return true;
        }
        if (describing_.empty()) return true;
        auto it = prepared_.find(describing_.front());
        describing_.pop_front();
        if (it == prepared_.end() || msg.size() < 7) return true;
        std::string m(msg);
        size_t n = static_cast<uint8_t>(m[5]) << 8 | static_cast<uint8_t>(m[6]);
        if (m.size() < 7 + 4 * n) return true;
        it->second.types.clear();
        for (size_t k = 0; k < n; ++k) it->second.types.push_back(get_be32(m, 7 + 4 * k));
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
                batch_open_ = batch_ran_ = false;
                break;
            case 'B':
            case 'E':
                batch_open_ = batch_ran_ = true;
                break;
            case 'P':
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
    // batch_ran_: a Bind or Execute among them. swallow_ready_: Syncs of
    // the relay's own whose ReadyForQuery the client never sees.
    bool batch_ran_ = false;
    int swallow_ready_ = 0;
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
    size_t skip_up_ = 0;  // bytes of a refused Bind still to drop
    // Statements the server has (as the relay follows them), and what the
    // client asked that the server has not answered yet (up to a Sync).
    std::map<std::string, Prepared> prepared_;
    std::deque<Parsing> parsing_;
    std::deque<std::string> describing_;              // Describe of a statement
    std::deque<std::optional<std::string>> closing_;  // Close (nullopt: of a portal)
    std::optional<std::string> bound_with_parse_;     // the next Bind was judged with it
    bool unnamed_lost_ = false;                       // ended by the relay's own Query
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
