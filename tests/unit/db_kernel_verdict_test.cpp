// The kernel's judges of database requests (bpf/ks_db_judge.bpf.h: the code
// the sk_msg program of db_wire.bpf.c runs on every request) on every case of
// the corpus the user-space classifier is held to (db_classify_test.cpp), run
// through BPF_PROG_TEST_RUN of a syscall program that includes the same code
// (bpf/db_judge_test.bpf.c). No database, no socket: the kernel's verdict on
// each case must be the corpus's, and where it differs from the parser's class
// the corpus must say so. Loading needs root: without it the kernel half is
// skipped; CI runs it as root.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <killswitch/abi/events.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <map>
#include <vector>

#include "abi/decode.h"
#include "db_corpus.h"
#include "db_judge_test.skel.h"

namespace ks::db {
namespace {

using corpus::Relation;

// ---- what the corpus says, without the kernel ----

// A note's "stricter:" or "weaker:", or "".
std::string_view note_tag(std::string_view note) {
    for (std::string_view tag : {"stricter", "weaker"})
        if (note.substr(0, tag.size() + 1) == std::string(tag) + ":") return tag;
    return {};
}

TEST(DbCorpus, EveryDifferenceBetweenKernelAndParserIsMarkedAndExplained) {
    for (const auto& c : corpus::cases()) {
        Relation r = corpus::relation(c.cls, c.kernel);
        std::string_view tag = note_tag(c.note);
        if (r == Relation::Agree) {
            EXPECT_EQ(tag, "") << c.where() << ": kernel " << c.kernel << " agrees with " << c.cls;
        } else {
            EXPECT_EQ(tag, corpus::relation_name(r))
                << c.where() << ": kernel " << c.kernel << ", parser " << c.cls;
            EXPECT_GT(c.note.size(), tag.size() + 10) << c.where() << ": say why";
        }
    }
}

// The judges of SQL and Redis read every statement or command of a request:
// what the parser calls destructive, they refuse. (MongoDB's judge reads the
// command's name and delete filters only: its gaps are the cases marked weaker.)
TEST(DbCorpus, KernelNeverPassesSqlOrRedisThatTheParserCallsDestructive) {
    size_t destructive = 0;
    for (const auto& c : corpus::cases()) {
        if (c.kind == Kind::Mongodb || !is_destructive(corpus::classify(c).verdict())) continue;
        ++destructive;
        EXPECT_NE(c.kernel, "pass") << c.where();
    }
    EXPECT_GE(destructive, 50u);
}

// ---- the kernel ----

// ks::db::Kind is the ABI's kind.
static_assert(static_cast<uint32_t>(Kind::Postgres) == KS_DB_POSTGRES &&
              static_cast<uint32_t>(Kind::Mysql) == KS_DB_MYSQL &&
              static_cast<uint32_t>(Kind::Redis) == KS_DB_REDIS &&
              static_cast<uint32_t>(Kind::Mongodb) == KS_DB_MONGODB);

// What the sk_msg program does with a client's bytes, sent in one sendmsg().
struct KernelVerdict {
    std::string what;      // "pass", "wait", a reason's name, or why the run failed
    int runs = 0;          // requests judged
    uint32_t reasons = 0;  // KS_DB_CLASS_BIT of the reason each run gave
    std::string trace;
};

// "drop, schema-change" for a set of classes.
std::string class_names(uint32_t classes) {
    std::string out;
    for (uint32_t r = 1; r < 32; ++r)
        if (classes & KS_DB_CLASS_BIT(r))
            out += (out.empty() ? "" : ", ") + std::string(db_reason_name(r));
    return "[" + out + "]";
}

// The settings of databases.refuse the cases run under: none, the default,
// all, each class alone and each class left out.
std::vector<uint32_t> refuse_settings() {
    std::vector<uint32_t> out = {0, KS_DB_CLASSES_DESTRUCTIVE, KS_DB_CLASSES_ALL};
    for (uint32_t r = 1; r < KS_DBR_FIRST_UNPARSEABLE; ++r) {
        uint32_t bit = KS_DB_CLASS_BIT(r);
        if (!(KS_DB_CLASSES_ALL & bit)) continue;
        out.push_back(bit);
        out.push_back(KS_DB_CLASSES_ALL & ~bit);
        out.push_back(KS_DB_CLASSES_DESTRUCTIVE & ~bit);
    }
    return out;
}

class DbKernelVerdict : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        if (geteuid() != 0) {
            skip_ = "loading BPF programs needs root";
            return;
        }
        int probe = libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SYSCALL, nullptr);
        if (probe != 1) {
            skip_ = probe == 0 ? "this kernel has no syscall BPF programs (Linux 5.14 and later)"
                               : std::string("cannot probe for syscall BPF programs: ") +
                                     std::strerror(-probe);
            return;
        }
        // The verifier's log, if the judges do not load.
        static std::string log;
        auto* previous =
            libbpf_set_print([](libbpf_print_level level, const char* fmt, va_list args) {
                if (level == LIBBPF_DEBUG) return 0;
                char line[4096];
                vsnprintf(line, sizeof line, fmt, args);
                log += line;
                return 0;
            });
        skel_ = db_judge_test::open_and_load();
        int err = errno;
        libbpf_set_print(previous);
        if (!skel_ && err == EPERM)
            skip_ = "not permitted to load BPF programs here (EPERM)";
        else if (!skel_)
            load_error_ = std::string("db_judge_test.bpf.c does not load: ") + std::strerror(err) +
                          "\n" + log;
        else
            // the built-in bookkeeping tables, as the daemon writes them
            for (uint64_t key : bookkeeping_keys({})) set_bookkeeping(key, true);
    }
    static void set_bookkeeping(uint64_t key, bool listed) {
        int fd = bpf_map__fd(skel_->maps.db_bookkeeping);
        uint8_t one = 1;
        if (listed)
            ASSERT_EQ(bpf_map_update_elem(fd, &key, &one, BPF_ANY), 0);
        else
            bpf_map_delete_elem(fd, &key);
    }
    static void TearDownTestSuite() {
        db_judge_test::destroy(skel_);
        skel_ = nullptr;
    }
    void SetUp() override {
        if (!skip_.empty()) GTEST_SKIP() << skip_;
        ASSERT_NE(skel_, nullptr) << load_error_;
        skel_->data->cfg_refuse_classes = KS_DB_CLASSES_DESTRUCTIVE;
    }

    // One run of the judges on the request at the start of bytes.
    static bool run(uint32_t kind, uint32_t phase, std::span<const uint8_t> bytes) {
        auto* in = skel_->bss;
        if (bytes.size() > sizeof(in->req_bytes)) return false;
        std::memcpy(in->req_bytes, bytes.data(), bytes.size());
        in->req_kind = kind;
        in->req_phase = phase;
        in->req_size = static_cast<uint32_t>(bytes.size());
        LIBBPF_OPTS(bpf_test_run_opts, opts);
        return bpf_prog_test_run_opts(bpf_program__fd(skel_->progs.ks_db_judge_test), &opts) == 0 &&
               opts.retval == 0;
    }

    // As ks_db_msg does after each run: hold a request not all there, refuse,
    // or let the request through and judge the next one.
    static KernelVerdict judge(const corpus::Case& c) {
        KernelVerdict v;
        uint32_t phase = KS_DBP_READY;  // the cases follow the startup exchange
        std::span<const uint8_t> rest(c.wire);
        const auto* out = skel_->bss;
        while (true) {
            if (rest.empty()) {
                v.what = "pass";
                return v;
            }
            if (!run(static_cast<uint32_t>(c.kind), phase, rest)) {
                v.what = "run failed: " + std::string(std::strerror(errno));
                return v;
            }
            ++v.runs;
            if (out->out_reason) v.reasons |= KS_DB_CLASS_BIT(out->out_reason & 31);
            v.trace += "\n  run " + std::to_string(v.runs) + " at byte " +
                       std::to_string(c.wire.size() - rest.size()) + ": bytes " +
                       std::to_string(out->out_bytes) + ", cork " + std::to_string(out->out_cork) +
                       ", reason " + db_reason_name(out->out_reason);
            if (out->out_cork && !out->out_reason) {
                v.what = "wait";
                return v;
            }
            if (out->out_refused) {
                v.what = db_reason_name(out->out_reason);
                return v;
            }
            if (out->out_opaque || !out->out_bytes || out->out_bytes >= rest.size()) {
                v.what = "pass";
                return v;
            }
            if (out->out_ready) phase = KS_DBP_READY;
            if (out->out_ssl_asked) phase = KS_DBP_SSL_ASKED;
            rest = rest.subspan(out->out_bytes);
        }
    }

    static inline db_judge_test* skel_ = nullptr;
    static inline std::string skip_;
    static inline std::string load_error_;
};

