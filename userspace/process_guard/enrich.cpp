#include "process_guard/enrich.h"

namespace ks {

std::string session_name(const SessionManager& sessions, uint32_t id) {
    if (const Session* s = sessions.find(id)) return s->name;
    if (const Session* s = sessions.find_ended(id)) return s->name;
    return "unknown-" + std::to_string(id);
}

Subject enrich(const EventHeader& h, const ProcessTable& table, const SessionManager& sessions) {
    Subject s;
    s.ts_boot_ns = h.ts_boot_ns;
    s.pid = h.pid;
    s.tid = h.tid;
    s.ppid = h.ppid;
    s.uid = h.uid;
    s.comm = h.comm;
    const ProcessInfo* p = table.find(h.pid);
    s.exe = p ? p->exe : "";
    s.session_id = h.session_id;
    s.cgroup_id = h.cgroup_id;
    if (const Session* sess = sessions.find(h.session_id)) {
        s.session = sess->name;
        s.cgroup_path = sess->cgroup_path;
        if (sess->cgroup_id == h.cgroup_id) s.cgroup = sess->cgroup;
    } else {
        s.session = session_name(sessions, h.session_id);
    }
    for (auto& l : table.lineage(h.pid)) s.lineage.push_back({l.pid, l.comm, l.exe});
    return s;
}

}  // namespace ks
