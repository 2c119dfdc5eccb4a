// `killswitch allow --for DURATION`: what a window's duration may be.
#include <gtest/gtest.h>

#include "cli/commands.h"

namespace ks::cli {
namespace {

TEST(AllowDuration, SecondsMinutesAndHours) {
    EXPECT_EQ(parse_window_duration("90s"), 90u);
    EXPECT_EQ(parse_window_duration("30m"), 1800u);
    EXPECT_EQ(parse_window_duration("2h"), 7200u);
    EXPECT_EQ(parse_window_duration("1s"), 1u);
    EXPECT_EQ(parse_window_duration("24h"), 86400u);
    EXPECT_EQ(parse_window_duration("1440m"), 86400u);
}

TEST(AllowDuration, MalformedOrOutOfRangeIsRefused) {
    for (const char* bad : {"", "s", "90", "0s", "25h", "86401s", "1.5h", "-5m", "10d", "5 m",
                            "1h30m", "99999999h", "+5s"})
        EXPECT_FALSE(parse_window_duration(bad)) << bad;
}

}  // namespace
}  // namespace ks::cli
