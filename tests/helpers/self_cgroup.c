/* Used as a fake agent: prints the cgroup it runs in as its very first act,
 * then sleeps the given seconds (so tests can look at it), then execs
 * /bin/true so that its child exec is recorded too. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char buf[512] = {0};
	FILE *f = fopen("/proc/self/cgroup", "r");
	while (f && fgets(buf, sizeof(buf), f)) {
		if (buf[0] == '0' && buf[1] == ':' && buf[2] == ':') {
			printf("first-cgroup=%s", buf + 3);
			fflush(stdout);
		}
	}
	if (f)
		fclose(f);
	if (argc > 1)
		sleep(atoi(argv[1]));
	execl("/bin/true", "true", (char *)NULL);
	return 1;
}
