// SHA-256 (OpenSSL), as lower-case hex: the policy's fingerprint, which an
// operator compares across hosts with sha256sum.
#pragma once

#include <string>
#include <string_view>

namespace ks {

std::string sha256_hex(std::string_view data);

}  // namespace ks
