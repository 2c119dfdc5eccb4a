/* Deletes files through io_uring (IORING_OP_UNLINKAT), which no syscall hook
 * sees. Usage: uring_unlink FILE... */
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>

int main(int argc, char **argv)
{
	struct io_uring ring;
	int deleted = 0;

	if (io_uring_queue_init(8, &ring, 0) < 0) {
		perror("io_uring_queue_init");
		return 1;
	}
	for (int i = 1; i < argc; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
		struct io_uring_cqe *cqe;

		io_uring_prep_unlinkat(sqe, AT_FDCWD, argv[i], 0);
		io_uring_submit(&ring);
		if (io_uring_wait_cqe(&ring, &cqe) == 0) {
			if (cqe->res == 0)
				deleted++;
			io_uring_cqe_seen(&ring, cqe);
		}
	}
	printf("deleted %d\n", deleted);
	io_uring_queue_exit(&ring);
	return 0;
}
