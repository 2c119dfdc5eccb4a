// Self-protection's decisions: the kernel killed (or, at the LSM layer,
// refused) a guarded process that went for killswitch itself (signals,
// ptrace, pidfd, bpf()) or for the kernel under it (modules, kexec, reboot),
// or for a process outside its session (reach).
// The decision says why, in words, and what the session gets on top of it.
#pragma once

#include "abi/decode.h"
#include "decision/decision.h"
#include "nlohmann/json.hpp"
#include "policy/policy.h"
#include "self_guard/reach.h"

namespace ks {

// daemon_pid: the process the self-protection rules keep guarded ones away from.
Decision decide_tamper(const TamperEvent& ev, int daemon_pid, const policy::Policy& policy);

// The record's own fields (what, target, layer, signal...).
nlohmann::json tamper_facts(const TamperEvent& ev);

// Reach (ev.what KS_TAMPER_REACH_*): a guarded process went for target, a
// process outside its session. Refused by an LSM or fmod_ret hook (the caller
// goes on), killed before the call at a libc entry (or, held there, by the
// daemon), or contained: killed as a raw system call returned.
bool is_reach(const TamperEvent& ev);
Decision decide_reach(const TamperEvent& ev, const ReachedProcess& target);
nlohmann::json reach_facts(const TamperEvent& ev, const ReachedProcess& target);

}  // namespace ks
