/* Sends a signal through libc's kill() wrapper (dynamically linked: a libc
 * uprobe sees it, unlike busybox's raw kill(2)). Usage: libc_kill SIG PID */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: libc_kill SIG PID\n");
		return 2;
	}
	if (kill((pid_t)atoi(argv[2]), atoi(argv[1])) != 0) {
		printf("kill: %s\n", strerror(errno));
		return 1;
	}
	printf("sent\n");
	return 0;
}
