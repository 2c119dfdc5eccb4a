// Self-protection's decisions: the kernel killed (or, at the LSM layer,
// refused) a guarded process that went for killswitch itself (signals,
// ptrace, pidfd, bpf()) or for the kernel under it (modules, kexec, reboot).
// The decision says why, in words, and what the session gets on top of it.
#pragma once

#include "abi/decode.h"
#include "decision/decision.h"
#include "nlohmann/json.hpp"
#include "policy/policy.h"

namespace ks {

// daemon_pid: the process the self-protection rules keep guarded ones away from.
Decision decide_tamper(const TamperEvent& ev, int daemon_pid, const policy::Policy& policy);

// The record's own fields (what, target, layer, signal...).
nlohmann::json tamper_facts(const TamperEvent& ev);

}  // namespace ks
