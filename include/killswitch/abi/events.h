/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one definition of everything that crosses the kernel/user boundary:
 * ring-buffer records, map keys and values, counter indices.
 *
 * Included by the BPF programs (after vmlinux.h) and by C++ (which checks the
 * sizes and offsets with static_asserts in userspace/process_guard/abi_check.cpp).
 * Fixed-width fields only, explicit padding, no pointers.
 */
#ifndef KILLSWITCH_ABI_EVENTS_H
#define KILLSWITCH_ABI_EVENTS_H

#ifndef __bpf__
#include <linux/types.h>
#endif

#define KS_COMM_LEN 16
#define KS_FILENAME_MAX 256
#define KS_ARGV_MAX 2048
/* Paths travel as their components, leaf first, each NUL-terminated. A read
 * may start anywhere below KS_PATH_MAX and write up to KS_NAME_MAX bytes, so
 * the buffer carries that much slack. */
#define KS_PATH_MAX 1024
#define KS_NAME_MAX 256
#define KS_PATH_BUF (KS_PATH_MAX + KS_NAME_MAX)
#define KS_PATH_DEPTH 48

/* Record types on the ring buffer; also indices of the per-CPU counters. */
enum ks_event_type {
    KS_EVENT_EXEC = 1,
    KS_EVENT_FORK = 2,
    KS_EVENT_EXIT = 3,
    KS_EVENT_FILE = 4,       /* a guarded process touched a protected object */
    KS_EVENT_EXEC_CHECK = 5, /* a guarded process exec'd a watched tool: held for the rules */
    KS_EVENT_DB_CHECK = 6,   /* a guarded process is about to send a statement: held */
    KS_EVENT_DB_WIRE =
        7,               /* a guarded process sent (or was refused) a request on a watched socket */
    KS_EVENT_TAMPER = 8, /* a guarded process went for killswitch itself or the kernel */
    KS_EVENT_TYPE_MAX = 9,
};

/* Why a task is guarded (ks_exec_event.seed). */
enum ks_seed {
    KS_SEED_INHERITED = 0, /* already guarded: forked from a guarded task */
    KS_SEED_CGROUP = 1,    /* its cgroup is a session or named by the policy */
    KS_SEED_AGENT = 2,     /* its executable is on the policy's agent list */
    KS_SEED_UID = 3,       /* its uid is named by the policy */
};

/* ks_event_header.flags */
#define KS_EVF_NEW_SESSION (1u << 0) /* the kernel opened a session for this task */
#define KS_EVF_HELD (1u << 1)        /* the task was sent SIGSTOP and waits for the daemon */
#define KS_EVF_ARGV_TRUNC (1u << 2)
#define KS_EVF_FILENAME_TRUNC (1u << 3)
#define KS_EVF_CWD_TRUNC (1u << 4)
#define KS_EVF_EXE_TRUNC (1u << 5)
#define KS_EVF_CWD_DELETED (1u << 6)
#define KS_EVF_WINDOW (1u << 7) /* exec check: an allow window was open, the task was not held */

/* Session ids: user space hands out ids below this bit, the kernel above it. */
#define KS_SESSION_KERNEL_BIT 0x80000000u
/* The session of the hook layer's start-up probe task (never an agent): its
 * unlinks are refused (fentry: it is killed) whatever the object. */
#define KS_PROBE_SESSION 0xffffffffu

struct ks_event_header {
    __u64 ts_ns; /* CLOCK_BOOTTIME */
    __u64 cgroup_id;
    __u32 type; /* enum ks_event_type */
    __u32 flags;
    __u32 pid; /* thread-group id of the subject */
    __u32 tid;
    __u32 ppid;
    __u32 uid;
    __u32 session_id;
    __u32 _pad0;
    char comm[KS_COMM_LEN];
};

