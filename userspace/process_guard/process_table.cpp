#include "process_guard/process_table.h"

#include <algorithm>

namespace ks {

void ProcessTable::on_exec(const ExecEvent& ev) {
    auto& p = procs_[ev.hdr.pid];
    p.pid = ev.hdr.pid;
    p.ppid = ev.hdr.ppid;
    p.session_id = ev.hdr.session_id;
    p.uid = ev.hdr.uid;
    p.comm = ev.hdr.comm;
    p.exe = ev.exe;
    p.exited = false;
}

void ProcessTable::on_fork(const ForkEvent& ev) {
    ProcessInfo child;
    child.pid = ev.hdr.pid;
    child.ppid = ev.hdr.ppid;
    child.session_id = ev.hdr.session_id;
    child.uid = ev.hdr.uid;
    child.comm = ev.hdr.comm;
    if (const auto* parent = find(ev.hdr.ppid)) child.exe = parent->exe;
    procs_[child.pid] = std::move(child);
}

void ProcessTable::on_exit(const ExitEvent& ev) {
    auto it = procs_.find(ev.hdr.pid);
    if (it == procs_.end() || it->second.exited) return;
    it->second.exited = true;
    retire(ev.hdr.pid);
}

void ProcessTable::add(ProcessInfo info) { procs_[info.pid] = std::move(info); }

void ProcessTable::retire(int pid) {
    exited_.push_back(pid);
    while (exited_.size() > exited_kept_) {
        int old = exited_.front();
        exited_.pop_front();
        auto it = procs_.find(old);
        // The pid may have been reused by a live process since.
        if (it != procs_.end() && it->second.exited) procs_.erase(it);
    }
}

const ProcessInfo* ProcessTable::find(int pid) const {
    auto it = procs_.find(pid);
    return it == procs_.end() ? nullptr : &it->second;
}

std::vector<LineageEntry> ProcessTable::lineage(int pid, size_t max_depth) const {
    std::vector<LineageEntry> out;
    const ProcessInfo* self = find(pid);
    if (!self) return out;
    uint32_t session = self->session_id;
    int cur = self->ppid;
    while (out.size() < max_depth && cur > 0) {
        const ProcessInfo* p = find(cur);
        if (!p || p->session_id != session) break;
        if (std::any_of(out.begin(), out.end(), [&](const auto& e) { return e.pid == cur; })) break;
        out.push_back({p->pid, p->comm, p->exe});
        cur = p->ppid;
    }
    return out;
}

std::vector<int> ProcessTable::members(uint32_t session_id) const {
    std::vector<int> out;
    for (const auto& [pid, p] : procs_)
        if (p.session_id == session_id && !p.exited) out.push_back(pid);
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace ks
