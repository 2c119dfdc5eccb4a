// Closing a TCP connection from outside its process: SOCK_DESTROY through the
// sock_diag netlink interface (CONFIG_INET_DIAG_DESTROY). The peer gets a
// reset and the owner's next call fails with ECONNABORTED, so a client whose
// request was refused learns it at once instead of waiting for an answer that
// will never come.
#pragma once

#include <array>
#include <cstdint>

#include "common/result.h"
#include "decision/decision.h"

namespace ks {

// TcpEndpoints: decision/decision.h (the connection a refusal is about).

Status destroy_tcp_socket(const TcpEndpoints& s);

}  // namespace ks