struct ks_exec_event {
    struct ks_event_header hdr;
    __u32 seed; /* enum ks_seed */
    __u32 argv_len;
    __u32 filename_len;
    __u32 cwd_len;
    __u32 exe_len;
    __u32 _pad0;
    char filename[KS_FILENAME_MAX]; /* as passed to execve */
    char argv[KS_ARGV_MAX];         /* NUL-separated */
    char cwd[KS_PATH_BUF];          /* components, leaf first */
    char exe[KS_PATH_BUF];          /* components, leaf first */
};

/* hdr.pid is the child, hdr.ppid the parent; sent from the parent's context
 * before the child first runs. */
struct ks_fork_event {
    struct ks_event_header hdr;
};

struct ks_exit_event {
    struct ks_event_header hdr;
    __u32 exit_code; /* as wait(2) reports it */
    __u32 _pad0;
};

/* guarded_tasks: key = tgid */
struct ks_task_guard {
    __u32 session_id;
    __u32 seed;
};

/* guarded_cgroups: key = cgroup id (the inode number of its cgroup2 directory) */
struct ks_cgroup_guard {
    __u32 session_id;
    __u32 _pad0;
};

/* ---- file protection ---- */

#define KS_FILE_PATH_MAX 512 /* a path argument as the process passed it */
#define KS_EXEC_ARGV_BUF 2048
#define KS_WATCH_NAME_LEN 32 /* basenames in exec_watch */
#define KS_MAX_RULES 256
/* protected_inodes capacity; the daemon bounds its walk of the protected
 * trees by it. */
#define KS_MAX_PROTECTED_INODES 262144
#define KS_MAX_PROTECTED_ANCESTORS 4096

enum ks_file_op {
    KS_OP_UNLINK = 1,
    KS_OP_RMDIR = 2,
    KS_OP_RENAME_FROM = 3, /* moving a protected object away */
    KS_OP_RENAME_ONTO = 4, /* replacing a protected object */
    KS_OP_TRUNCATE = 5,
    KS_OP_OPEN_TRUNC = 6,
    KS_OP_OPEN_WRITE = 7,
    KS_OP_MOUNT = 8,
    KS_OP_UMOUNT = 9,
    KS_OP_LINK = 10, /* a new name for a protected file, outside its tree */
    KS_OP_IO_URING = 11,
    KS_OP_CREATE_IN = 12, /* a new file, hard link or symbolic link made inside a protected tree */
    KS_OP_CHMOD = 13,        /* a mode change */
    KS_OP_CHOWN = 14,        /* an owner or group change */
    KS_OP_XATTR = 15,        /* an extended attribute or ACL set or removed */
    KS_OP_FILE_FLAGS = 16,   /* inode flags (chattr: immutable, append-only...) */
    KS_OP_DEVICE_WRITE = 17, /* a block device opened for writing */
    /* a bind mount or a move of protected data, or of a directory above it */
    KS_OP_MOUNT_SOURCE = 18,
    /* a write that would bring the free space of a file system holding
     * protected data under protect.min_free (ks_file_event.bytes) */
    KS_OP_SPACE_WRITE = 19,
    /* a symbolic link whose target is protected data, inside it, or a
     * directory above it: a path to the data the walk from / does not know
     * (libc layer, KS_FF_ASK) */
    KS_OP_SYMLINK_TO = 20,
    /* a file system holding protected data reconfigured as a whole (mount(2)
     * MS_REMOUNT without MS_BIND, fspick then fsconfig's
     * FSCONFIG_CMD_RECONFIGURE): read-only and its other options reach every
     * mount of it, in every mount namespace */
    KS_OP_REMOUNT = 21,
    KS_OP_MAX = 22,
};

enum ks_layer {
    KS_LAYER_EXEC = 1,       /* argv rules at execve: the program never runs */
    KS_LAYER_UPROBE = 2,     /* libc entry: the call never happens */
    KS_LAYER_TRACEPOINT = 3, /* syscall entry: at most this call completes */
    KS_LAYER_LSM = 4,        /* refused with EPERM */
    KS_LAYER_SK_MSG = 5,     /* socket send path: the bytes never leave */
    KS_LAYER_CONNECT = 6,    /* connect() refused with EPERM */
    KS_LAYER_FENTRY = 7,     /* fmod_ret on a security_* function: refused with EPERM */
    KS_LAYER_SECCOMP = 8,    /* a run session's seccomp filter asked the daemon: refused with EPERM */
};

