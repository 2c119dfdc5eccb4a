// The space budget's arithmetic (file_guard/space_budget.h): the limit the
// kernel compares its running count of guarded writes with.
#include "file_guard/space_budget.h"

#include <gtest/gtest.h>

namespace ks {
namespace {

TEST(SpaceBudget, TheLimitIsTheCountSoFarPlusTheFreeSpaceAboveTheFloor) {
    // 100 bytes counted before statvfs said 1000 free over a floor of 600:
    // guarded processes may write 400 more, whatever they wrote before.
    EXPECT_EQ(space_limit(100, 1000, 600), 500u);
    EXPECT_EQ(space_limit(0, 1000, 600), 400u);
    // At or under the floor (the database, which is not guarded, filled it):
    // no guarded write of a single byte.
    EXPECT_EQ(space_limit(100, 600, 600), 100u);
    EXPECT_EQ(space_limit(100, 10, 600), 100u);
}

TEST(SpaceBudget, WhileGuardedWritesGoOnTheLimitOnlyComesDown) {
    // A 16-byte call was counted (count 116) and has landed 6 bytes when
    // statvfs says 994 free: the 10 still landing are in the count and still
    // in the free space. From that look alone the limit would be
    // 116 + 394 = 510, and the call's last 10 bytes would take the free space
    // 10 under the floor once the budget was spent. Counted since the last
    // look, so the limit stays where it was (500: 100 counted, 400 above the
    // floor, as when nothing was landing).
    EXPECT_EQ(next_space_limit(500, true, 116, 994, 600), 500u);
    // Other writers (the database) used space meanwhile: it comes down.
    EXPECT_EQ(next_space_limit(500, true, 116, 700, 600), 216u);
    // Nothing counted since the last look: nothing of ours is landing, and
    // space freed (a file deleted) raises it.
    EXPECT_EQ(next_space_limit(500, false, 116, 2000, 600), 1516u);
    // The first look: from it alone.
    EXPECT_EQ(next_space_limit(std::nullopt, false, 100, 1000, 600), 500u);
}

}  // namespace
}  // namespace ks
