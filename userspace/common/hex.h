// Bytes as hexadecimal digits, two a byte (lower case unless asked): build
// IDs, digests, machine ids, and the literals the relay writes for values.
#pragma once

#include <string>
#include <string_view>

namespace ks {

inline std::string hex_digits(std::string_view bytes, bool upper = false) {
    const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (char ch : bytes) {
        auto b = static_cast<unsigned char>(ch);
        out += digits[b >> 4];
        out += digits[b & 15];
    }
    return out;
}

}  // namespace ks