TEST_F(DbKernelVerdict, EveryCaseGetsTheVerdictTheCorpusSays) {
    size_t judged = 0;
    std::map<std::string, size_t> verdicts;
    for (const auto& c : corpus::cases()) {
        KernelVerdict v = judge(c);
        EXPECT_EQ(v.what, c.kernel) << c.where() << v.trace;
        judged += v.runs > 0;
        ++verdicts[v.what == "pass" || v.what == "wait" ? v.what : "refused"];
    }
    EXPECT_EQ(judged, corpus::cases().size());
    EXPECT_GE(judged, 120u);
    EXPECT_GE(verdicts["refused"], 60u);
    EXPECT_GE(verdicts["pass"], 40u);
    EXPECT_GE(verdicts["wait"], 5u);
}

// databases.refuse reaches the kernel: under every setting, a request with
// a statement of a class the setting lists is refused (or held), never
// passed. Cases marked weaker are the known gaps, under every setting. (Text
// the parser cannot read is databases.unparseable's business, the same under
// every setting; the kernel column of the corpus holds the kernel to it.)
TEST_F(DbKernelVerdict, UnderEveryRefuseSettingTheKernelIsNeverLooserThanTheParser) {
    size_t checked = 0;
    for (uint32_t classes : refuse_settings()) {
        skel_->data->cfg_refuse_classes = classes;
        for (const auto& c : corpus::cases()) {
            if (note_tag(c.note) == "weaker") continue;
            Classification parsed = corpus::classify(c);
            if (!parsed.first_in(classes)) continue;
            KernelVerdict v = judge(c);
            ++checked;
            EXPECT_NE(v.what, "pass") << c.where() << "\n  refuse: " << class_names(classes)
                                      << ", parser: " << class_name(parsed.verdict()) << v.trace;
        }
    }
    EXPECT_GE(checked, 1000u);
}

