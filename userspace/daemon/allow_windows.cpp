// Maintenance windows (`killswitch allow`): a person lets one session's
// destructive operations through for a while, with a reason. The expiry
// lives in the kernel (allow_windows map, CLOCK_BOOTTIME), so a window closes
// on time even if the daemon is gone; the daemon writes allow_start and
// allow_end, and puts the window in the record of everything it let through.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "daemon/daemon_impl.h"

namespace ks::daemon_detail {

namespace {

int allow_map_fd(bpf_object* obj) { return bpf_object__find_map_fd_by_name(obj, "allow_windows"); }

json caller(const PeerCred& peer) {
    return {{"pid", peer.pid}, {"uid", peer.uid}, {"comm", comm_of(peer.pid)}};
}

}  // namespace

json AllowWindow::to_json() const {
    uint64_t now = boottime_ns();
    return {
        {"id", id},
        {"session", session},
        {"session_id", session_id},
        {"reason", reason},
        {"opened_by", opened_by},
        {"opened", format_realtime_ns(opened_realtime_ns)},
        {"until", format_realtime_ns(until_realtime_ns)},
        {"seconds", seconds},
        {"seconds_left", open && until_boot_ns > now ? (until_boot_ns - now) / 1000000000ull : 0},
        {"open", open}};
}

// The record of a window's start or end; who: {pid, uid, comm} of whoever
// caused it.
static json window_record(const char* event, const AllowWindow& w, const json& who) {
    return {{"event", event},
            {"pid", who["pid"]},
            {"ppid", 0},
            {"uid", who["uid"]},
            {"comm", who["comm"]},
            {"exe", ""},
            {"session", w.session},
            {"session_id", w.session_id},
            {"window_id", w.id},
            {"reason", w.reason},
            {"opened_by", w.opened_by},
            {"until", format_realtime_ns(w.until_realtime_ns)}};
}

json Daemon::window_of(uint32_t session_id) const {
    auto it = windows_.find(session_id);
    if (it == windows_.end()) return nullptr;
    const AllowWindow& w = it->second;
    return {{"id", w.id},
            {"reason", w.reason},
            {"opened_by", w.opened_by},
            {"until", format_realtime_ns(w.until_realtime_ns)}};
}

json Daemon::open_windows() const {
    json out = json::array();
    for (const auto& [sid, w] : windows_)
        if (w.open) out.push_back(w.to_json());
    return out;
}

void Daemon::end_window(AllowWindow& w, const std::string& how, const json& by) {
    int fd = allow_map_fd(bpf_->skeleton_object());
    if (fd < 0 || (bpf_map_delete_elem(fd, &w.session_id) != 0 && errno != ENOENT))
        spdlog::error("remove the allow window of session {} from the kernel: {}", w.session,
                      std::strerror(errno));
    w.open = false;
    json rec = window_record(
        "allow_end", w,
        by.is_null() ? json{{"pid", ::getpid()}, {"uid", 0}, {"comm", "killswitch"}} : by);
    rec["ended"] = how;
    if (!by.is_null()) rec["ended_by"] = by;
    audit_->append(rec);
    spdlog::warn("allow window of session {} ended: {}", w.session, how);
}

void Daemon::close_windows(const std::vector<Session>& ended_sessions) {
    uint64_t now = boottime_ns();
    for (auto& [sid, w] : windows_)
        if (w.open && w.until_boot_ns <= now) end_window(w, "expired", nullptr);
    for (const auto& s : ended_sessions) {
        auto it = windows_.find(s.id);
        if (it == windows_.end()) continue;
        if (it->second.open) end_window(it->second, "session ended", nullptr);
        windows_.erase(it);
    }
}

json Daemon::handle_allow(const std::string& cmd, const json& req, const PeerCred& peer) {
    if (cmd == "allow.list") return {{"ok", true}, {"windows", open_windows()}};
    // Only a person outside every session opens or ends a window: a guarded
    // process never widens what it may do, even as root.
    if (auto sid = bpf_->session_of(peer.pid))
        return {{"ok", false},
                {"error", "refused: the caller is guarded (session " + session_name(*sid) + ")"}};
    std::string name = req.value("session", "");
    const Session* s = sessions_->find_by_name(name);
    if (!s)
        return {{"ok", false},
                {"error", "no session named '" + name + "' (see killswitch status)"}};
    auto it = windows_.find(s->id);
    bool is_open =
        it != windows_.end() && it->second.open && it->second.until_boot_ns > boottime_ns();

    if (cmd == "allow.end") {
        if (!is_open)
            return {{"ok", false}, {"error", "session '" + name + "' has no open allow window"}};
        end_window(it->second, "ended early", caller(peer));
        (void)audit_->sync();
        return {{"ok", true}, {"window", it->second.to_json()}};
    }

    // allow.start
    std::string reason = req.value("reason", "");
    if (reason.find_first_not_of(" \t\r\n") == std::string::npos)
        return {{"ok", false}, {"error", "a reason is required (--reason TEXT)"}};
    uint64_t seconds = req.value("seconds", uint64_t{0});
    if (seconds < 1 || seconds > kMaxWindowSeconds)
        return {{"ok", false},
                {"error", "the duration must be from 1 second to 24 hours, got " +
                              std::to_string(seconds) + "s"}};
    if (is_open)
        return {{"ok", false},
                {"error", "session '" + name + "' already has an allow window until " +
                              format_realtime_ns(it->second.until_realtime_ns) +
                              "; end it first (killswitch allow --end --session " + name + ")"}};
    AllowWindow w;
    w.id = next_window_id_++;
    w.session_id = s->id;
    w.session = s->name;
    w.reason = reason;
    w.opened_by = caller(peer);
    w.seconds = static_cast<uint32_t>(seconds);
    w.opened_realtime_ns = realtime_now_ns();
    w.until_boot_ns = boottime_ns() + seconds * 1000000000ull;
    w.until_realtime_ns = w.opened_realtime_ns + seconds * 1000000000ull;
    ks_allow_window kw{w.until_boot_ns, w.id, 0};
    int fd = allow_map_fd(bpf_->skeleton_object());
    if (fd < 0 || bpf_map_update_elem(fd, &w.session_id, &kw, BPF_ANY) != 0)
        return {{"ok", false},
                {"error", std::string("cannot open the window in the kernel: ") +
                              std::strerror(fd < 0 ? -fd : errno)}};
    json rec = window_record("allow_start", w, w.opened_by);
    rec["seconds"] = w.seconds;
    audit_->append(rec);
    (void)audit_->sync();
    spdlog::warn("allow window for session {} opened by pid {} for {}s: {}", w.session, peer.pid,
                 w.seconds, w.reason);
    windows_[s->id] = w;
    return {{"ok", true}, {"window", w.to_json()}};
}

}  // namespace ks::daemon_detail
