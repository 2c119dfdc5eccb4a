#include "common/digest.h"

#include <openssl/evp.h>

#include <array>

#include "common/hex.h"

namespace ks {

std::string sha256_hex(std::string_view data) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
    unsigned int len = 0;
    if (EVP_Digest(data.data(), data.size(), md.data(), &len, EVP_sha256(), nullptr) != 1)
        return {};
    return hex_digits(std::string_view(reinterpret_cast<const char*>(md.data()), len));
}

}  // namespace ks
