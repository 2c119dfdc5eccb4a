// Database servers known by what their executable is, not what it is
// called: a copy of postgres, mariadbd or redis-server under another name
// or path is the same program, and has the same ELF build ID (the
// NT_GNU_BUILD_ID note the linker writes; Debian builds every binary with
// one, and strip keeps it). databases.discover (listeners.h) asks for each
// process whose name and executable's name are no server's.
//
// Known build IDs come from the servers' and proxies' executables where
// packages install them (kServerPlaces) and from every process running
// under a server's own executable name. A server rebuilt from its sources
// (another build ID) is not known this way.
#pragma once

#include <sys/types.h>

#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

namespace ks::db {

// The build ID of the ELF file at path (a link such as /proc/PID/exe is
// followed), in hex; empty when it has none or is no ELF file.
std::string elf_build_id(const std::string& path);

class ServerBuilds {
  public:
    // places: paths (glob patterns) of server and proxy executables; each
    // is known by its file name (redis-check-rdb as redis-server).
    explicit ServerBuilds(std::vector<std::string> places = default_places());
    static std::vector<std::string> default_places();

    // The server or proxy program (postgres, mariadbd, redis-server,
    // pgbouncer...) whose copy the executable at exe is; empty if none.
    std::string program_of(const std::string& exe);
    // A process runs under a server's own name: its executable is that server.
    void learn(const std::string& exe, const std::string& program);
    // Reads the places again (a package installed or upgraded since).
    void refresh();

  private:
    using FileKey = std::tuple<dev_t, ino_t, off_t, long>;  // device, inode, size, mtime
    std::string build_id(const std::string& path);          // cached by FileKey

    std::mutex mu_;
    std::vector<std::string> places_;
    std::map<FileKey, std::string> ids_;
    std::map<std::string, std::string> programs_;  // build ID -> program
};

}  // namespace ks::db