/* How the object was found to be protected. */
enum ks_match {
    KS_MATCH_NONE = 0,
    KS_MATCH_INSIDE = 1,     /* the start directory lies in a protected tree */
    KS_MATCH_PATH = 2,       /* the path leads into a protected tree */
    KS_MATCH_INODE = 3,      /* the open file is a protected inode (fd, hard link) */
    KS_MATCH_UNRESOLVED = 4, /* the path could not be resolved in full */
    KS_MATCH_ALWAYS = 5,     /* the operation is refused whatever its object */
    KS_MATCH_ANCESTOR = 6,   /* the object is a directory above a protected root */
    KS_MATCH_BLOCK_DEVICE = 7, /* the object is a block device (protect.block_devices) */
    KS_MATCH_LOW_SPACE = 8,    /* its file system would fall under protect.min_free */
    KS_MATCH_DATA_FS = 9,      /* a mount of a file system that holds protected data (a remount) */
};

enum ks_action {
    KS_ACT_AUDIT = 0,        /* record only */
    KS_ACT_BLOCK = 1,        /* prevent: kill the task before the call */
    KS_ACT_KILL = 2,         /* kill the process */
    KS_ACT_FREEZE = 3,       /* stop the task, freeze its session */
    KS_ACT_KILL_SESSION = 4, /* kill the task and its whole session */
    KS_ACT_HOLD = 5,         /* stop the task until a person approves or denies */
};

/* ks_file_event.flags */
#define KS_FF_MONITOR (1u << 0) /* monitor mode: nothing was enforced */
#define KS_FF_KILLED (1u << 1)  /* SIGKILL sent from the kernel */
#define KS_FF_STOPPED (1u << 2) /* SIGSTOP sent from the kernel */
#define KS_FF_PASSED (1u << 3)  /* an approved hold let this call through */
#define KS_FF_PATH_TRUNC (1u << 4)
#define KS_FF_WINDOW (1u << 5) /* the session's allow window let this call through */
#define KS_FF_DENIED (1u << 6) /* the kernel refused the call with EPERM (LSM layer) */
#define KS_FF_OBJECT (1u << 7) /* cwd holds the object's own path (LSM layer: no path argument) */
#define KS_FF_IO_WORKER (1u << 8) /* the call came from an io_uring worker of the process */
/* KS_FF_OBJECT's path runs from the root of the object's file system, not of
 * the mount namespace (a hook that is given no mount: xattrs, ACLs). */
#define KS_FF_FS_PATH (1u << 9)
/* Killed at the entry of the call, but the call runs to its end (a direct
 * write, ext4's fallocate): it completes, the process dies as it returns. */
#define KS_FF_CALL_COMPLETES (1u << 10)
/* Stopped for the daemon to look at the object (chmod, chown at the libc
 * layer): a change that changes nothing goes on, with a ks_meta_ticket for
 * the system call that follows; any other is refused. KS_OP_SYMLINK_TO: a
 * link made outside the protected trees: the daemon resolves its target
 * (path) from the link's directory; upath is the link's path argument (at the
 * syscall tracepoint the link is made by then: one that reaches protected
 * data is removed). KS_OP_LINK at the syscall tracepoint: a hard link of
 * protected data (path), made by then; dfd and upath are the new name's,
 * which the daemon removes. */
#define KS_FF_ASK (1u << 11)

/* protected_inodes: key. dev is the kernel's encoding (major << 20 | minor). */
struct ks_inode_key {
    __u64 dev;
    __u64 ino;
};

/* protected_edges: one step from a directory towards a protected root. */
struct ks_edge_key {
    __u64 dev;
    __u64 ino;
    __u64 name_hash; /* ks_name_hash() of the entry name */
};

