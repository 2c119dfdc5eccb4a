// The database protocols as the relay speaks them: where each request of a
// client's stream begins and ends, which ones carry a statement to judge,
// and how a refused one is answered in the protocol's own terms so that the
// client reads an error and the connection stays usable.
//
// Pure byte handling, no sockets: the relay (relay.h) feeds each direction's
// bytes in as they arrive and writes out what comes back.
//
//   PostgreSQL  a refused Query or Parse is replaced by a statement the
//               server rejects as a syntax error (so the server itself keeps
//               the order of the answers, ends the transaction block and
//               skips to the next Sync as it would for any error); that
//               error is rewritten on its way back into an ErrorResponse
//               with SQLSTATE 42501 and killswitch's message. SSLRequest and
//               GSSENCRequest are answered 'N': the client goes on in clear
//               text to the relay, which reads every statement.
//   MySQL       a refused COM_QUERY or COM_STMT_PREPARE never reaches the
//               server; the relay answers with an ERR packet (1227, SQLSTATE
//               42000). TLS and compression are struck from the server's
//               greeting so that clients do not ask for them.
//   Redis       a refused command is replaced by an unknown command that the
//               server answers with an error in its place in the pipeline;
//               that error is rewritten into killswitch's -ERR.
//   MongoDB     a refused OP_MSG or OP_QUERY never reaches the server; the
//               relay answers it with an error document (code 13,
//               Unauthorized) addressed to the request.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ks::relay {

// One request that carries something to judge.
struct Request {
    // 'Q', 'P' or 'B' (PostgreSQL), the MySQL command byte; 0 for Redis.
    uint8_t type = 0;
    // SQL text, or the Redis command as sent (RESP or inline). For a
    // PostgreSQL Bind: the text of the statement it binds.
    std::string_view text;
    // A PostgreSQL Parse whose Bind came with it, or a Bind: the values of
    // its $n as text (binary values read back by their type; nullopt:
    // NULL). bound false: a Parse without its Bind (each of its Binds is
    // judged), or a Bind whose values could not be read (unread says why).
    bool bound = false;
    std::vector<std::optional<std::string>> params;
    std::string unread;
};

// What the judge says of a request. refuse: it never reaches the server and
// the client reads message (killswitch's words: what, the rule, how a person
// allows it) in the protocol's error. later: the judge answers later; the
// request stays unread at the front of the stream (and what follows it
// waits behind it) until the judge is asked again. check_rows (with later):
// first ask the server whether these tables have a row (Wire::start_check),
// then the judge again, with the answers. later with a message and no
// check_rows: the request is held for a person; the client is told so where
// the protocol can say it before the answer (Wire::notice), and the judge
// answers when the person has decided.
// The unique keys (column names, as the server spells them) of tables, by
// the table as written in the statements: what the daemon learned from
// probes (databases.effect), kept by the relay for every connection of the
// same scope (Wire::scope) for a while.
using UniqueKeys = std::map<std::string, std::vector<std::vector<std::string>>>;

struct Verdict {
    bool refuse = false;
    std::string message;
    bool later = false;
    std::vector<std::string> check_rows;
    // probe (with later): first run these statements on the client's
    // connection in a transaction block or savepoint of the relay's that is
    // always rolled back (Wire::start_probe), then the judge again, with
    // what they answered (databases.effect: EXPLAIN of a DELETE or UPDATE).
    std::string probe;
    int probe_round = 0;  // echoed in ProbeAnswer::round
    // The unique keys a probe showed, for the connection's next requests.
    UniqueKeys learned;
};

// What a probe's statements answered, in order: one result per statement
// that ran (the relay's own BEGIN or SAVEPOINT left out; its ROLLBACK may
// follow), each the command tag and the rows, every column as text. code and
// message: the server's error, when one stopped the probe there.
// not_asked: why the probe could not be sent at all.
struct ProbeAnswer {
    struct Result {
        std::string tag;
        std::vector<std::vector<std::string>> rows;
    };
    std::vector<Result> results;
    std::string code, message;
    std::string not_asked;
    // With not_asked: the server would refuse the request anyway (the
    // client's transaction has failed), so not knowing costs nothing.
    bool fails_anyway = false;
    int round = 0;  // Verdict::probe_round
};

// The server's answer, on the client's connection and in its transaction,
// to "has this table a row?".
struct RowCheck {
    enum class Outcome { Rows, Empty, Missing, Failed };
    std::string table;
    Outcome outcome = Outcome::Failed;
    std::string detail;  // the server's error, or why it could not be asked
};

using Judge = std::function<Verdict(const Request&)>;

// Integers as the protocols write them: n bytes from `at`, little-endian
// (MySQL's 3-byte lengths, MongoDB) or big-endian (PostgreSQL).
inline uint32_t get_le(const std::string& s, size_t at, int n = 4) {
    uint32_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = v << 8 | static_cast<uint8_t>(s[at + i]);
    return v;
}
inline uint32_t get_be32(const std::string& s, size_t at) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = v << 8 | static_cast<uint8_t>(s[at + i]);
    return v;
}
inline void put_le32(std::string& s, uint32_t v) {
    for (int shift = 0; shift < 32; shift += 8) s += static_cast<char>((v >> shift) & 0xff);
}
inline void put_be32(std::string& s, uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) s += static_cast<char>((v >> shift) & 0xff);
}

