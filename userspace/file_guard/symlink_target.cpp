#include "file_guard/symlink_target.h"

#include <killswitch/abi/events.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstring>
#include <thread>

#include "actions/actions.h"
#include "file_guard/file_guard_decide.h"

namespace ks {

Result<std::string> read_link_path(const FileEvent& ev) {
    if (ev.upath == 0) return make_error("no link path");
    std::string buf(KS_FILE_PATH_MAX, '\0');
    iovec local{buf.data(), buf.size()};
    // A read may stop at the end of a mapping: read up to the next page
    // first, then on.
    size_t got = 0;
    uint64_t at = ev.upath;
    while (got < buf.size()) {
        size_t to_page = 4096 - (at % 4096);
        size_t want = std::min(to_page, buf.size() - got);
        local = {buf.data() + got, want};
        iovec remote{reinterpret_cast<void*>(at), want};
        ssize_t n = ::process_vm_readv(ev.hdr.pid, &local, 1, &remote, 1, 0);
        if (n <= 0) {
            if (got) break;
            return sys_error("read the link path of pid " + std::to_string(ev.hdr.pid));
        }
        if (std::memchr(buf.data() + got, '\0', static_cast<size_t>(n)))
            return std::string(buf.c_str());
        got += static_cast<size_t>(n);
        at += static_cast<uint64_t>(n);
    }
    return make_error("the link path of pid " + std::to_string(ev.hdr.pid) + " is too long");
}

std::string symlink_target_path(const FileEvent& ev, const std::string& link_path) {
    if (ev.path.empty()) return "";
    if (ev.path[0] == '/') return caller_path(ev.hdr.pid, ev.dfd, ev.path);
    // A relative target is followed from the link's own directory.
    size_t slash = link_path.rfind('/');
    std::string dir = slash == std::string::npos ? ""
                      : slash == 0               ? "/"
                                                 : link_path.substr(0, slash);
    return caller_path(ev.hdr.pid, ev.dfd, dir) + "/" + ev.path;
}

namespace {

// The caller stops as its call returns: its name is made by then.
Status wait_stopped(const FileEvent& ev) {
    using namespace std::chrono;
    auto until = steady_clock::now() + seconds(1);
    while (!task_stopped(ev.hdr.tid)) {
        if (task_state(ev.hdr.tid) == '\0') return make_error("it is gone");
        if (steady_clock::now() > until) return make_error("it did not stop within a second");
        std::this_thread::sleep_for(microseconds(200));
    }
    return {};
}

}  // namespace

Result<bool> remove_made_hard_link(const FileEvent& ev, const std::string& link_path) {
    if (auto st = wait_stopped(ev); !st) return st.error();
    std::string root = "/proc/" + std::to_string(ev.hdr.pid) + "/root";
    std::string old =
        ev.path.empty() || ev.path[0] == '/' ? root + ev.path : root + ev.start_dir + "/" + ev.path;
    std::string made = caller_path(ev.hdr.pid, ev.dfd, link_path);
    struct stat was {
    }, now{};
    if (::stat(old.c_str(), &was) != 0 || ::lstat(made.c_str(), &now) != 0) return false;
    if (was.st_dev != now.st_dev || was.st_ino != now.st_ino || S_ISDIR(now.st_mode)) return false;
    char a[PATH_MAX], b[PATH_MAX];
    // The same name (linking a file onto itself fails; a second name for
    // the same path would be a hard link of the directory above): kept.
    if (::realpath(old.c_str(), a) && ::realpath(made.c_str(), b) && std::strcmp(a, b) == 0)
        return false;
    if (::unlink(made.c_str()) != 0) return sys_error("remove " + made);
    return true;
}

Result<bool> remove_made_link(const FileEvent& ev, const std::string& link_path,
                              const std::string& target) {
    if (auto st = wait_stopped(ev); !st) return st.error();
    // Through the caller's root, working directory or fd, the last name
    // not followed.
    std::string at = caller_path(ev.hdr.pid, ev.dfd, link_path);
    struct stat st {};
    if (::lstat(at.c_str(), &st) != 0) return false;  // the call failed: nothing made
    if (!S_ISLNK(st.st_mode)) return false;
    std::string buf(static_cast<size_t>(st.st_size) + 1, '\0');
    ssize_t n = ::readlink(at.c_str(), buf.data(), buf.size());
    if (n < 0 || static_cast<size_t>(n) != target.size() || buf.compare(0, target.size(), target))
        return false;  // another link by now: not the daemon's to remove
    if (::unlink(at.c_str()) != 0) return sys_error("remove " + at);
    return true;
}

}  // namespace ks