struct ks_protected {
    __u32 rule_id;
    __u32 flags; /* KS_PF_* */
};

/* ks_protected.flags */
#define KS_PF_NO_WINDOW                                                  \
    (1u << 0) /* killswitch's own object, or a protected directory above \
               * one: an allow window never applies */

/* rules: array indexed by rule id. */
struct ks_rule {
    __u32 action;  /* enum ks_action */
    __u32 monitor; /* 1: record what would have been done */
    __u32 flags;   /* KS_RULEF_* */
    __u32 _pad0;
};

/* ks_rule.flags */
#define KS_RULEF_NO_WINDOW (1u << 0) /* self-protection, unresolved paths, io_uring */

/* config: array of one. */
struct ks_config {
    __u32 unresolved_rule; /* rule applied to paths that cannot be resolved */
    __u32 io_uring_rule;   /* rule applied to io_uring use; KS_MAX_RULES: allowed */
    /* The inode number of the daemon's mount namespace (0: unknown): a mount
     * over a directory above protected data matters there, not in a mount
     * namespace of a process's own. */
    __u32 host_mnt_ns;
    __u32 block_device_rule; /* rule applied to block devices opened for writing; KS_MAX_RULES: allowed */
    __u32 space_rule;        /* rule applied to writes over the space budget; KS_MAX_RULES: off */
    __u32 _pad0;
};

/* The space budget (protect.min_free), per file system holding protected
 * data; keys are the kernel's s_dev encoding. space_written counts the bytes
 * guarded processes asked to write there (the kernel adds, never resets);
 * space_limit is the count at which the budget is spent: user space sets it
 * each second to the count it read before statvfs() plus the free space
 * above the floor. A write that would pass it is refused and not counted. */
struct ks_space_written {
    __u64 bytes;
    __u64 reported_limit; /* a record was sent at this limit (monitor, window) */
};

/* chmod and chown: what the call asks for. */
struct ks_meta_args {
    __u32 mode;     /* chmod: the new mode */
    __u32 uid;      /* chown: the new owner, (__u32)-1 to keep it */
    __u32 gid;      /* chown: the new group, (__u32)-1 to keep it */
    __u32 at_flags; /* AT_SYMLINK_NOFOLLOW (lchown, fchownat), AT_EMPTY_PATH */
};

/* meta_tickets: thread id -> the one chmod or chown system call that the
 * daemon found changes nothing (KS_FF_ASK), let through at the syscall
 * tracepoint when it is that call: same op, fd, path (its address and the
 * FNV-1a 64 hash of its text) and arguments, before the deadline. The
 * thread's next chmod or chown system call takes the ticket, whatever it is. */
struct ks_meta_ticket {
    __u32 op; /* KS_OP_CHMOD, KS_OP_CHOWN or KS_OP_SYMLINK_TO (path_hash: the link's) */
    __s32 dfd;
    struct ks_meta_args args;
    __u64 upath; /* the path argument's address; 0: the call names an fd */
    __u64 path_hash;
    __u64 deadline_ns; /* CLOCK_BOOTTIME */
};

struct ks_file_event {
    struct ks_event_header hdr; /* hdr.ts_ns: entry of the call */
    __u32 op;                   /* enum ks_file_op */
    __u32 layer;                /* enum ks_layer */
    __u32 match;                /* enum ks_match */
    __u32 action;               /* enum ks_action of the rule */
    __u32 rule_id;
    __u32 flags; /* KS_FF_* */
    __s32 dfd;
    __u32 open_flags;
    __u64 dev; /* the protected object (or start directory) that matched */
    __u64 ino;
    __u32 path_len;
    __u32 cwd_len;
    __u64 stop_ns; /* when the signal was sent (CLOCK_BOOTTIME) */
    char path[KS_FILE_PATH_MAX];
    char cwd[KS_PATH_BUF]; /* start directory components, leaf first */
    __u64 bytes;           /* KS_OP_SPACE_WRITE: what the call would write */
    struct ks_meta_args meta; /* KS_FF_ASK: what the call asks for */
    __u64 upath;              /* KS_FF_ASK: the path argument's (a link's) address */
};

