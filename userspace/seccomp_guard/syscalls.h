// x86-64 system call numbers newer than Debian 12's headers, for the filter
// and the reading of its notifications.
#pragma once

#include <sys/syscall.h>

#ifndef __NR_fchmodat2
#define __NR_fchmodat2 452
#endif
#ifndef __NR_setxattrat
#define __NR_setxattrat 463
#endif
#ifndef __NR_removexattrat
#define __NR_removexattrat 466
#endif
