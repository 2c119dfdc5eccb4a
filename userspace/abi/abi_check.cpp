// The kernel writes these structs; a layout drift between the BPF objects
// and this binary must fail the build, not corrupt events.
#include <killswitch/abi/events.h>

#include <cstddef>

static_assert(sizeof(ks_event_header) == 64);
static_assert(offsetof(ks_event_header, type) == 16);
static_assert(offsetof(ks_event_header, session_id) == 40);
static_assert(offsetof(ks_event_header, comm) == 48);
static_assert(offsetof(ks_exec_event, seed) == 64);
static_assert(offsetof(ks_exec_event, filename) == 88);
static_assert(offsetof(ks_exec_event, argv) == 88 + KS_FILENAME_MAX);
static_assert(offsetof(ks_exec_event, cwd) == 88 + KS_FILENAME_MAX + KS_ARGV_MAX);
static_assert(sizeof(ks_exec_event) == 88 + KS_FILENAME_MAX + KS_ARGV_MAX + 2 * KS_PATH_BUF);
static_assert(sizeof(ks_fork_event) == 64);
static_assert(sizeof(ks_exit_event) == 72);
static_assert(sizeof(ks_listen_note) == 32);
static_assert(sizeof(ks_task_guard) == 8);
static_assert(sizeof(ks_cgroup_guard) == 8);
static_assert((KS_PATH_MAX & (KS_PATH_MAX - 1)) == 0,
              "masking in ks_path_step needs a power of two");
static_assert((KS_ARGV_MAX & (KS_ARGV_MAX - 1)) == 0, "masking of argv_len needs a power of two");

// Database protection on the socket send path.
static_assert(sizeof(ks_db_endpoint_key) == 20);
static_assert(sizeof(ks_db_endpoint) == 8);
static_assert(sizeof(ks_db_config) == 32);
static_assert(KS_DBR_UNIX_SOCKET < 32, "the SQL tokenizer keeps every reason it finds as a bit");
static_assert((KS_DB_CLASSES_ALL >> KS_DBR_FIRST_UNPARSEABLE) == 0);
static_assert(offsetof(ks_db_wire_event, cookie) == 96);
static_assert(offsetof(ks_db_wire_event, text) == 144);
static_assert((KS_DB_WINDOW & (KS_DB_WINDOW - 1)) == 0, "the BPF side masks with KS_DB_WINDOW - 1");

// Self-protection.
static_assert(sizeof(ks_tamper_event) == 96);
static_assert(offsetof(ks_tamper_event, target) == 72);
static_assert(int{KS_EVENT_TYPE_MAX} <= int{KS_CTR_LOST} - int{KS_CTR_EVENTS},
              "event counters overlap");
static_assert(int{KS_CTR_LOST} + int{KS_EVENT_TYPE_MAX} <= int{KS_CTR_GUARD_FULL},
              "lost counters overlap");
static_assert(KS_CTR_TAMPER < KS_CTR_MAX);

// File rules and maintenance windows.
static_assert(sizeof(ks_protected) == 8);
static_assert(sizeof(ks_rule) == 16);
static_assert(offsetof(ks_rule, flags) == 8);
static_assert(sizeof(ks_allow_window) == 16);

// Every record and map value the kernel writes has its layout pinned here:
// a field added on one side without the other fails the build.
static_assert(offsetof(ks_file_event, op) == 64);
static_assert(offsetof(ks_file_event, dfd) == 88);
static_assert(offsetof(ks_file_event, dev) == 96);
static_assert(offsetof(ks_file_event, stop_ns) == 120);
static_assert(offsetof(ks_file_event, path) == 128);
static_assert(offsetof(ks_file_event, cwd) == 128 + KS_FILE_PATH_MAX);
static_assert(offsetof(ks_file_event, bytes) == 128 + KS_FILE_PATH_MAX + KS_PATH_BUF);
static_assert(offsetof(ks_file_event, meta) == 128 + KS_FILE_PATH_MAX + KS_PATH_BUF + 8);
static_assert(offsetof(ks_file_event, upath) == 128 + KS_FILE_PATH_MAX + KS_PATH_BUF + 24);
static_assert(sizeof(ks_file_event) == 128 + KS_FILE_PATH_MAX + KS_PATH_BUF + 32);
static_assert(sizeof(ks_meta_ticket) == 48);
static_assert(offsetof(ks_exec_check_event, argc) == 64);
static_assert(offsetof(ks_exec_check_event, filename) == 80);
static_assert(offsetof(ks_exec_check_event, argv) == 80 + KS_FILENAME_MAX);
static_assert(sizeof(ks_exec_check_event) == 80 + KS_FILENAME_MAX + KS_EXEC_ARGV_BUF);
static_assert(offsetof(ks_db_check_event, kind) == 64);
static_assert(offsetof(ks_db_check_event, query) == 80);
static_assert(sizeof(ks_db_check_event) == 80 + KS_DB_QUERY_MAX);
static_assert(sizeof(ks_db_wire_event) == 144 + KS_DB_WINDOW);
static_assert(offsetof(ks_db_wire_event, local_addr) == 112);
static_assert(sizeof(ks_db_sock) == 56);
static_assert(sizeof(ks_db_relay_key) == 4);
static_assert(sizeof(ks_db_relay_conn) == 48);
static_assert(offsetof(ks_db_sock, cookie) == 24);
static_assert(sizeof(ks_db_unix_key) == 16);
static_assert(sizeof(ks_inode_key) == 16);
static_assert(sizeof(ks_edge_key) == 24);
static_assert(sizeof(ks_config) == 24);
static_assert(sizeof(ks_space_written) == 16);
static_assert(KS_PROBE_SESSION > KS_SESSION_KERNEL_BIT, "the probe's id is never a user space one");