struct ks_exec_check_event {
    struct ks_event_header hdr;
    __u32 argc;
    __u32 argv_len;
    __u32 filename_len;
    __u32 flags;
    char filename[KS_FILENAME_MAX]; /* the new program's name (comm) */
    char argv[KS_EXEC_ARGV_BUF];    /* NUL-separated, from the new image */
};

/* ---- database protection ---- */

#define KS_DB_QUERY_MAX 4096 /* statement text read at the client library */

enum ks_db_kind {
    KS_DB_POSTGRES = 1,
    KS_DB_MYSQL = 2,
    KS_DB_REDIS = 3,
    KS_DB_MONGODB = 4,
    /* Not a database: a deputy, the unix socket of a service that acts for
     * whoever asks (systemd, D-Bus, a container runtime). A guarded process
     * may not connect to one (policy processes.deputies). */
    KS_DB_DEPUTY = 5,
};

/* ks_db_check_event.flags */
#define KS_DBF_TRUNC (1u << 0)   /* longer than KS_DB_QUERY_MAX: never taken as harmless */
#define KS_DBF_MONITOR (1u << 1) /* not held: monitor mode */
#define KS_DBF_WINDOW (1u << 2)  /* not held: the session's allow window is open */

struct ks_db_check_event {
    struct ks_event_header hdr;
    __u32 kind; /* enum ks_db_kind */
    __u32 flags;
    __u32 query_len;
    __u32 _pad0;
    char query[KS_DB_QUERY_MAX];
};

/* ---- database protection on the socket send path ---- */

/* The bytes of one request the kernel reads and classifies. A request that
 * needs more (a PostgreSQL Query, a MySQL COM_QUERY, a Redis command longer
 * than this) is unparseable there, never harmless. Power of two. */
#define KS_DB_WINDOW 4096

/* db_endpoints: key. IPv4 addresses as IPv4-mapped IPv6 (::ffff:a.b.c.d); an
 * all-zero address matches every address on that port. */
struct ks_db_endpoint_key {
    __u8 addr[16];
    __u16 port; /* host byte order */
    __u16 _pad0;
};

struct ks_db_endpoint {
    __u32 kind; /* enum ks_db_kind */
    __u32 id;   /* index of the endpoint in the daemon's list */
};

/* db_unix_endpoints: key = (dev, ino) of a watched unix socket file. */
struct ks_db_unix_key {
    __u64 dev;
    __u64 ino;
};

/* Where a guarded connection is in its protocol. */
enum ks_db_phase {
    KS_DBP_STARTUP = 0,   /* first client message not yet seen */
    KS_DBP_READY = 1,     /* requests */
    KS_DBP_OPAQUE = 2,    /* TLS or compression allowed by the policy: passed unread */
    KS_DBP_DEAD = 3,      /* a request was refused: everything after it is refused too */
    KS_DBP_SSL_ASKED = 4, /* PostgreSQL SSLRequest/GSSENCRequest sent: the server's answer
                           * shows in what the client sends next (TLS, or a startup) */
};

/* db_socks_state: key = socket cookie. Written at connect() of a guarded
 * process to a watched endpoint, read by the sk_msg verdict. */
struct ks_db_sock {
    __u32 kind;
    __u32 endpoint_id;
    __u32 session_id;
    __u32 tgid;  /* the process that connected */
    __u32 phase; /* enum ks_db_phase */
    __u32 relayed; /* 0; 1: sent to the daemon's IPv4 relay; 2: to its IPv6 relay */
    __u64 cookie;  /* the socket's cookie: names the connection in records */
    __u8 dst[16];  /* where it connected (IPv4 as ::ffff:a.b.c.d) */
    __u16 dst_port; /* host byte order */
    __u16 _pad1;
    __u32 _pad2;
};

