/* A statically linked attacker that uses the new mount API (open_tree,
 * move_mount, mount_setattr) with raw system calls: no libc entry point to
 * hook, and no mount(2) to look at. Usage:
 *   raw_mount_api bind SRC VIEW [NAME]
 *       a copy of the tree at SRC (open_tree OPEN_TREE_CLONE|AT_RECURSIVE)
 *       put at VIEW (move_mount); then, with NAME, unlink(VIEW/NAME): the
 *       file of SRC goes through a name no path walk from SRC knows
 *   raw_mount_api move MNT DEST
 *       the mount at MNT (open_tree without a copy) moved to DEST: what was
 *       under MNT is no longer there
 *   raw_mount_api readonly MNT
 *       mount_setattr(MOUNT_ATTR_RDONLY) of the mount at MNT, as a
 *       remount read-only: its server can no longer write
 *   raw_mount_api reconfigure MNT
 *       the file system mounted at MNT picked (fspick) and reconfigured
 *       read-only (fsconfig: "ro", then FSCONFIG_CMD_RECONFIGURE): a
 *       remount of the superblock, every mount of it read-only
 * Prints each call's result (errno name on failure); exits 0 when every call
 * succeeded, 1 otherwise. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef SYS_fsconfig
#define SYS_fsconfig 431
#endif
#ifndef SYS_fspick
#define SYS_fspick 433
#endif
#define FSCONFIG_SET_FLAG_CMD 0
#define FSCONFIG_CMD_RECONFIGURE_CMD 7
#define OPEN_TREE_CLONE_FLAG 1
#define AT_RECURSIVE_FLAG 0x8000
#define MOVE_MOUNT_F_EMPTY_PATH_FLAG 0x04
#define MOUNT_ATTR_RDONLY_FLAG 0x1

struct mount_attr_v0 {
	uint64_t attr_set, attr_clr, propagation, userns_fd;
};

static int report(const char *what, long ret)
{
	if (ret < 0) {
		printf("%s: %s\n", what, strerrorname_np(errno) ? strerrorname_np(errno) : "?");
		return 1;
	}
	printf("%s: ok\n", what);
	return 0;
}

static int put(const char *src, unsigned int flags, const char *dest)
{
	long fd = syscall(SYS_open_tree, AT_FDCWD, src, flags);
	if (report("open_tree", fd))
		return 1;
	long r = syscall(SYS_move_mount, (int)fd, "", AT_FDCWD, dest,
			 MOVE_MOUNT_F_EMPTY_PATH_FLAG);
	close((int)fd);
	return report("move_mount", r);
}

int main(int argc, char **argv)
{
	if (argc >= 4 && strcmp(argv[1], "bind") == 0) {
		if (put(argv[2], OPEN_TREE_CLONE_FLAG | AT_RECURSIVE_FLAG, argv[3]))
			return 1;
		if (argc < 5)
			return 0;
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", argv[3], argv[4]);
		return report("unlink", syscall(SYS_unlinkat, AT_FDCWD, path, 0));
	}
	if (argc == 4 && strcmp(argv[1], "move") == 0)
		return put(argv[2], 0, argv[3]);
	if (argc == 3 && strcmp(argv[1], "reconfigure") == 0) {
		long fd = syscall(SYS_fspick, AT_FDCWD, argv[2], 0);
		if (report("fspick", fd))
			return 1;
		if (report("fsconfig ro",
			   syscall(SYS_fsconfig, (int)fd, FSCONFIG_SET_FLAG_CMD, "ro", NULL, 0)))
			return 1;
		return report("fsconfig reconfigure",
			      syscall(SYS_fsconfig, (int)fd, FSCONFIG_CMD_RECONFIGURE_CMD, NULL, NULL,
				      0));
	}
	if (argc == 3 && strcmp(argv[1], "readonly") == 0) {
		struct mount_attr_v0 attr = {.attr_set = MOUNT_ATTR_RDONLY_FLAG};
		return report("mount_setattr", syscall(SYS_mount_setattr, AT_FDCWD, argv[2], 0, &attr,
							sizeof(attr)));
	}
	fprintf(stderr, "usage: raw_mount_api bind SRC VIEW [NAME] | move MNT DEST | readonly MNT | "
			"reconfigure MNT\n");
	return 2;
}
