// PostgreSQL's binary format of the common parameter types, read back into
// their text form (docs: each type's send/recv function in the server's
// src/backend/utils/adt): what a Bind in binary format gives a statement's
// $n, for the effect probe. Types not read here give nullopt.
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "common/hex.h"
#include "db_relay/wire.h"

namespace ks::relay {

namespace {

// Type OIDs (pg_type.dat).
constexpr uint32_t kBool = 16, kBytea = 17, kChar = 18, kName = 19, kInt8 = 20, kInt2 = 21,
                   kInt4 = 23, kText = 25, kOid = 26, kJson = 114, kFloat4 = 700, kFloat8 = 701,
                   kUnknown = 705, kBpchar = 1042, kVarchar = 1043, kDate = 1082, kTime = 1083,
                   kTimestamp = 1114, kTimestamptz = 1184, kNumeric = 1700, kUuid = 2950,
                   kJsonb = 3802;

uint64_t be(std::string_view b, size_t at, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v = v << 8 | static_cast<uint8_t>(b[at + i]);
    return v;
}

std::string fmt(const char* f, auto... args) {
    char buf[64];
    int n = std::snprintf(buf, sizeof(buf), f, args...);
    return n > 0 ? std::string(buf, static_cast<size_t>(std::min<int>(n, sizeof(buf) - 1)))
                 : std::string();
}

// Days since 2000-01-01 to a civil date (Howard Hinnant's days_from_civil, inverted).
std::string date_text(int64_t days) {
    int64_t z = days + 10957 + 719468;  // days since 1970-01-01, then since 0000-03-01
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    if (m <= 2) ++y;
    if (y <= 0) return fmt("%04" PRId64 "-%02" PRId64 "-%02" PRId64 " BC", 1 - y, m, d);
    return fmt("%04" PRId64 "-%02" PRId64 "-%02" PRId64, y, m, d);
}

std::string time_text(int64_t us) {
    int64_t s = us / 1000000, frac = us % 1000000;
    return fmt("%02" PRId64 ":%02" PRId64 ":%02" PRId64 ".%06" PRId64, s / 3600, s / 60 % 60,
               s % 60, frac);
}

// NUMERIC: ndigits, weight, sign, dscale, then base-10000 digits.
std::optional<std::string> numeric_text(std::string_view b) {
    if (b.size() < 8) return std::nullopt;
    auto ndigits = static_cast<int>(be(b, 0, 2));
    auto weight = static_cast<int16_t>(be(b, 2, 2));
    auto sign = static_cast<uint16_t>(be(b, 4, 2));
    auto dscale = static_cast<int>(be(b, 6, 2));
    if (sign == 0xC000) return "NaN";
    if (sign == 0xD000) return "Infinity";
    if (sign == 0xF000) return "-Infinity";
    if ((sign != 0 && sign != 0x4000) || b.size() != 8 + 2 * static_cast<size_t>(ndigits) ||
        dscale > 16383)
        return std::nullopt;
    std::vector<int> d(static_cast<size_t>(ndigits));
    for (int i = 0; i < ndigits; ++i) {
        d[static_cast<size_t>(i)] = static_cast<int>(be(b, 8 + 2 * static_cast<size_t>(i), 2));
        if (d[static_cast<size_t>(i)] > 9999) return std::nullopt;
    }
    auto digit = [&](int i) { return i >= 0 && i < ndigits ? d[static_cast<size_t>(i)] : 0; };
    std::string out = sign == 0x4000 ? "-" : "";
    // Integer part: base-10000 groups weight down to 0.
    if (weight < 0) {
        out += '0';
    } else {
        for (int i = 0; i <= weight; ++i)
            out += i == 0 ? std::to_string(digit(i)) : fmt("%04d", digit(i));
    }
    if (dscale > 0) {
        std::string frac;
        for (int i = weight + 1; static_cast<int>(frac.size()) < dscale; ++i)
            frac += fmt("%04d", digit(i));
        out += '.' + frac.substr(0, static_cast<size_t>(dscale));
    }
    return out;
}

std::string float_text(double v, int digits) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
    return fmt("%.*g", digits, v);
}

}  // namespace

std::optional<std::string> pg_binary_text(uint32_t oid, std::string_view b) {
    switch (oid) {
        case kBool:
            if (b.size() != 1) return std::nullopt;
            return b[0] ? "t" : "f";
        case kInt2:
            if (b.size() != 2) return std::nullopt;
            return std::to_string(static_cast<int16_t>(be(b, 0, 2)));
        case kInt4:
            if (b.size() != 4) return std::nullopt;
            return std::to_string(static_cast<int32_t>(be(b, 0, 4)));
        case kInt8:
            if (b.size() != 8) return std::nullopt;
            return std::to_string(static_cast<int64_t>(be(b, 0, 8)));
        case kOid:
            if (b.size() != 4) return std::nullopt;
            return std::to_string(static_cast<uint32_t>(be(b, 0, 4)));
        case kFloat4: {
            if (b.size() != 4) return std::nullopt;
            auto bits = static_cast<uint32_t>(be(b, 0, 4));
            float f;
            std::memcpy(&f, &bits, sizeof(f));
            return float_text(f, 9);
        }
        case kFloat8: {
            if (b.size() != 8) return std::nullopt;
            uint64_t bits = be(b, 0, 8);
            double f;
            std::memcpy(&f, &bits, sizeof(f));
            return float_text(f, 17);
        }
        case kNumeric:
            return numeric_text(b);
        case kChar:
        case kName:
        case kText:
        case kBpchar:
        case kVarchar:
        case kUnknown:
        case kJson:
            // Text in the client encoding, as in text format; no NUL in it.
            if (b.find('\0') != std::string_view::npos) return std::nullopt;
            return std::string(b);
        case kJsonb:
            if (b.empty() || b[0] != 1 || b.find('\0') != std::string_view::npos)
                return std::nullopt;
            return std::string(b.substr(1));
        case kBytea:
            return "\\x" + hex_digits(b);
        case kUuid: {
            if (b.size() != 16) return std::nullopt;
            std::string out;
            for (size_t i = 0; i < 16; ++i) {
                if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
                out += fmt("%02x", static_cast<uint8_t>(b[i]));
            }
            return out;
        }
        case kDate: {
            if (b.size() != 4) return std::nullopt;
            auto days = static_cast<int32_t>(be(b, 0, 4));
            if (days == INT32_MAX) return "infinity";
            if (days == INT32_MIN) return "-infinity";
            return date_text(days);
        }
        case kTime:
            if (b.size() != 8) return std::nullopt;
            return time_text(static_cast<int64_t>(be(b, 0, 8)));
        case kTimestamp:
        case kTimestamptz: {
            if (b.size() != 8) return std::nullopt;
            auto us = static_cast<int64_t>(be(b, 0, 8));
            if (us == INT64_MAX) return "infinity";
            if (us == INT64_MIN) return "-infinity";
            int64_t day = us >= 0 ? us / 86400000000 : -((-us + 86399999999) / 86400000000);
            std::string date = date_text(day), era;
            if (auto bc = date.find(" BC"); bc != std::string::npos) {
                era = " BC";
                date.erase(bc);
            }
            // timestamptz is sent in UTC.
            return date + " " + time_text(us - day * 86400000000) +
                   (oid == kTimestamptz ? "+00" : "") + era;
        }
        default:
            return std::nullopt;
    }
}

}  // namespace ks::relay
