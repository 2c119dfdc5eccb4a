// Shared by the relay's MySQL unit tests (db_relay_wire_test.cpp,
// db_effect_mysql_test.cpp): protocol packets byte for byte.
#pragma once

#include <cstdint>
#include <string>

namespace ks {

// A packet: 3-byte little-endian length, sequence id, payload.
inline std::string mysql_packet(uint8_t seq, const std::string& payload) {
    auto n = static_cast<uint32_t>(payload.size());
    std::string p;
    p += static_cast<char>(n & 0xff);
    p += static_cast<char>((n >> 8) & 0xff);
    p += static_cast<char>((n >> 16) & 0xff);
    p += static_cast<char>(seq);
    return p + payload;
}

// The server's greeting (HandshakeV10) with these capabilities.
inline std::string mysql_greeting(uint32_t caps) {
    std::string g;
    g += '\x0a';
    g += std::string("10.11.6-MariaDB") + '\0';
    g += std::string(4, '\x01');  // connection id
    g += std::string(8, 'a');     // scramble
    g += '\0';
    g += static_cast<char>(caps & 0xff);
    g += static_cast<char>((caps >> 8) & 0xff);
    g += '\x21';                // charset
    g += std::string(2, '\0');  // status
    g += static_cast<char>((caps >> 16) & 0xff);
    g += static_cast<char>((caps >> 24) & 0xff);
    g += std::string(20, 'b');
    return mysql_packet(0, g);
}

}  // namespace ks