/* db_relay_conns: a guarded connection the connect programs sent to the
 * daemon's relay, by the client's local port as the relay sees it. Written
 * when the connection is established (sockops), taken by the relay when it
 * accepts it. */
struct ks_db_relay_key {
    __u16 port; /* the client's local port, host byte order */
    __u16 v6;   /* 0: the IPv4 relay (127.0.0.1); 1: the IPv6 relay (::1) */
};

struct ks_db_relay_conn {
    __u32 kind;
    __u32 endpoint_id;
    __u32 session_id;
    __u32 tgid;
    __u64 cookie;
    __u8 dst[16];
    __u16 dst_port;
    __u16 _pad0;
    __u32 _pad1;
};

/* Why the kernel refused a request (ks_db_wire_event.reason). */
enum ks_db_reason {
    KS_DBR_NONE = 0,
    KS_DBR_DROP = 1,
    KS_DBR_TRUNCATE = 2,
    KS_DBR_DELETE_ALL = 3,
    KS_DBR_UPDATE_ALL = 4,
    KS_DBR_ALTER_DROP = 5,
    KS_DBR_OPAQUE_CODE = 6, /* DO blocks, EVALSHA, FCALL, PREPARE of text... */
    KS_DBR_FLUSH = 7,       /* FLUSHALL, FLUSHDB */
    KS_DBR_SHUTDOWN = 8,    /* SHUTDOWN NOSAVE */
    KS_DBR_SWAPDB = 9,
    KS_DBR_CONFIG_PATH = 10, /* CONFIG SET of where or whether data is kept (dir, save...) */
    /* lose no row; refused only when the policy lists them */
    KS_DBR_SCHEMA_CHANGE = 11, /* DROP INDEX, ALTER ... DROP NOT NULL/DEFAULT/CONSTRAINT/INDEX... */
    KS_DBR_BOOKKEEPING = 12,   /* DELETE/UPDATE of every row of a migration tool's own table */
    /* destructive: the server reads, writes or runs something on its host,
     * or loads code (COPY ... PROGRAM, lo_export, INTO OUTFILE, MODULE LOAD...) */
    KS_DBR_HOST_ACCESS = 13,
    /* unparseable: the policy's "unparseable" action decides */
    KS_DBR_TOO_LONG = 16,     /* longer than KS_DB_WINDOW */
    KS_DBR_MALFORMED = 17,    /* lengths or framing that make no sense */
    KS_DBR_TLS = 18,          /* TLS (or GSS) requested: the bytes cannot be read */
    KS_DBR_COMPRESSED = 19,   /* protocol compression: the bytes cannot be read */
    KS_DBR_UNKNOWN = 20,      /* an opcode or message the kernel does not know */
    KS_DBR_UNTERMINATED = 21, /* a string, comment or quote left open */
    KS_DBR_UNIX_SOCKET = 24,  /* connect() to a watched unix socket: cannot be inspected */
};
#define KS_DBR_FIRST_UNPARSEABLE KS_DBR_TOO_LONG

/* The classes below KS_DBR_FIRST_UNPARSEABLE as a mask (1 << KS_DBR_*):
 * ks_db_config.refuse_classes says which the kernel refuses. */
#define KS_DB_CLASS_BIT(r) (1u << (r))
#define KS_DB_CLASSES_DESTRUCTIVE \
    ((((1u << (KS_DBR_CONFIG_PATH + 1)) - 1) & ~1u) | KS_DB_CLASS_BIT(KS_DBR_HOST_ACCESS))
#define KS_DB_CLASSES_ALL                                                \
    (KS_DB_CLASSES_DESTRUCTIVE | KS_DB_CLASS_BIT(KS_DBR_SCHEMA_CHANGE) | \
     KS_DB_CLASS_BIT(KS_DBR_BOOKKEEPING))

/* db_bookkeeping (hash): FNV-1a of a table name, lower case, unquoted, no
 * schema -> 1. A DELETE/UPDATE of every row of one of them is
 * KS_DBR_BOOKKEEPING rather than delete-all or update-all. */
