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

}  // namespace
}  // namespace ks
