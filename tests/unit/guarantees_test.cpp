// doctor's guarantee table for the three kinds of kernels killswitch meets:
// one that runs BPF LSM (refuses), one that runs BPF trampolines but not BPF
// LSM (fmod_ret on the security functions: refuses too), one that runs
// neither (stops after, at syscall tracepoints). The rows must say which, and
// never claim more than the kernel's probes found.
#include "doctor/guarantees.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "doctor/features.h"

namespace ks {
namespace {

Features kernel_with(bool lsm, bool fentry) {
    Features f;
    for (size_t i = 0; i < kFeatureCount; ++i) f.set(static_cast<FeatureId>(i), true, "probed");
    f.set(FeatureId::kLsm, lsm, lsm ? "ran on path_unlink" : "attached but never ran");
    f.set(FeatureId::kFentry, fentry,
          fentry ? "fmod_ret on security_path_unlink refused an unlink" : "load: EPERM");
    return f;
}

std::map<std::string, Guarantee> rows_of(const Features& f) {
    std::map<std::string, Guarantee> out;
    for (auto& g : guarantees_for(f)) out[g.operation] = g;
    return out;
}

const char* kKernelFileOps[] = {"system-settings", "unlink-raw-syscall",      "rename",
                                "truncate",        "open-truncate-or-write",  "mount-over-data",
                                "metadata",        "self-signal-raw-syscall", "self-bpf-detach"};

// Every operation the kernel performs inside one call has this effect, by a
// mechanism that names this layer.
void expect_kernel_ops(std::map<std::string, Guarantee>& rows, Effect effect,
                       const std::string& mechanism) {
    for (const char* op : kKernelFileOps) {
        ASSERT_TRUE(rows.count(op)) << op;
        EXPECT_EQ(rows[op].effect, effect) << op;
        EXPECT_EQ(rows[op].preventive, effect == Effect::kPrevents) << op;
        EXPECT_NE(rows[op].mechanism.find(mechanism), std::string::npos) << rows[op].mechanism;
    }
}

TEST(Guarantees, BpfLsmRefusesEveryKernelSideOperation) {
    auto rows = rows_of(kernel_with(true, true));
    expect_kernel_ops(rows, Effect::kPrevents, "LSM");
    EXPECT_NE(rows["io_uring-ops"].mechanism.find("LSM"), std::string::npos);
}

TEST(Guarantees, FmodRetWithoutLsmRefusesEveryKernelSideOperation) {
    auto rows = rows_of(kernel_with(false, true));
    expect_kernel_ops(rows, Effect::kPrevents, "fmod_ret on security_");
    EXPECT_EQ(rows["io_uring-ops"].effect, Effect::kPrevents);
    EXPECT_NE(rows["io_uring-ops"].mechanism.find("fmod_ret"), std::string::npos)
        << rows["io_uring-ops"].mechanism;
    EXPECT_EQ(rows["reach-raw-syscall"].effect, Effect::kPrevents);
    // Its libc uprobes are not attached: the rows say they are not in use.
    EXPECT_FALSE(rows["unlink-via-libc"].available);
    EXPECT_FALSE(rows["self-signal-via-libc"].available);
    EXPECT_FALSE(rows["reach-via-libc"].available);
}

TEST(Guarantees, NeitherFallsBackToSyscallTracepoints) {
    auto rows = rows_of(kernel_with(false, false));
    expect_kernel_ops(rows, Effect::kStopsAfter, "sys_enter_");
    EXPECT_EQ(rows["io_uring-ops"].mechanism.find("fmod_ret"), std::string::npos);
    // The reason the hook layers would do better, from the probes' details.
    EXPECT_NE(rows["unlink-raw-syscall"].note.find("attached but never ran"), std::string::npos)
        << rows["unlink-raw-syscall"].note;
    EXPECT_NE(rows["unlink-raw-syscall"].note.find("load: EPERM"), std::string::npos)
        << rows["unlink-raw-syscall"].note;
    EXPECT_TRUE(rows["unlink-via-libc"].available);
    EXPECT_TRUE(rows["reach-via-libc"].available);
}

TEST(Guarantees, ReachRowsSayWhatEachLayerDoes) {
    auto lsm = rows_of(kernel_with(true, false));
    EXPECT_EQ(lsm["reach-raw-syscall"].effect, Effect::kPrevents);
    EXPECT_FALSE(lsm["reach-via-libc"].available);  // the LSM hook refuses the call itself
    auto none = rows_of(kernel_with(false, false));
    EXPECT_EQ(none["reach-raw-syscall"].effect, Effect::kStopsAfter);
    EXPECT_NE(none["reach-raw-syscall"].note.find("is NOT stopped"), std::string::npos);
    EXPECT_EQ(none["reach-via-libc"].effect, Effect::kPrevents);
}

// A block device's open is not the damage: what the descriptor would do next
// is, and its process dies as the open returns. The hook layers refuse the
// open itself.
TEST(Guarantees, BlockDeviceWritesArePreventedOnEveryKernel) {
    EXPECT_NE(
        rows_of(kernel_with(true, false))["block-device-write"].mechanism.find("LSM file_open"),
        std::string::npos);
    EXPECT_NE(rows_of(kernel_with(false, true))["block-device-write"].mechanism.find(
                  "fmod_ret on security_file_open"),
              std::string::npos);
    auto none = rows_of(kernel_with(false, false));
    EXPECT_EQ(none["block-device-write"].effect, Effect::kPrevents);
    EXPECT_NE(none["block-device-write"].mechanism.find("sys_exit_open"), std::string::npos);
    EXPECT_NE(none["block-device-write"].note.find("before it can write"), std::string::npos);
}

// No hook is given a write's size: the space budget is counted at the write
// system calls' tracepoints, which a hook kernel does not attach. The row
// says so there instead of claiming it.
TEST(Guarantees, TheSpaceBudgetIsCountedAtTheWriteTracepointsOrTheFilePermissionHook) {
    auto row = rows_of(kernel_with(false, false))["space-budget"];
    EXPECT_EQ(row.effect, Effect::kPrevents);
    EXPECT_TRUE(row.available);
    EXPECT_NE(row.mechanism.find("sys_enter_write"), std::string::npos);
    EXPECT_NE(row.note.find("O_DIRECT"), std::string::npos) << "the exception is not said";
    // Where a hook layer refuses, the write tracepoints are not attached:
    // file_permission counts, and refuses the call itself.
    for (auto [lsm, fentry] : {std::pair{true, false}, std::pair{false, true}}) {
        auto hook = rows_of(kernel_with(lsm, fentry))["space-budget"];
        EXPECT_TRUE(hook.available);
        EXPECT_TRUE(hook.preventive);
        EXPECT_EQ(hook.effect, Effect::kPrevents);
        EXPECT_NE(hook.mechanism.find("file_permission"), std::string::npos) << hook.mechanism;
        EXPECT_EQ(hook.mechanism.find("sys_enter_write"), std::string::npos) << hook.mechanism;
        EXPECT_NE(hook.note.find("refused before it writes anything"), std::string::npos)
            << hook.note;
    }
}

TEST(Guarantees, ExecAndLibcLayersPreventOnEveryKernel) {
    for (bool lsm : {false, true})
        for (bool fentry : {false, true}) {
            auto rows = rows_of(kernel_with(lsm, fentry));
            EXPECT_EQ(rows["exec-destructive-command"].effect, Effect::kPrevents);
            EXPECT_EQ(rows["unlink-via-libc"].effect, Effect::kPrevents);
        }
}

}  // namespace
}  // namespace ks
