// Who writes a record: the host (its machine id, as systemd and D-Bus name
// it) and the daemon's run (a random id new at each start). With the run's
// `seq` they name a record uniquely across a fleet.
#pragma once

#include <string>

namespace ks {

// /etc/machine-id, else /var/lib/dbus/machine-id, under root ("" or "/" for
// this system's; a containerised daemon gives the host's root): 32 hex
// digits. Empty when neither holds one.
std::string machine_id(const std::string& root = "");

// The kernel's host name (uname).
std::string host_name();

// 32 random hex digits (getrandom(2)), the same form as a machine id.
std::string new_run_id();

}  // namespace ks
