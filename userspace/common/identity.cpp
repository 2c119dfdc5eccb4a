#include "common/identity.h"

#include <sys/random.h>
#include <sys/utsname.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <fstream>

#include "common/hex.h"

namespace ks {
namespace {

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
    return hex_digits(std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
}

}  // namespace ks