// A class left out of databases.refuse is sent: the kernel refuses no
// request for it, and names a destructive one in the record (would-refuse).
TEST_F(DbKernelVerdict, AClassLeftOutIsSentAndNamed) {
    size_t passed = 0;
    for (const auto& c : corpus::cases()) {
        auto reason = db_class_reason(c.kernel);
        if (!reason || c.kernel != c.cls) continue;  // refused for its own class by default
        uint32_t bit = KS_DB_CLASS_BIT(*reason);
        skel_->data->cfg_refuse_classes = KS_DB_CLASSES_ALL & ~bit;
        KernelVerdict v = judge(c);
        EXPECT_NE(v.what, c.kernel) << c.where() << v.trace;
        if (v.what == "pass") {
            ++passed;
            EXPECT_TRUE(v.reasons & bit) << c.where() << ": recorded as " << c.kernel << v.trace;
        }
    }
    EXPECT_GE(passed, 60u);
    // and a schema change or bookkeeping is refused when listed
    for (const auto& c : corpus::cases()) {
        if (c.cls != "schema-change" && c.cls != "bookkeeping") continue;
        skel_->data->cfg_refuse_classes = KS_DB_CLASSES_ALL;
        KernelVerdict v = judge(c);
        if (c.kernel == "pass") {
            EXPECT_EQ(v.what, c.cls) << c.where() << v.trace;
        }
    }
}

