// Fail-closed: the daemon's programs and state outlive its process.
//
// Layout under the pin directory (bpffs, default /sys/fs/bpf/killswitch):
//
//   state-<build>/<map>     the maps that hold state (who is guarded, the
//                           event ring, counters, watched connections...),
//                           shared by every daemon of the same build
//   links-<generation>/<n>  one pinned link per attached program; a daemon
//                           pins its own generation
//
// A pinned link keeps its program attached when the daemon dies, whatever
// the signal. A daemon that starts finds what an earlier one left, attaches
// its own programs (reusing the state maps when the build is the same),
// and only then removes the earlier generation: there is no moment without
// the programs. `killswitch daemon --uninstall` removes the directory.
//
// Pinning is off in a process until enable() is called (the daemon calls it;
// `doctor` and the unit tests do not), and then every function here is a
// no-op.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

struct bpf_object;
struct bpf_link;
struct bpf_object_skeleton;

namespace ks::pins {

inline constexpr const char* kDefaultDir = "/sys/fs/bpf/killswitch";

// What an earlier daemon left in a pin directory.
struct Found {
    std::vector<std::string> builds;       // state-<build> directories
    std::vector<uint64_t> generations;     // links-<generation> directories
    size_t links = 0;                      // pinned links over all generations
};
Found scan(const std::string& dir);

// The build of the BPF objects: a hash of their bytes. State maps are shared
// only within a build (the record and map layouts are the same).
std::string build_id(const std::vector<std::string_view>& objects);

// Turns pinning on for this process: creates dir, picks the next generation.
Status enable(const std::string& dir, const std::string& build);
bool enabled();
const std::string& dir();
uint64_t generation();
// True when state maps of this build were found and are being reused.
bool state_adopted();

// Before obj loads: its maps named in the state list that it does not share
// from another object reuse this build's pinned ones, or are pinned once
// created. Returns the number of maps reused.
Result<size_t> use_state_maps(bpf_object* obj);

// After attach: pins link as NAME (unique in the daemon) in this generation.
// A failure is logged: the program stays attached while the daemon lives.
void pin_link(bpf_link* link, const std::string& name);
// The same for a link (or a map) the daemon holds as a bare descriptor; unpin_name
// removes that pin (the link then goes when its descriptor is closed).
void pin_fd(int link_fd, const std::string& name);
void unpin_name(const std::string& name);
// Every attached program of a skeleton, named OBJECT.PROGRAM.
void pin_skeleton_links(const bpf_object_skeleton* s);
// Before an explicit detach: the program must really go.
void unpin_link(bpf_link* link);

// Once every program of this daemon is attached: the earlier generations'
// links and the other builds' state are removed, and their programs detach.
// Returns how many links were removed.
size_t retire_previous();

// `daemon --uninstall`: removes everything under dir. Returns the number of
// pinned objects removed.
Result<size_t> remove_all(const std::string& dir);

}  // namespace ks::pins
