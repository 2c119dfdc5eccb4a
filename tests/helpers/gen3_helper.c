/* Third generation of the lineage test: a compiled program that reports its
 * own pid and cgroup, then exits. */
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	char buf[512] = {0};
	FILE *f = fopen("/proc/self/cgroup", "r");
	while (f && fgets(buf, sizeof(buf), f)) {
		if (buf[0] == '0' && buf[1] == ':' && buf[2] == ':')
			printf("pid=%d cgroup=%s", getpid(), buf + 3);
	}
	if (f)
		fclose(f);
	return 0;
}
