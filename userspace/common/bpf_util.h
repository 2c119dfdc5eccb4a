// Pieces every BPF object loader needs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"

struct bpf_object;
struct bpf_program;
struct bpf_link;
struct bpf_object_skeleton;

namespace ks {

// Before dst loads: every map of dst that src also has (same name and type)
// uses src's instead, so all objects share guarded_tasks, events, counters...
Status share_maps(bpf_object* dst, bpf_object* src);

// The running kernel's own BTF (/sys/kernel/btf/vmlinux): the value of an
// enumerator (BPF_CGROUP_UNIX_CONNECT in enum bpf_attach_type), and whether a
// function (a kfunc) is there. nullopt / false when BTF cannot be read.
std::optional<int> kernel_enum_value(const char* enum_name, const char* enumerator);
bool kernel_has_function(const char* name);

struct UprobeSpec {
    const char* symbol;
    bpf_program* prog;
    bool retprobe = false;  // at the function's return instead of its entry
};

// Attaches each program at its symbol's entry in binary (any process), and
// pins the link when the daemon pins (common/pins.h). Failures are logged
// and skipped; the attached links and symbols are appended to links and names.
void attach_uprobes(const std::string& binary, const std::vector<UprobeSpec>& specs,
                    std::vector<bpf_link*>& links, std::vector<std::string>& names);

// Lets go of the links: pinned ones stay attached (fail-closed), the others
// detach. For the daemon going away.
void destroy_links(std::vector<bpf_link*>& links);
// Unpins, then lets go: the programs detach. For turning a layer off.
void detach_links(std::vector<bpf_link*>& links);

// A layer attached while something can be guarded: the skeleton's programs
// (pinned when the daemon pins) and its uprobe links. Off: both unpinned and
// detached, names cleared. The kernel's side of a detach takes seconds for a
// whole layer (RCU grace periods), so it runs on the thread `pending`, which
// the next attach or detach waits for.
Status attach_layer(bpf_object_skeleton* s, const char* what, std::thread& pending);
// Part of a layer: the programs for which part(section) is true, attached
// (and pinned) one by one where not yet attached, or detached on `pending`.
// The syscall tracepoints of a layer come and go this way while the rest
// stays (a run session's seccomp filter covers what they would).
Status attach_programs(bpf_object_skeleton* s, bool (*part)(const char* section), const char* what,
                       std::thread& pending);
void detach_programs(bpf_object_skeleton* s, bool (*part)(const char* section),
                     std::thread& pending);
bool is_syscall_tracepoint(const char* section);
// Every syscall tracepoint a layer's programs need exists (checked at load,
// instead of a trial attach and its slow detach).
Status check_tracepoints(bpf_object* obj);
void detach_layer(bpf_object_skeleton* s, std::vector<bpf_link*>& uprobes,
                  std::vector<std::string>& names, std::thread& pending);

// The names of an object's programs (those it loads).
std::vector<std::string> program_names(bpf_object* obj);

// Makes the keys of a hash map (u32 -> u32 1) exactly this set.
Status replace_u32_set(int map_fd, const std::vector<uint32_t>& keys, const std::string& what);
// The same for a set of program names (comm keys of KS_COMM_LEN bytes).
Status replace_comm_set(int map_fd, const std::vector<std::string>& names, const std::string& what);

}  // namespace ks
