#include "self_guard/reach.h"

#include <dirent.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace ks {

namespace {

// PF_EXITING in the flags of /proc/PID/stat: the process is on its way out.
constexpr unsigned long kPfExiting = 0x4;

// The process group of pid (field 5 of /proc/PID/stat, after the comm in
// parentheses, which may itself hold spaces and parentheses); -1 when gone,
// a zombie or exiting (a signal does nothing to it, and it has left its
// session: its exit took it out of guarded_tasks while /proc may still show
// it running, so it would look like a process outside every session).
long pgrp_of(int pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(f, line)) return -1;
    auto close = line.rfind(')');
    if (close == std::string::npos) return -1;
    std::istringstream rest(line.substr(close + 1));
    std::string state;
    long ppid = 0, pgrp = -1, session = 0, tty = 0, tpgid = 0;
    unsigned long flags = 0;
    rest >> state >> ppid >> pgrp >> session >> tty >> tpgid >> flags;
    if (!rest || state == "Z" || state == "X" || (flags & kPfExiting)) return -1;
    return pgrp;
}

}  // namespace

int tgid_of(int tid) {
    std::ifstream f("/proc/" + std::to_string(tid) + "/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("Tgid:", 0) == 0) return std::atoi(line.c_str() + 5);
    return 0;
}

std::vector<int> reached_processes(int caller, int64_t target) {
    if (target > 0) {
        int tgid = tgid_of(static_cast<int>(target));
        if (tgid > 0 && pgrp_of(tgid) >= 0) return {tgid};
        return {};
    }
    long group = target == 0 ? pgrp_of(caller) : -target;
    std::vector<int> members;
    if (group <= 0) return members;
    DIR* d = ::opendir("/proc");
    if (!d) return members;
    while (dirent* e = ::readdir(d)) {
        char* end = nullptr;
        long pid = std::strtol(e->d_name, &end, 10);
        if (pid <= 0 || *end) continue;
        if (pgrp_of(static_cast<int>(pid)) == group) members.push_back(static_cast<int>(pid));
    }
    ::closedir(d);
    return members;
}

bool names_program(const std::vector<std::string>& names, const std::string& comm) {
    for (const auto& n : names)
        if (n.substr(0, 15) == comm) return true;
    return false;
}

}  // namespace ks
