#include "process_guard/process_table.h"

#include <gtest/gtest.h>

namespace ks {
namespace {

ExecEvent exec_of(int pid, int ppid, uint32_t session, const std::string& comm) {
    ExecEvent e;
    e.hdr.pid = pid;
    e.hdr.ppid = ppid;
    e.hdr.session_id = session;
    e.hdr.comm = comm;
    e.exe = "/usr/bin/" + comm;
    return e;
}

ForkEvent fork_of(int child, int parent, uint32_t session, const std::string& comm) {
    ForkEvent f;
    f.hdr.pid = child;
    f.hdr.ppid = parent;
    f.hdr.session_id = session;
    f.hdr.comm = comm;
    return f;
}

TEST(ProcessTable, LineageFollowsParentsUpToTheSessionRoot) {
    ProcessTable t;
    t.on_exec(exec_of(100, 1, 1, "bash"));  // session root; its parent is outside
    t.on_fork(fork_of(101, 100, 1, "bash"));
    t.on_exec(exec_of(101, 100, 1, "python3"));
    t.on_fork(fork_of(102, 101, 1, "python3"));
    t.on_exec(exec_of(102, 101, 1, "helper"));

    auto chain = t.lineage(102);
    ASSERT_EQ(chain.size(), 2u);
    EXPECT_EQ(chain[0].pid, 101);
    EXPECT_EQ(chain[0].comm, "python3");
    EXPECT_EQ(chain[1].pid, 100);
    EXPECT_EQ(chain[1].comm, "bash");
    EXPECT_TRUE(t.lineage(100).empty());
}

TEST(ProcessTable, LineageStopsAtAnotherSession) {
    ProcessTable t;
    t.on_exec(exec_of(10, 1, 1, "agent"));
    t.on_exec(exec_of(11, 10, 2, "other"));
    EXPECT_TRUE(t.lineage(11).empty());
}

TEST(ProcessTable, ExitedParentsStayKnownForLateChildren) {
    ProcessTable t(2);
    t.on_exec(exec_of(10, 1, 1, "bash"));
    t.on_fork(fork_of(11, 10, 1, "bash"));
    ExitEvent ex;
    ex.hdr.pid = 10;
    t.on_exit(ex);
    t.on_exec(exec_of(11, 10, 1, "true"));
    auto chain = t.lineage(11);
    ASSERT_EQ(chain.size(), 1u);
    EXPECT_EQ(chain[0].pid, 10);
    EXPECT_TRUE(t.members(1) == std::vector<int>{11});
}

TEST(ProcessTable, ForgetsOldExitsBeyondItsBound) {
    ProcessTable t(1);
    for (int pid = 10; pid < 13; ++pid) {
        t.on_exec(exec_of(pid, 1, 1, "x"));
        ExitEvent ex;
        ex.hdr.pid = pid;
        t.on_exit(ex);
    }
    EXPECT_EQ(t.find(10), nullptr);
    EXPECT_NE(t.find(12), nullptr);
}

}  // namespace
}  // namespace ks
