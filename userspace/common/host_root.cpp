#include "common/host_root.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "common/fd.h"

namespace ks {
namespace {

bool g_entered = false;

std::string host_process(const struct stat& root) {
    auto has_root = [&](const std::string& pid) {
        struct stat st {};
        return ::stat(("/proc/" + pid + "/root/").c_str(), &st) == 0 && st.st_dev == root.st_dev &&
               st.st_ino == root.st_ino;
    };
    if (has_root("1")) return "1";
    DIR* d = ::opendir("/proc");
    if (!d) return "";
    std::string found;
    long best = 0;
    while (dirent* e = ::readdir(d)) {
        char* end = nullptr;
        long pid = std::strtol(e->d_name, &end, 10);
        if (pid <= 1 || *end != '\0' || (best && pid >= best)) continue;
        if (has_root(e->d_name)) {
            best = pid;
            found = e->d_name;
        }
    }
    ::closedir(d);
    return found;
}

}  // namespace

Status enter_host_root(const std::string& dir) {
    struct stat want {};
    if (::stat(dir.c_str(), &want) != 0) return sys_error("--host-root " + dir);
    if (!S_ISDIR(want.st_mode)) return make_error("--host-root " + dir + ": not a directory");
    // A process of the host's: one whose / is dir. PID 1 when it can be
    // read (where a hardened kernel hides it, the first other one).
    std::string host_pid = host_process(want);
    if (host_pid.empty())
        return make_error("--host-root " + dir +
                          ": no process here has it as its / (mount the host's / there: -v /:" +
                          dir + ", a hostPath volume of /; and share the host's PID namespace: "
                          "hostPID: true, podman --pid=host)");
    struct stat ours {}, theirs {};
    std::string ns_path = "/proc/" + host_pid + "/ns/mnt";
    if (::stat("/proc/self/ns/mnt", &ours) == 0 && ::stat(ns_path.c_str(), &theirs) == 0 &&
        ours.st_ino == theirs.st_ino) {
        g_entered = true;  // already the host's namespace (not in a container)
        return {};
    }
    // The container's name-service modules, loaded now: after the switch
    // the host's files answer (its users and groups), through them.
    ::getpwuid(0);
    ::getgrgid(0);
    addrinfo* ai = nullptr;
    if (::getaddrinfo("localhost", nullptr, nullptr, &ai) == 0) ::freeaddrinfo(ai);

    Fd ns(::open(ns_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns.valid()) return sys_error("--host-root: open " + ns_path);
    if (::setns(ns.get(), CLONE_NEWNS) != 0)
        return sys_error(
            "--host-root: join the host's mount namespace (setns; the container must be "
            "privileged: CAP_SYS_ADMIN and CAP_SYS_CHROOT)");
    if (::chdir("/") != 0) return sys_error("--host-root: chdir /");
    // And its cgroup namespace: /proc/PID/cgroup then names the host's
    // cgroups as they are under the cgroup2 mount (a pod may have a
    // namespace of its own).
    std::string cg_path = "/proc/" + host_pid + "/ns/cgroup";
    if (::stat("/proc/self/ns/cgroup", &ours) == 0 && ::stat(cg_path.c_str(), &theirs) == 0 &&
        ours.st_ino != theirs.st_ino) {
        Fd cg(::open(cg_path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!cg.valid() || ::setns(cg.get(), CLONE_NEWCGROUP) != 0)
            return sys_error("--host-root: join the host's cgroup namespace (" + cg_path + ")");
    }
    g_entered = true;
    return {};
}

bool in_host_root() { return g_entered; }

}  // namespace ks
