// MongoDB: OP_MSG and OP_QUERY messages read with libbson. The command is the
// first key of the body document; the documents of delete and update may be
// in the body ("deletes": [...]) or in a document-sequence section with that
// identifier.
#include <bson/bson.h>

#include <cstring>

#include "db_guard/classify.h"

namespace ks::db {
namespace {

constexpr int32_t kOpMsg = 2013;
constexpr int32_t kOpCompressed = 2012;
constexpr int32_t kOpQuery = 2004;

uint32_t le32(const uint8_t* p) {
    return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}

bool empty_document(const bson_iter_t* it) {
    if (!BSON_ITER_HOLDS_DOCUMENT(it)) return false;
    uint32_t len = 0;
    const uint8_t* data = nullptr;
    bson_iter_document(it, &len, &data);
    return len == 5;  // an empty BSON document is 5 bytes
}

// A document inside the message (bson_t is over-aligned: not kept in vectors).
struct DocRef {
    const uint8_t* data;
    uint32_t len;
};

// Does one delete (or update) statement document match every document?
bool matches_everything(const DocRef& ref, const char* filter_key) {
    bson_t stmt;
    if (!bson_init_static(&stmt, ref.data, ref.len)) return true;  // unreadable: assume the worst
    bson_iter_t it;
    if (!bson_iter_init_find(&it, &stmt, filter_key)) return true;  // no filter at all
    return empty_document(&it);
}

bool multi_update(const DocRef& ref) {
    bson_t stmt;
    bson_iter_t it;
    return bson_init_static(&stmt, ref.data, ref.len) && bson_iter_init_find(&it, &stmt, "multi") &&
           bson_iter_as_bool(&it);
}

// The collection an aggregation's $out stage writes, which it replaces whole
// with the pipeline's result; "" when the pipeline has no $out.
std::string pipeline_out(const bson_t& body) {
    bson_iter_t it, stage, key;
    if (!bson_iter_init_find(&it, &body, "pipeline") || !BSON_ITER_HOLDS_ARRAY(&it) ||
        !bson_iter_recurse(&it, &stage))
        return "";
    while (bson_iter_next(&stage)) {
        if (!BSON_ITER_HOLDS_DOCUMENT(&stage) || !bson_iter_recurse(&stage, &key) ||
            !bson_iter_next(&key) || std::strcmp(bson_iter_key(&key), "$out") != 0)
            continue;
        if (BSON_ITER_HOLDS_UTF8(&key)) return bson_iter_utf8(&key, nullptr);
        bson_iter_t coll;
        if (BSON_ITER_HOLDS_DOCUMENT(&key) && bson_iter_recurse(&key, &coll) &&
            bson_iter_find(&coll, "coll") && BSON_ITER_HOLDS_UTF8(&coll))
            return bson_iter_utf8(&coll, nullptr);
        return "(a collection)";
    }
    return "";
}

// Where mapReduce writes: out: "C" or {replace: "C"} replaces C whole,
// {merge: "C"} or {reduce: "C"} rewrites its documents, {inline: 1} only
// returns the result.
Statement map_reduce_out(const bson_t& body, Statement st) {
    bson_iter_t it, mode;
    if (!bson_iter_init_find(&it, &body, "out")) return st;
    if (BSON_ITER_HOLDS_UTF8(&it)) {
        st.cls = Class::Drop;
        st.detail =
            std::string("mapReduce out replaces the collection ") + bson_iter_utf8(&it, nullptr);
    } else if (BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &mode) &&
               bson_iter_next(&mode)) {
        std::string how = bson_iter_key(&mode);
        if (how == "replace") {
            st.cls = Class::Drop;
            st.detail = "mapReduce out replaces a collection";
        } else if (how == "merge" || how == "reduce") {
            st.cls = Class::UpdateAll;
            st.detail = "mapReduce out " + how + " rewrites the documents of a collection";
        }
    }
    return st;
}

using Sequences = std::vector<std::pair<std::string, std::vector<DocRef>>>;

// What a command does: its name is the first key of its document; the
// documents of delete and update may be in it ("deletes": [...]) or in a
// document-sequence section with that identifier (OP_MSG).
Statement command_statement(const bson_t& body, const Sequences& sequences) {
    Statement st{"", Class::Harmless, ""};
    bson_iter_t it;
    if (!bson_iter_init(&it, &body) || !bson_iter_next(&it))
        return {"", Class::Unparseable, "a command document without a command"};
    std::string command = bson_iter_key(&it);
    std::string target = BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, nullptr) : "";
    st.text = command + (target.empty() ? "" : " " + target);
    // The statements of delete/update: from the body array, or a sequence.
    auto statements_of = [&](const char* field) {
        std::vector<DocRef> list;
        bson_iter_t f;
        if (bson_iter_init_find(&f, &body, field) && BSON_ITER_HOLDS_ARRAY(&f)) {
            bson_iter_t child;
            if (bson_iter_recurse(&f, &child)) {
                while (bson_iter_next(&child)) {
                    if (!BSON_ITER_HOLDS_DOCUMENT(&child)) continue;
                    uint32_t dlen = 0;
                    const uint8_t* data = nullptr;
                    bson_iter_document(&child, &dlen, &data);
                    list.push_back({data, dlen});
                }
            }
        }
        for (auto& [ident, docs] : sequences)
            if (ident == field) list.insert(list.end(), docs.begin(), docs.end());
        return list;
    };
    if (command == "dropDatabase") {
        st.cls = Class::Drop;
        st.detail = "dropDatabase";
    } else if (command == "drop") {
        st.cls = Class::Drop;
        st.detail = command;
    } else if (command == "dropIndexes") {
        st.cls = Class::SchemaChange;  // an index holds no documents
        st.detail = command;
    } else if (command == "delete") {
        for (auto& d : statements_of("deletes"))
            if (matches_everything(d, "q")) {
                st.cls = Class::DeleteAll;
                st.detail = "delete with an empty filter";
            }
    } else if (command == "update") {
        for (auto& d : statements_of("updates"))
            if (matches_everything(d, "q") && multi_update(d)) {
                st.cls = Class::UpdateAll;
                st.detail = "update of every document (empty filter, multi)";
            }
    } else if (command == "aggregate") {
        if (std::string out = pipeline_out(body); !out.empty()) {
            st.cls = Class::Drop;
            st.detail = "aggregate $out replaces the collection " + out;
        }
    } else if (command == "mapReduce" || command == "mapreduce") {
        st = map_reduce_out(body, st);
    }
    return st;
}