// Passes on what is there of a message that carries nothing to judge:
// remaining bytes of it, from in at `at`. True when all of it has passed.
inline bool pass_on(const std::string& in, size_t& at, size_t& remaining, std::string& out) {
    size_t n = std::min(remaining, in.size() - at);
    out.append(in, at, n);
    at += n;
    remaining -= n;
    return remaining == 0;
}

class Wire {
  public:
    virtual ~Wire() = default;
    // Client -> server. Takes whole requests from the front of in (a request
    // not all there yet stays, except bytes that carry nothing to judge,
    // which are passed on as they come); appends what goes on to the server
    // to up, and what the relay answers itself to down. False: the stream
    // cannot be read (error says why); the connection is closed.
    virtual bool from_client(std::string& in, std::string& up, std::string& down,
                             const Judge& judge) = 0;
    // Server -> client: takes from in, appends to down.
    virtual bool from_server(std::string& in, std::string& down) = 0;
    // Row checks (PostgreSQL; other protocols: Never). Now: the server owes
    // the client nothing and no batch is open, so a check's answers are the
    // relay's alone; NotYet: answers are on their way (the wire may have
    // put in more_up what gets it there: PostgreSQL ends a batch in which
    // nothing ran with a Sync of its own); Never: why says why.
    // Failing: never, and the request would fail at the server anyway.
    enum class CheckReady { Now, NotYet, Never, Failing };
    virtual CheckReady can_check(std::string& why) {
        why = "the protocol has no way to ask";
        return CheckReady::Never;
    }
    // Sends the checks, one after another, each in a savepoint inside a
    // transaction block (so that an error leaves the client's transaction as
    // it was); from_server keeps their answers from the client.
    virtual void start_check(const std::vector<std::string>& /*tables*/, std::string& /*up*/) {}
    // The answers, once all came back.
    virtual std::optional<std::vector<RowCheck>> take_checks() { return std::nullopt; }
    // Sends a probe (Verdict::probe) when can_check says Now: BEGIN; sql;
    // ROLLBACK outside a transaction block, or between SAVEPOINT and
    // ROLLBACK TO SAVEPOINT inside one, so that whatever the statements do
    // is undone and the client's transaction is as it was (an error is
    // rolled back too). from_server keeps their answers from the client.
    virtual void start_probe(const std::string& /*sql*/, std::string& /*up*/) {}
    virtual std::optional<ProbeAnswer> take_probe() { return std::nullopt; }
    // Tells the client something before its answer (PostgreSQL: a
    // NoticeResponse, which clients print or log as it comes). False where
    // the protocol has no such message.
    virtual bool notice(std::string_view /*message*/, std::string& /*down*/) { return false; }
    // What decides how the connection's names resolve, once the client has
    // said it (PostgreSQL: the startup message's user, database and
    // options): connections to one server with the same scope share what
    // probes learned of its tables' unique keys. Empty: nothing shared.
    [[nodiscard]] virtual std::string scope() const { return {}; }
    // What the wire itself sends the server while checking (the next check),
    // to be appended to the server's stream after from_server.
    void more_up(std::string& up) {
        up += more_up_;
        more_up_.clear();
    }
    // Refused requests whose answer has not come back yet (tests).
    [[nodiscard]] size_t pending() const { return pending_.size(); }
    [[nodiscard]] const std::string& error() const { return error_; }

  protected:
    // Server -> client, a message at a time: passes on what is left of the
    // message under way and, at a boundary, what the relay itself has for
    // the client (tell_client). True at a boundary: the next message starts
    // at `at`; false while the one under way waits for more bytes.
    bool next_server_message(const std::string& in, size_t& at, std::string& down) {
        if (pass_down_ > 0 && !pass_on(in, at, pass_down_, down)) return false;
        down += to_client_;
        to_client_.clear();
        return true;
    }
    // The relay's own words for the client: now, or once the server's
    // message under way has passed (never inside it).
    void tell_client(const std::string& bytes, std::string& down) {
        (pass_down_ > 0 ? to_client_ : down) += bytes;
    }
    bool fail(std::string why) {
        error_ = std::move(why);
        return false;
    }
    std::deque<std::string> pending_;  // messages of refusals awaiting their answer
    std::string error_;
    std::string more_up_;
    size_t pass_down_ = 0;   // bytes of a server message still to pass unread
    std::string to_client_;  // the relay's own, after that message
};

enum class Protocol { Postgres, Mysql, Redis, Mongodb };

// token: unique to the connection and unknown to the client, names the
// stand-in statements the server rejects for the relay.
std::unique_ptr<Wire> make_wire(Protocol p, std::string token);

// The longest request the relay reads whole (a statement, a Redis command).
// Anything longer is refused as too long to judge; bytes that carry no
// statement (COPY data, bound parameters, MySQL long data) are streamed and
// never count.
inline constexpr size_t kMaxRequest = 256u << 20;

// A PostgreSQL value in binary format (a Bind's), in its text form, for the
// common types by their OID (integers, floats, numeric, bool, text kinds,
// json/jsonb, bytea, uuid, date, time, timestamp[tz]); nullopt for other
// types or bytes that are not such a value.
std::optional<std::string> pg_binary_text(uint32_t oid, std::string_view bytes);

// The protocols' error answers, built from killswitch's message.
std::string pg_error_response(std::string_view message);
std::string pg_notice_response(std::string_view message);
std::string mysql_err_packet(uint8_t seq, std::string_view message);
std::string redis_error(std::string_view message);
// {ok: 0, errmsg: message, code: 13, codeName: "Unauthorized"}, as BSON.
std::string mongodb_error_document(std::string_view message);

}  // namespace ks::relay
