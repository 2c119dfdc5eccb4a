// Uprobes that exist only in guarded processes.
//
// A uprobe attached for every process (pid -1) writes its breakpoint into
// every process that maps the library: each caller of unlink, open or kill,
// the database server's backends included, traps before the program can ask
// whether it is guarded. Where the kernel has uprobe_multi links with a pid
// (Linux 6.6+), the daemon attaches one link to each guarded
// process instead: the breakpoints are in that process's memory alone, and
// the link stays with it across exec (the new image's libc is probed as it
// is mapped). A new child of a guarded process is held at its return from
// fork (bpf/file_guard.bpf.c, ks_child_*) until add() has attached its link;
// the daemon then lets it go.
//
// One link per process carries every entry point of every layer: its
// program (file_guard's ks_up_dispatch) tail-calls the entry point's own
// program, whose index in a program array is the link's cookie there.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/bpf_util.h"
#include "common/result.h"

namespace ks {

// The libc the system's dynamically linked programs use (from our own maps).
std::string find_libc();

// Whether this kernel attaches a uprobe_multi link to one process: tried
// once, with a program of our own on binary (the system libc).
struct UprobeMultiSupport {
    std::optional<int> attach_type;  // BPF_TRACE_UPROBE_MULTI, when it does
    std::string reason;              // why not, when it does not
};
const UprobeMultiSupport& uprobe_multi_support(const std::string& binary);

// File offsets (as uprobes want them) of symbols in an ELF file's dynamic
// symbol table; 0 for a symbol the file does not define.
Result<std::vector<uint64_t>> symbol_offsets(const std::string& binary,
                                             const std::vector<std::string>& symbols);

class UprobeScope {
  public:
    // binary: the library every entry point is in (libc). dispatcher: the
    // program each link runs, which jumps by the link's cookie into
    // prog_array, a BPF_MAP_TYPE_PROG_ARRAY this scope fills.
    UprobeScope(int attach_type, std::string binary, int dispatcher_fd, int prog_array_fd);
    ~UprobeScope();  // lets go of the links: the pinned ones stay attached
    UprobeScope(const UprobeScope&) = delete;
    UprobeScope& operator=(const UprobeScope&) = delete;

    // A layer's entry points (the file layer's, self-protection's), merged
    // with the other layers' into one link per process; every process in
    // the scope is linked again (its old link goes once the new one is
    // there). The symbols attached are appended to names, the ones the
    // binary lacks are logged. drop_entries removes a layer's.
    Status set_entries(const std::string& layer, const std::vector<UprobeSpec>& specs,
                       std::vector<std::string>& names);
    void drop_entries(const std::string& layer);

    // Attaches the entry points to process tgid, started at start (its
    // start time: a pid used again is another process); nothing when it
    // has its link already. A process added while no layer has entries
    // gets its link with the first.
    Status add(int tgid, uint64_t start);
    // Detaches it: the kernel's side (an RCU grace period per link) runs on
    // a thread of this scope's.
    void remove(int tgid);
    [[nodiscard]] bool contains(int tgid, uint64_t start) const;
    // The processes in the scope with their start times.
    [[nodiscard]] std::vector<std::pair<int, uint64_t>> members() const;
    [[nodiscard]] size_t processes() const;
    [[nodiscard]] uint64_t attached_total() const { return attached_total_; }
    [[nodiscard]] uint64_t failed_total() const { return failed_total_; }

    // The entry points for every process (a link with pid 0), pinned: for
    // a daemon that stops cleanly and leaves the kernel to enforce alone,
    // when no one is there to attach them to new processes.
    Status attach_everywhere();
    // Detaches every process's link (after attach_everywhere).
    void release_all();

  private:
    struct Entry {
        uint64_t offset = 0;
        int prog_fd = -1;
    };
    struct Proc {
        uint64_t start = 0;
        int fd = -1;  // its link; -1 while no layer has entries
    };
    // Rebuilds offsets_/cookies_ and the program array from layers_.
    Status merge();
    // The link's descriptor, or -errno.
    int link(int pid);
    void relink_all();
    void release(int fd, int tgid);
    void detach_loop();

    int attach_type_;
    std::string binary_;
    int dispatcher_fd_;
    int prog_array_fd_;
    std::map<std::string, std::vector<Entry>> layers_;
    std::map<int, uint32_t> slots_;  // program fd -> its index in the program array
    std::vector<uint64_t> offsets_;
    std::vector<uint64_t> cookies_;
    std::unordered_map<int, Proc> procs_;
    uint64_t attached_total_ = 0;
    uint64_t failed_total_ = 0;

    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<int> to_close_;
    bool stop_ = false;
    std::thread detacher_;
};

}  // namespace ks