// databases.bookkeeping_tables: a table the policy adds is bookkeeping on
// both sides, in any case, quoted or not, in any schema; not before.
TEST_F(DbKernelVerdict, APolicyTableIsBookkeepingInTheKernelAndTheParser) {
    Options options{{"deploy_state"}};
    for (std::string sql :
         {"UPDATE deploy_state SET v = 1", "update \"Deploy_State\" set v = 1",
          "DELETE FROM ops.DEPLOY_STATE", "DELETE FROM \"ops\".\"deploy_state\""}) {
        auto wire = corpus::pg_message('Q', sql + std::string(1, '\0'));
        EXPECT_TRUE(is_destructive(classify_postgres_sql(sql).verdict())) << sql;
        ASSERT_TRUE(run(KS_DB_POSTGRES, KS_DBP_READY, wire));
        EXPECT_EQ(skel_->bss->out_refused, 1u) << sql << ": not yet listed";

        EXPECT_EQ(classify_postgres_sql(sql, options).verdict(), Class::Bookkeeping) << sql;
        set_bookkeeping(bookkeeping_key("deploy_state"), true);
        ASSERT_TRUE(run(KS_DB_POSTGRES, KS_DBP_READY, wire));
        EXPECT_EQ(skel_->bss->out_refused, 0u) << sql;
        EXPECT_EQ(skel_->bss->out_reason, 0u) << sql;
        skel_->data->cfg_refuse_classes = KS_DB_CLASSES_ALL;
        ASSERT_TRUE(run(KS_DB_POSTGRES, KS_DBP_READY, wire));
        EXPECT_STREQ(db_reason_name(skel_->bss->out_reason), "bookkeeping") << sql;
        EXPECT_EQ(skel_->bss->out_refused, 1u) << sql;
        skel_->data->cfg_refuse_classes = KS_DB_CLASSES_DESTRUCTIVE;
        set_bookkeeping(bookkeeping_key("deploy_state"), false);
    }
}

// The harness reads the bytes it is given, and each request of a pipeline.
TEST_F(DbKernelVerdict, JudgesTheBytesItIsGivenNotSomethingElse) {
    auto q = corpus::pg_message('Q', std::string_view("DROP TABLE accounts\0", 20));
    ASSERT_TRUE(run(KS_DB_POSTGRES, KS_DBP_READY, q));
    EXPECT_EQ(skel_->bss->out_refused, 1u);
    EXPECT_STREQ(db_reason_name(skel_->bss->out_reason), "drop");
    EXPECT_EQ(skel_->bss->out_msg_type, static_cast<uint32_t>('Q'));
    EXPECT_EQ(skel_->bss->out_bytes, q.size());
    EXPECT_EQ(skel_->bss->out_text_len, 20u);

    q[6] = 'X';  // DXOP TABLE accounts
    ASSERT_TRUE(run(KS_DB_POSTGRES, KS_DBP_READY, q));
    EXPECT_EQ(skel_->bss->out_refused, 0u);
    EXPECT_EQ(skel_->bss->out_reason, 0u);

    // MULTI, SET k v, FLUSHDB, EXEC: refused at the third
    for (const auto& c : corpus::cases()) {
        if (c.kind != Kind::Redis || c.input.find("MULTI") == std::string::npos) continue;
        KernelVerdict v = judge(c);
        EXPECT_EQ(v.what, "flush") << v.trace;
        EXPECT_EQ(v.runs, 3) << v.trace;
        return;
    }
    ADD_FAILURE() << "the corpus has no MULTI pipeline";
}

}  // namespace
}  // namespace ks::db
