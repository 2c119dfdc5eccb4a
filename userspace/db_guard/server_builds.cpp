#include "db_guard/server_builds.h"

#include <elf.h>
#include <fcntl.h>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "common/fd.h"
#include "common/hex.h"

namespace ks::db {

namespace {

constexpr size_t kMaxNotes = 64 * 1024;  // bytes of PT_NOTE read, at most
constexpr size_t kMaxFiles = 4096;       // cached executables, then read again

bool read_at(int fd, void* buf, size_t n, off_t at) {
    return ::pread(fd, buf, n, at) == static_cast<ssize_t>(n);
}

// What a server executable is known as (listeners.cpp: executable_name).
std::string program_name(const std::string& path) {
    std::string name = path.substr(path.rfind('/') + 1);
    return name == "redis-check-rdb" ? "redis-server" : name;
}

}  // namespace

std::string elf_build_id(const std::string& path) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (fd.get() < 0) return {};
    Elf64_Ehdr eh;
    if (!read_at(fd.get(), &eh, sizeof(eh), 0) || std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
        eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
        eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > 256)
        return {};
    for (unsigned i = 0; i < eh.e_phnum; ++i) {
        Elf64_Phdr ph;
        if (!read_at(fd.get(), &ph, sizeof(ph), static_cast<off_t>(eh.e_phoff + i * sizeof(ph))))
            return {};
        if (ph.p_type != PT_NOTE || ph.p_filesz > kMaxNotes) continue;
        std::string notes(ph.p_filesz, '\0');
        if (!read_at(fd.get(), notes.data(), notes.size(), static_cast<off_t>(ph.p_offset)))
            continue;
        auto align = [&](size_t n) { return (n + 3) & ~size_t{3}; };  // 4 in ELF64 notes too
        for (size_t at = 0; at + sizeof(Elf64_Nhdr) <= notes.size();) {
            Elf64_Nhdr nh;
            std::memcpy(&nh, notes.data() + at, sizeof(nh));
            size_t name_at = at + sizeof(nh), desc_at = name_at + align(nh.n_namesz);
            size_t next = desc_at + align(nh.n_descsz);
            if (next > notes.size() || next <= at) break;
            if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
                std::memcmp(notes.data() + name_at, "GNU", 4) == 0 && nh.n_descsz > 0) {
                return hex_digits(std::string_view(notes).substr(desc_at, nh.n_descsz));
            }
            at = next;
        }
    }
    return {};
}

std::vector<std::string> ServerBuilds::default_places() {
    return {"/usr/lib/postgresql/*/bin/postgres", "/usr/pgsql-*/bin/postgres",
            "/usr/local/pgsql/bin/postgres",      "/usr/sbin/mariadbd",
            "/usr/sbin/mysqld",                   "/usr/bin/mariadbd",
            "/usr/bin/mysqld",                    "/usr/bin/redis-check-rdb",
            "/usr/bin/redis-server",              "/usr/local/bin/redis-server",
            "/usr/bin/mongod",                    "/usr/local/bin/mongod",
            "/usr/sbin/pgbouncer",                "/usr/bin/pgbouncer"};
}

ServerBuilds::ServerBuilds(std::vector<std::string> places) : places_(std::move(places)) {
    refresh();
}

std::string ServerBuilds::build_id(const std::string& path) {
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return {};
    FileKey key{st.st_dev, st.st_ino, st.st_size, st.st_mtim.tv_sec};
    if (auto it = ids_.find(key); it != ids_.end()) return it->second;
    if (ids_.size() >= kMaxFiles) ids_.clear();
    return ids_[key] = elf_build_id(path);
}

void ServerBuilds::refresh() {
    std::lock_guard lock(mu_);
    for (const auto& pattern : places_) {
        glob_t g{};
        if (::glob(pattern.c_str(), GLOB_NOSORT, nullptr, &g) == 0)
            for (size_t i = 0; i < g.gl_pathc; ++i) {
                std::string path = g.gl_pathv[i];
                if (std::string id = build_id(path); !id.empty())
                    programs_.emplace(id, program_name(path));
            }
        ::globfree(&g);
    }
}

std::string ServerBuilds::program_of(const std::string& exe) {
    std::lock_guard lock(mu_);
    std::string id = build_id(exe);
    if (id.empty()) return {};
    auto it = programs_.find(id);
    return it == programs_.end() ? std::string() : it->second;
}

void ServerBuilds::learn(const std::string& exe, const std::string& program) {
    std::lock_guard lock(mu_);
    if (std::string id = build_id(exe); !id.empty()) programs_.emplace(id, program);
}

}  // namespace ks::db
