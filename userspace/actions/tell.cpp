#include "actions/tell.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "common/fd.h"

namespace ks {

namespace {

Result<std::string> tell_one(int pid, std::string_view msg) {
    if (pid <= 0) return make_error("no process");
    std::string path = "/proc/" + std::to_string(pid) + "/fd/2";
    // A new open file description: O_NONBLOCK is ours alone.
    Fd fd(::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
    if (!fd.valid()) return sys_error("open " + path);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return sys_error("stat " + path);
    std::string kind;
    if (S_ISFIFO(st.st_mode))
        kind = "pipe";
    else if (S_ISCHR(st.st_mode) && ::isatty(fd.get()))
        kind = "terminal";
    else
        return make_error("pid " + std::to_string(pid) +
                          "'s stderr is neither a pipe nor a terminal: not written");
    size_t off = 0;
    while (off < msg.size()) {
        ssize_t n = ::write(fd.get(), msg.data() + off, msg.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return sys_error("write to pid " + std::to_string(pid) + "'s stderr");
        off += static_cast<size_t>(n);
    }
    return "pid " + std::to_string(pid) + " stderr (" + kind + ")";
}

}  // namespace

Result<std::string> tell_process(int pid, int fallback_pid, std::string_view msg) {
    auto r = tell_one(pid, msg);
    if (r || fallback_pid <= 0 || fallback_pid == pid) return r;
    // Killed in the kernel before we got here: its fds are closed.
    auto f = tell_one(fallback_pid, msg);
    if (f) return f;
    return make_error(r.error().str() + "; " + f.error().str());
}

}  // namespace ks
