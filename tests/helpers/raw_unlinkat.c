/* A statically linked attacker that deletes files with raw unlinkat(2)
 * syscalls: no libc entry point to hook. Usage: raw_unlinkat FILE... */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int deleted = 0;
	for (int i = 1; i < argc; i++) {
		if (syscall(SYS_unlinkat, AT_FDCWD, argv[i], 0) == 0)
			deleted++;
		else
			fprintf(stderr, "unlinkat %s: %s\n", argv[i], strerror(errno));
	}
	printf("deleted %d\n", deleted);
	return 0;
}