#define KS_DB_BOOKKEEPING_MAX 256

/* ks_db_wire_event.verdict */
enum ks_db_verdict {
    KS_DBV_PASS = 0,
    KS_DBV_REFUSE = 1,
    KS_DBV_WOULD_REFUSE = 2, /* monitor mode, or a policy that allows it: sent */
    KS_DBV_WINDOW = 3,       /* would be refused; the session's allow window let it through */
};

/* db_config (array, one entry) */
struct ks_db_config {
    __u32 monitor;            /* record only */
    __u32 refuse_unparseable; /* refuse what cannot be read (default) */
    __u32 refuse_opaque;      /* refuse TLS / compression (default) */
    __u32 refuse_unix;        /* refuse connect() to watched unix sockets */
    __u32 refuse_classes;     /* KS_DB_CLASS_BIT(KS_DBR_*) of the classes refused */
    /* The daemon's relay (userspace/db_relay): guarded connections to watched
     * endpoints go there while it listens, and it judges every request with
     * the full parsers. 0: no relay; the kernel judges them on the send path. */
    __u16 relay_port4; /* on 127.0.0.1, host byte order */
    __u16 relay_port6; /* on ::1 */
    __u32 relay_unix;  /* watched unix sockets go to the relay's abstract sockets */
    __u32 deputy_monitor; /* deputies: record a connect, refuse nothing (mode: monitor) */
};

/* The relay's listening socket for a watched unix socket: the abstract name
 * KS_DB_RELAY_UNIX_PREFIX followed by the 16 lower-case hex digits of the
 * FNV-1a hash of the watched path (the key of db_unix_paths). */
#define KS_DB_RELAY_UNIX_PREFIX "ks-relay-"

struct ks_db_wire_event {
    struct ks_event_header hdr;
    __u32 kind; /* enum ks_db_kind */
    __u32 endpoint_id;
    __u32 verdict;       /* enum ks_db_verdict */
    __u32 reason;        /* enum ks_db_reason */
    __u32 layer;         /* KS_LAYER_SK_MSG or KS_LAYER_CONNECT */
    __u32 msg_type;      /* 'Q', 'P'; MySQL command byte; 0 */
    __u32 msg_len;       /* the whole request on the wire */
    __u32 text_len;      /* bytes in text[] */
    __u64 cookie;        /* the connection (socket cookie) */
    __u32 family;        /* AF_INET / AF_INET6 */
    __u16 local_port;    /* host byte order */
    __u16 remote_port;   /* host byte order */
    __u8 local_addr[16]; /* IPv4: the first 4 bytes */
    __u8 remote_addr[16];
    char text[KS_DB_WINDOW]; /* the statement / command as sent (not NUL-terminated) */
};

/* ---- databases.discover: a TCP socket began to listen ---- */

/* One per listen() of any process on the host (tracepoint
 * sock/inet_sock_set_state, new state LISTEN), on a ring buffer of its own
 * (db_listen.bpf.c): the daemon looks for new database listeners at once
 * instead of at its next periodic scan. Not a policy event. */
struct ks_listen_note {
    __u64 ts_ns; /* CLOCK_BOOTTIME */
    __u32 pid;   /* thread-group id of the listener */
    __u16 family;
    __u16 port; /* host order */
    char comm[KS_COMM_LEN];
};

/* ---- maintenance windows (killswitch allow) ---- */

/* allow_windows: key = session id. Until until_boot_ns (CLOCK_BOOTTIME, as
 * bpf_ktime_get_boot_ns) the session's destructive operations are let
 * through and recorded, except for rules and objects marked no-window. The
 * kernel compares the time itself: the window closes on time without the
 * daemon. */
struct ks_allow_window {
    __u64 until_boot_ns;
    __u32 window_id;
    __u32 _pad0;
};

/* FNV-1a, 64 bits: the same on both sides of the boundary. */
#define KS_FNV_OFFSET 0xcbf29ce484222325ULL
#define KS_FNV_PRIME 0x100000001b3ULL

