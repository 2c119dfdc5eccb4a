// Closing a TCP connection from outside its process: SOCK_DESTROY through the
// sock_diag netlink interface (CONFIG_INET_DIAG_DESTROY). The peer gets a
// reset and the owner's next call fails with ECONNABORTED, so a client whose
// request was refused learns it at once instead of waiting for an answer that
// will never come.
#pragma once

#include <array>
#include <cstdint>

#include "common/result.h"

namespace ks {

struct TcpEndpoints {
    int family = 0;                  // AF_INET or AF_INET6
    std::array<uint8_t, 16> local{};  // IPv4: the first 4 bytes
    std::array<uint8_t, 16> remote{};
    uint16_t local_port = 0;  // host byte order
    uint16_t remote_port = 0;
    uint64_t cookie = 0;  // the socket's cookie: only that socket is destroyed
};

Status destroy_tcp_socket(const TcpEndpoints& s);

}  // namespace ks
