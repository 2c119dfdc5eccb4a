// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The database request judges of db_wire.bpf.c (ks_db_judge.bpf.h), run on
 * bytes a test hands over instead of an sk_msg: sk_msg programs cannot be run
 * with BPF_PROG_TEST_RUN, syscall programs can (Linux 5.14 and later). The
 * unit tests hold the kernel's verdicts to the corpus the user-space
 * classifier is held to (tests/corpus/db_requests.txt). The daemon never
 * loads this object.
 *
 * One run judges the one request at the start of req_bytes, as one run of
 * the sk_msg program does; the test calls it again at the next request.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

/* The whole request, as one sendmsg() would hand it to the sk_msg program. */
struct ks_db_test_req {
	__u32 size;
};

#define KS_DB_REQ struct ks_db_test_req
#include "ks_db_judge.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define KS_DB_TEST_MAX (64 * 1024)

/* In: set by the test before each run. */
__u32 req_kind;	 /* KS_DB_* */
__u32 req_phase; /* KS_DBP_* */
__u32 req_size;
char req_bytes[KS_DB_TEST_MAX];

/* The policy's classes refused (ks_db_config.refuse_classes); the other
 * switches are on, monitor mode off. */
__u32 cfg_refuse_classes = KS_DB_CLASSES_DESTRUCTIVE;

/* Out: struct ks_judged's fields (plain globals: the skeleton declares no
 * struct types), and whether that policy refuses the request (out_reason
 * as ks_db_refuses leaves it). */
__u32 out_bytes;
__u32 out_cork;
__u32 out_reason;
__u32 out_msg_type;
__u32 out_text_len;
__u32 out_record;
__u32 out_opaque;
__u32 out_ready;
__u32 out_ssl_asked;
__u32 out_refused;

static __always_inline int ks_msg_read(struct ks_db_test_req *msg, __u32 off, void *dst, __u32 n)
{
	/* as bpf_msg_pull_data: the bytes must be in the message */
	if (n == 0 || n > KS_DB_WINDOW || off > msg->size || n > msg->size - off)
		return -1;
	return ks_copy(dst, n, &req_bytes[off & (KS_DB_TEST_MAX - 1)]) ? -1 : 0;
}

SEC("syscall")
int ks_db_judge_test(void *ctx)
{
	const struct ks_db_config cfg = {
	    .refuse_unparseable = 1, .refuse_opaque = 1, .refuse_classes = cfg_refuse_classes};
	struct ks_db_sock st = {.kind = req_kind, .phase = req_phase};
	struct ks_db_test_req msg = {.size = req_size};
	struct ks_judged j = {};
	__u32 zero = 0;
	struct ks_db_scratch *sc = bpf_map_lookup_elem(&db_scratch, &zero);

	if (!sc || req_size > KS_DB_TEST_MAX)
		return 1;
	struct ks_db_wire_event *ev = &sc->ev;

	KS_DB_JUDGE(&msg, &st, sc, ev, j);
	out_refused = ks_db_refuses(&j, &cfg);
	out_bytes = j.bytes;
	out_cork = j.cork;
	out_reason = j.reason;
	out_msg_type = j.msg_type;
	out_text_len = j.text_len;
	out_record = j.record;
	out_opaque = j.opaque;
	out_ready = j.ready;
	out_ssl_asked = j.ssl_asked;
	return 0;
}