/* Self-protection (ks_tamper_event.what): what a guarded process went for. */
enum ks_tamper {
    KS_TAMPER_SIGNAL =
        1, /* a signal to the daemon (kill, tgkill, sigqueue...) or to every process */
    KS_TAMPER_PTRACE = 2,   /* ptrace attach to the daemon */
    KS_TAMPER_PIDFD = 3,    /* a pidfd of the daemon (to signal it) */
    KS_TAMPER_VM_WRITE = 4, /* process_vm_writev into the daemon */
    KS_TAMPER_BPF = 5,      /* the bpf() system call: detach, replace or read programs and maps */
    KS_TAMPER_MODULE = 6,   /* load or unload a kernel module */
    KS_TAMPER_KEXEC = 7,    /* load a kernel to kexec */
    KS_TAMPER_REBOOT = 8,   /* reboot, power off, halt */
    /* Reach: a guarded process went for a process outside its session (the
     * database server, another session, any unguarded process). */
    KS_TAMPER_REACH_SIGNAL = 9,    /* a signal (kill, tgkill, sigqueue...) */
    KS_TAMPER_REACH_PTRACE = 10,   /* ptrace attach; at the hook layer also /proc/PID/mem
                                    * and process_vm_readv/writev */
    KS_TAMPER_REACH_VM_WRITE = 11, /* process_vm_writev */
    KS_TAMPER_REACH_PIDFD = 12,    /* pidfd_open (a pidfd serves to signal) */
};

/* ks_tamper_event.flags. HELD: stopped at a libc entry before the call; the
 * daemon judges the target, then lets the caller go on or kills it. REFUSED:
 * an LSM hook refused the call (EPERM) and the caller goes on. */
#define KS_TF_HELD (1u << 0)
#define KS_TF_REFUSED (1u << 1)

/* protected_pids (hash): tgid -> 1, the processes a guarded one may not
 * signal, ptrace or write into (the daemon).
 * reachable_names (hash): comm -> 1, programs outside every session that
 * guarded processes may still signal and trace (policy processes.reachable). */

struct ks_tamper_event {
    struct ks_event_header hdr;
    __u32 what;       /* enum ks_tamper */
    __u32 layer;      /* KS_LAYER_UPROBE: the call never happened; KS_LAYER_TRACEPOINT: it ran */
    __s64 target;     /* pid (or -pgid, -1) aimed at; 0 when none */
    __u64 arg;        /* the signal, ptrace request, bpf command or reboot command */
    __u32 syscall_nr; /* the system call (tracepoint), or 0 for a libc entry */
    __u32 flags;      /* KS_TF_* */
};

/* Per-CPU counters (array map "counters"), one slot per index below. */
enum ks_counter {
    KS_CTR_EVENTS = 0,        /* + ks_event_type: records submitted */
    KS_CTR_LOST = 12,         /* + ks_event_type: records lost (ring buffer full) */
    KS_CTR_GUARD_FULL = 24,   /* a guarded task could not be added: map full */
    KS_CTR_HELD = 25,         /* tasks held at exec */
    KS_CTR_FILE_MATCH = 26,   /* destructive operations on protected objects */
    KS_CTR_EXEC_CHECK = 27,   /* execs held for the argv rules */
    KS_CTR_DB_REFUSED = 28,   /* requests refused on the socket send path */
    KS_CTR_DB_SOCK_FULL = 29, /* guarded connections refused: socket maps full */
    KS_CTR_DB_REQUESTS = 30,  /* requests inspected on the socket send path */
    KS_CTR_TAMPER = 31,       /* self-protection: guarded processes stopped */
    KS_CTR_DB_RELAYED = 32,   /* guarded connections sent to the daemon's relay */
    KS_CTR_FORK_HELD = 33,    /* new children held until their uprobes were attached */
    KS_CTR_MAX = 40,
};

#endif /* KILLSWITCH_ABI_EVENTS_H */
