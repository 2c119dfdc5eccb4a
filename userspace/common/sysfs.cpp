#include "common/sysfs.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

#include "common/fd.h"

namespace ks {
namespace {

std::string unescape_octal(const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 3 < s.size() && s.find_first_not_of("01234567", i + 1) >= i + 4) {
            out.push_back(static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8)));
            i += 3;
        } else {
            out.push_back(s[i]);
        }
    }
    return out;
}

}  // namespace

std::vector<MountEntry> parse_mounts(const std::string& text) {
    std::vector<MountEntry> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream ls(line);
        MountEntry e;
        if (!(ls >> e.source >> e.target >> e.fstype >> e.options)) continue;
        e.source = unescape_octal(e.source);
        e.target = unescape_octal(e.target);
        out.push_back(std::move(e));
    }
    return out;
}

std::vector<MountEntry> read_mounts(const std::string& path) {
    auto text = read_file(path);
    if (!text) return {};
    return parse_mounts(*text);
}

std::optional<std::string> find_mount(const std::string& fstype, const std::string& mounts_path) {
    for (const auto& m : read_mounts(mounts_path))
        if (m.fstype == fstype) return m.target;
    return std::nullopt;
}

Result<std::string> ensure_mounted(const std::string& fstype, const std::string& target,
                                   bool any_target) {
    for (const auto& m : read_mounts()) {
        if (m.fstype != fstype) continue;
        if (any_target || m.target == target) return m.target;
    }
    if (::mkdir(target.c_str(), 0755) != 0 && errno != EEXIST) return sys_error("mkdir " + target);
    if (::mount(fstype.c_str(), target.c_str(), fstype.c_str(), 0, nullptr) != 0)
        return sys_error("mount -t " + fstype + " " + target);
    return target;
}

Result<std::string> cgroup2_mount() {
    auto m = find_mount("cgroup2");
    if (!m)
        return make_error("no cgroup v2 filesystem in /proc/mounts (killswitch needs cgroup v2)");
    return *m;
}

Result<std::string> active_lsm_list() {
    auto mnt = ensure_mounted("securityfs", "/sys/kernel/security", true);
    if (!mnt) return mnt.error();
    auto text = read_file(*mnt + "/lsm");
    if (!text) return text.error();
    std::string list = *text;
    while (!list.empty() && (list.back() == '\n' || list.back() == '\0')) list.pop_back();
    return list;
}

bool list_has(const std::string& list, const std::string& item) {
    size_t start = 0;
    while (start <= list.size()) {
        size_t end = list.find(',', start);
        if (end == std::string::npos) end = list.size();
        if (list.compare(start, end - start, item) == 0) return true;
        start = end + 1;
    }
    return false;
}

Result<std::string> read_file(const std::string& path) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return sys_error("open " + path);
    std::string out;
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof(buf));
        if (n < 0) {
            if (errno == EINTR) continue;
            return sys_error("read " + path);
        }
        if (n == 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

Status write_file(const std::string& path, const std::string& data) {
    Fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd.valid()) return sys_error("open " + path);
    ssize_t n = ::write(fd.get(), data.data(), data.size());
    if (n < 0) return sys_error("write " + path);
    if (static_cast<size_t>(n) != data.size()) return make_error("short write to " + path);
    return {};
}

Status write_file_atomic(const std::string& path, const std::string& data, mode_t mode) {
    std::string tmp = path + ".tmp";
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
    if (!fd.valid()) return sys_error("open " + tmp);
    ssize_t n = ::write(fd.get(), data.data(), data.size());
    if (n < 0) return sys_error("write " + tmp);
    if (static_cast<size_t>(n) != data.size()) return make_error("short write to " + tmp);
    if (::rename(tmp.c_str(), path.c_str()) != 0) return sys_error("rename " + tmp);
    return {};
}

Result<unsigned long long> cgroup_id_of(const std::string& dir) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) return sys_error("stat " + dir);
    return static_cast<unsigned long long>(st.st_ino);
}

Result<std::string> cgroup_of_pid(int pid) {
    auto text = read_file("/proc/" + std::to_string(pid) + "/cgroup");
    if (!text) return text.error();
    std::istringstream in(*text);
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("0::", 0) == 0) return line.substr(3);
    }
    return make_error("pid " + std::to_string(pid) + " has no cgroup v2 entry");
}

}  // namespace ks
