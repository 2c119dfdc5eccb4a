/* A statically linked attacker that changes the metadata of files with raw
 * system calls (no libc entry point to hook), and a probe that says whether
 * it did. Usage:
 *   raw_metadata xattr FILE...   setxattr(2) trusted.killswitch-test
 *   raw_metadata flags FILE...   ioctl FS_IOC_SETFLAGS: FS_IMMUTABLE_FL (chattr +i)
 *   raw_metadata same-owner FILE...  fchownat(2) to the owner and group it has
 *   raw_metadata mode000 FILE... fchmodat(2) to mode 000
 *   raw_metadata probe FILE...   prints how many FILEs carry either change
 * Each change prints the file and the call's result (errno name on failure). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char kName[] = "trusted.killswitch-test";

static int set_xattr(const char *file)
{
	return (int)syscall(SYS_setxattr, file, kName, "x", 1, 0);
}

static int set_immutable(const char *file)
{
	int fd = (int)syscall(SYS_openat, AT_FDCWD, file, O_RDONLY | O_NONBLOCK);
	int flags = 0;
	int ret = -1;

	if (fd < 0)
		return -1;
	if (syscall(SYS_ioctl, fd, FS_IOC_GETFLAGS, &flags) == 0) {
		flags |= FS_IMMUTABLE_FL;
		ret = (int)syscall(SYS_ioctl, fd, FS_IOC_SETFLAGS, &flags);
	}
	int saved = errno;
	close(fd);
	errno = saved;
	return ret;
}

static int same_owner(const char *file)
{
	struct stat st;
	if (stat(file, &st) != 0)
		return -1;
	return (int)syscall(SYS_fchownat, AT_FDCWD, file, st.st_uid, st.st_gid, 0);
}

static int mode000(const char *file)
{
	return (int)syscall(SYS_fchmodat, AT_FDCWD, file, 0);
}

static int changed(const char *file)
{
	char v[8];
	int flags = 0;
	int fd;

	if (syscall(SYS_getxattr, file, kName, v, sizeof(v)) >= 0)
		return 1;
	fd = (int)syscall(SYS_openat, AT_FDCWD, file, O_RDONLY | O_NONBLOCK);
	if (fd < 0)
		return 0;
	int imm = syscall(SYS_ioctl, fd, FS_IOC_GETFLAGS, &flags) == 0 && (flags & FS_IMMUTABLE_FL);
	close(fd);
	return imm;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: raw_metadata xattr|flags|same-owner|mode000|probe FILE...\n");
		return 2;
	}
	int n = 0;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[1], "probe") == 0) {
			n += changed(argv[i]);
			continue;
		}
		int r = strcmp(argv[1], "xattr") == 0        ? set_xattr(argv[i])
			: strcmp(argv[1], "same-owner") == 0 ? same_owner(argv[i])
			: strcmp(argv[1], "mode000") == 0    ? mode000(argv[i])
							     : set_immutable(argv[i]);
		printf("%s: %s\n", argv[i], r == 0 ? "changed" : strerrorname_np(errno));
	}
	if (strcmp(argv[1], "probe") == 0)
		printf("%d\n", n);
	return 0;
}