// OP_QUERY (2004): flags, the collection's full name, skip, return, the
// query. Drivers send their first handshake (isMaster) this way; a query on
// "<db>.$cmd" is a command, like an OP_MSG body; any other is a read.
Statement query_statement(const uint8_t* h, size_t len) {
    size_t p = 20;
    const void* nul = std::memchr(h + p, 0, len - p);
    if (!nul) return {"", Class::Unparseable, "OP_QUERY malformed"};
    std::string collection(reinterpret_cast<const char*>(h + p),
                           static_cast<const uint8_t*>(nul) - (h + p));
    p += collection.size() + 1 + 8;
    if (len < p + 5) return {"", Class::Unparseable, "OP_QUERY malformed"};
    uint32_t dlen = le32(h + p);
    bson_t query;
    if (dlen < 5 || dlen > len - p || !bson_init_static(&query, h + p, dlen))
        return {"", Class::Unparseable, "OP_QUERY malformed"};
    if (collection.size() < 5 || collection.compare(collection.size() - 5, 5, ".$cmd") != 0)
        return {"query " + collection, Class::Harmless, ""};
    return command_statement(query, {});
}

}  // namespace

Classification classify_mongodb(std::span<const uint8_t> bytes) {
    Classification out;
    size_t off = 0;
    while (off < bytes.size()) {
        if (bytes.size() - off < 16) {
            out.statements.push_back({"", Class::Unparseable, "message header cut short"});
            break;
        }
        const uint8_t* h = bytes.data() + off;
        uint32_t len = le32(h);
        int32_t opcode = static_cast<int32_t>(le32(h + 12));
        if (len < 21 || len > bytes.size() - off) {
            out.statements.push_back({"", Class::Unparseable, "message cut short or malformed"});
            break;
        }
        if (opcode == kOpCompressed) {
            out.statements.push_back({"", Class::Unparseable, "compressed message: not inspected"});
            off += len;
            continue;
        }
        if (opcode == kOpQuery) {
            out.statements.push_back(query_statement(h, len));
            off += len;
            continue;
        }
        if (opcode != kOpMsg) {
            out.statements.push_back(
                {"", Class::Unparseable, "opcode " + std::to_string(opcode) + " not inspected"});
            off += len;
            continue;
        }
        uint32_t flags = le32(h + 16);
        size_t end = len - ((flags & 1u) ? 4 : 0);  // checksumPresent
        size_t p = 20;
        bson_t body;
        bool have_body = false;
        Sequences sequences;
        bool bad = false;
        while (p < end && !bad) {
            uint8_t kind = h[p++];
            if (kind == 0) {
                if (end - p < 5) {
                    bad = true;
                    break;
                }
                uint32_t dlen = le32(h + p);
                if (dlen < 5 || dlen > end - p || !bson_init_static(&body, h + p, dlen)) {
                    bad = true;
                    break;
                }
                have_body = true;
                p += dlen;
            } else if (kind == 1) {
                if (end - p < 4) {
                    bad = true;
                    break;
                }
                uint32_t slen = le32(h + p);
                if (slen < 5 || slen > end - p) {
                    bad = true;
                    break;
                }
                const uint8_t* s = h + p + 4;
                size_t s_end = slen - 4;
                const void* nul = std::memchr(s, 0, s_end);
                if (!nul) {
                    bad = true;
                    break;
                }
                size_t q = static_cast<size_t>(static_cast<const uint8_t*>(nul) - s) + 1;
                std::string ident(reinterpret_cast<const char*>(s), q - 1);
                std::vector<DocRef> docs;
                while (q < s_end) {
                    if (s_end - q < 5) {
                        bad = true;
                        break;
                    }
                    uint32_t dlen = le32(s + q);
                    if (dlen < 5 || dlen > s_end - q) {
                        bad = true;
                        break;
                    }
                    docs.push_back({s + q, dlen});
                    q += dlen;
                }
                sequences.emplace_back(std::move(ident), std::move(docs));
                p += slen;
            } else {
                bad = true;
            }
        }
        if (bad || !have_body) {
            out.statements.push_back({"", Class::Unparseable, "OP_MSG sections malformed"});
            break;
        }
        out.statements.push_back(command_statement(body, sequences));
        off += len;
    }
    return out;
}

}  // namespace ks::db
