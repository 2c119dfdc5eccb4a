// Decoding of kernel records: the bytes the BPF side writes, built by hand.
#include <gtest/gtest.h>
#include <killswitch/abi/events.h>

#include <cstring>

#include "abi/decode.h"

namespace ks {
namespace {

void put_components(char* buf, __u32* len, std::initializer_list<const char*> leaf_first) {
    size_t off = 0;
    for (const char* c : leaf_first) {
        std::strcpy(buf + off, c);
        off += std::strlen(c) + 1;
    }
    *len = static_cast<__u32>(off);
}

TEST(JoinPathComponents, ReversesLeafFirstComponents) {
    const char buf[] = "c\0b\0a\0";
    EXPECT_EQ(join_path_components(buf, 6, false), "/a/b/c");
}

TEST(JoinPathComponents, RootIsSlashAndTruncationIsMarked) {
    EXPECT_EQ(join_path_components("", 0, false), "/");
    const char buf[] = "leaf\0";
    EXPECT_EQ(join_path_components(buf, 5, true), ".../leaf");
}

TEST(SplitArgv, KeepsEmptyArgumentsAndUnterminatedTail) {
    const char buf[] = "rm\0-rf\0\0/data";
    auto argv = split_argv(buf, sizeof(buf) - 1);
    ASSERT_EQ(argv.size(), 4u);
    EXPECT_EQ(argv[0], "rm");
    EXPECT_EQ(argv[2], "");
    EXPECT_EQ(argv[3], "/data");
}

TEST(DecodeEvent, ExecRecordCarriesEveryField) {
    auto ev = std::make_unique<ks_exec_event>();
    std::memset(ev.get(), 0, sizeof(*ev));
    ev->hdr.type = KS_EVENT_EXEC;
    ev->hdr.pid = 42;
    ev->hdr.tid = 42;
    ev->hdr.ppid = 7;
    ev->hdr.uid = 1000;
    ev->hdr.session_id = 3;
    ev->hdr.cgroup_id = 99;
    ev->hdr.flags = KS_EVF_ARGV_TRUNC;
    std::strcpy(ev->hdr.comm, "python3");
    ev->seed = KS_SEED_CGROUP;
    std::strcpy(ev->filename, "/usr/bin/python3");
    ev->filename_len = sizeof("/usr/bin/python3");
    const char argv[] = "python3\0-c\0print(1)";
    std::memcpy(ev->argv, argv, sizeof(argv));
    ev->argv_len = sizeof(argv);
    put_components(ev->cwd, &ev->cwd_len, {"work", "tmp"});
    put_components(ev->exe, &ev->exe_len, {"python3.11", "bin", "usr"});

    auto res = decode_event(ev.get(), sizeof(*ev));
    ASSERT_TRUE(res.ok()) << res.error().str();
    const auto& e = std::get<ExecEvent>(*res);
    EXPECT_EQ(e.hdr.pid, 42);
    EXPECT_EQ(e.hdr.ppid, 7);
    EXPECT_EQ(e.hdr.uid, 1000u);
    EXPECT_EQ(e.hdr.session_id, 3u);
    EXPECT_EQ(e.hdr.comm, "python3");
    EXPECT_EQ(e.filename, "/usr/bin/python3");
    EXPECT_EQ(e.argv, (std::vector<std::string>{"python3", "-c", "print(1)"}));
    EXPECT_EQ(e.cwd, "/tmp/work");
    EXPECT_EQ(e.exe, "/usr/bin/python3.11");
    EXPECT_TRUE(e.argv_truncated);
    EXPECT_FALSE(e.cwd_truncated);
    EXPECT_STREQ(seed_name(e.seed), "cgroup");
}

TEST(DecodeEvent, RejectsShortAndUnknownRecords) {
    ks_event_header h{};
    h.type = KS_EVENT_EXEC;
    EXPECT_FALSE(decode_event(&h, sizeof(h)).ok());  // an exec record is much longer
    h.type = 77;
    EXPECT_FALSE(decode_event(&h, sizeof(h)).ok());
    EXPECT_FALSE(decode_event(&h, 3).ok());
}

TEST(DecodeEvent, ExitRecordKeepsWaitStatus) {
    ks_exit_event e{};
    e.hdr.type = KS_EVENT_EXIT;
    e.hdr.pid = 5;
    e.exit_code = 9;  // killed by SIGKILL
    auto res = decode_event(&e, sizeof(e));
    ASSERT_TRUE(res.ok());
    EXPECT_EQ(std::get<ExitEvent>(*res).exit_code, 9u);
}

}  // namespace
}  // namespace ks
