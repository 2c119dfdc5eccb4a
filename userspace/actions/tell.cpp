#include "actions/tell.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "common/fd.h"

namespace ks {

namespace {

// The process's own open file description of fd (Linux 5.6+; root).
Result<Fd> borrow_fd(int pid, int fd) {
    Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!pidfd.valid()) return sys_error("pidfd_open " + std::to_string(pid));
    Fd got(static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd.get(), fd, 0)));
    if (!got.valid()) return sys_error("pidfd_getfd " + std::to_string(pid));
    return got;
}

Status write_all(int fd, std::string_view msg, bool socket) {
    size_t off = 0;
    while (off < msg.size()) {
        ssize_t n =
            socket ? ::send(fd, msg.data() + off, msg.size() - off, MSG_DONTWAIT | MSG_NOSIGNAL)
                   : ::write(fd, msg.data() + off, msg.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return sys_error("write");
        off += static_cast<size_t>(n);
    }
    return {};
}

Result<std::string> tell_one(int pid, std::string_view msg, const FileWriteCheck& file_ok) {
    if (pid <= 0) return make_error("no process");
    std::string who = "pid " + std::to_string(pid);
    std::string path = "/proc/" + std::to_string(pid) + "/fd/2";
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return sys_error("stat " + path);
    std::string kind;
    Fd fd;
    if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
        // A new open file description: O_NONBLOCK is ours alone.
        fd.reset(::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
        if (!fd.valid()) return sys_error("open " + path);
        if (S_ISFIFO(st.st_mode))
            kind = "pipe";
        else if (::isatty(fd.get()))
            kind = "terminal";
        else
            return make_error(who + "'s stderr is a device, not a terminal: not written");
    } else if (S_ISSOCK(st.st_mode)) {
        auto got = borrow_fd(pid, 2);
        if (!got) return got.error();
        fd = std::move(got.value());
        kind = "socket";
    } else if (S_ISREG(st.st_mode)) {
        char target[PATH_MAX];
        ssize_t n = ::readlink(path.c_str(), target, sizeof(target) - 1);
        if (n <= 0) return sys_error("readlink " + path);
        std::string file(target, static_cast<size_t>(n));
        if (!file_ok || !file_ok(file))
            return make_error(who + "'s stderr is the file " + file +
                              ", which killswitch does not write: not written");
        auto got = borrow_fd(pid, 2);
        if (!got) return got.error();
        fd = std::move(got.value());
        int acc = ::fcntl(fd.get(), F_GETFL) & O_ACCMODE;
        if (acc != O_WRONLY && acc != O_RDWR)
            return make_error(who + "'s stderr is not open for writing: not written");
        kind = "file " + file;
    } else {
        return make_error(who + "'s stderr is neither a pipe, a terminal, a socket nor a file");
    }
    if (auto w = write_all(fd.get(), msg, S_ISSOCK(st.st_mode)); !w)
        return w.error().wrap("write to " + who + "'s stderr");
    return who + " stderr (" + kind + ")";
}

}  // namespace

Result<std::string> tell_process(std::span<const int> pids, std::string_view msg,
                                 const FileWriteCheck& file_ok) {
    std::string errors;
    for (size_t i = 0; i < pids.size(); ++i) {
        int pid = pids[i];
        if (pid <= 0 || std::find(pids.begin(), pids.begin() + i, pid) != pids.begin() + i)
            continue;
        auto r = tell_one(pid, msg, file_ok);
        if (r) return r;
        errors += (errors.empty() ? "" : "; ") + r.error().str();
    }
    return make_error(errors.empty() ? "no process to tell" : errors);
}

}  // namespace ks
