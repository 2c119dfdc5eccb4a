#include "common/identity.h"

#include <sys/random.h>
#include <sys/utsname.h>

#include <array>
#include <cerrno>
#include <cctype>
#include <fstream>

namespace ks {
namespace {

std::string hex(const unsigned char* p, size_t n) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(n * 2);
    for (size_t i = 0; i < n; ++i) {
        out += kHex[p[i] >> 4];
        out += kHex[p[i] & 0xf];
    }
    return out;
}

// A machine id is 32 lower-case hex digits ("uninitialized" and empty files
// exist on images that have not booted yet).
bool valid_machine_id(const std::string& s) {
    if (s.size() != 32) return false;
    for (char c : s)
        if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
    return true;
}

}  // namespace

std::string machine_id(const std::string& root) {
    std::string base = root == "/" ? "" : root;
    for (const char* rel : {"/etc/machine-id", "/var/lib/dbus/machine-id"}) {
        std::ifstream in(base + rel);
        std::string line;
        if (in && std::getline(in, line)) {
            for (auto& c : line) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            if (valid_machine_id(line)) return line;
        }
    }
    return {};
}

std::string host_name() {
    utsname u{};
    return ::uname(&u) == 0 ? std::string(u.nodename) : std::string();
}

std::string new_run_id() {
    std::array<unsigned char, 16> b{};
    size_t got = 0;
    while (got < b.size()) {
        ssize_t n = ::getrandom(b.data() + got, b.size() - got, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            break;  // not on Linux 3.17+, whose pool is ready on any booted system
        }
        got += static_cast<size_t>(n);
    }
    return hex(b.data(), b.size());
}

}  // namespace ks
