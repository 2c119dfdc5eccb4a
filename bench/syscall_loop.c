/* A syscall-heavy loop on scratch files: open(O_CREAT), close, stat, unlink.
 * Prints the mean nanoseconds per iteration. Used by unguarded_overhead.sh
 * and hook_layers.sh. With DIR "getppid", the loop is one getppid(2) per
 * iteration instead: a call no killswitch program watches, which pays only
 * for the syscall slow path an attached syscall tracepoint puts every task
 * on. With DIR "write:FILE", one 4 KiB pwrite(2) at offset 0 of FILE per
 * iteration: what the space budget's write tracepoint costs (bench/space_budget.sh). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s DIR ITERATIONS\n", argv[0]);
		return 2;
	}
	const char *dir = argv[1];
	long n = atol(argv[2]);
	char path[4096];
	struct stat st;
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	if (strcmp(dir, "getppid") == 0) {
		for (long i = 0; i < n; i++)
			syscall(SYS_getppid);
		n = n > 0 ? n : 1;
		goto done;
	}
	if (strncmp(dir, "write:", 6) == 0) {
		static char block[4096];
		int fd = open(dir + 6, O_CREAT | O_WRONLY, 0600);
		if (fd < 0) {
			perror("open");
			return 1;
		}
		for (long i = 0; i < n; i++)
			if (pwrite(fd, block, sizeof(block), 0) != (ssize_t)sizeof(block)) {
				perror("pwrite");
				return 1;
			}
		close(fd);
		n = n > 0 ? n : 1;
		goto done;
	}
	for (long i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/f%ld", dir, i & 63);
		int fd = open(path, O_CREAT | O_WRONLY, 0600);
		if (fd < 0) {
			perror("open");
			return 1;
		}
		close(fd);
		if (stat(path, &st) != 0 || unlink(path) != 0) {
			perror("stat/unlink");
			return 1;
		}
	}
done:
	clock_gettime(CLOCK_MONOTONIC, &b);
	double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
	printf("%.1f\n", ns / n);
	return 0;
}
