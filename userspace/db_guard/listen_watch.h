// databases.discover's trigger: a note for each TCP socket on the host that
// begins to listen (bpf/db_listen.bpf.c, tracepoint
// sock/inet_sock_set_state), so that the daemon looks for a new database
// server's, proxy's or forwarder's listeners as it starts listening rather
// than at its next periodic scan (daemon/db_listeners.cpp). Unix sockets have
// no such tracepoint: they are found by the periodic scan.
#pragma once

#include <killswitch/abi/events.h>

#include <memory>
#include <vector>

#include "common/result.h"
#include "common/skeleton.h"

struct db_listen;
struct bpf_link;
struct ring_buffer;

namespace ks {

class ListenWatch {
  public:
    // Loads and attaches the program (tracefs mounted: the daemon mounts it).
    static Result<std::unique_ptr<ListenWatch>> start();
    ~ListenWatch();
    ListenWatch(const ListenWatch&) = delete;
    ListenWatch& operator=(const ListenWatch&) = delete;

    // Readable (epoll) when notes wait.
    [[nodiscard]] int fd() const;
    // The notes that came since the last call.
    std::vector<ks_listen_note> take();

  private:
    ListenWatch() = default;
    static int on_note(void* ctx, void* data, size_t size);
    Skeleton<db_listen> skel_;
    bpf_link* link_ = nullptr;
    ring_buffer* rb_ = nullptr;
    std::vector<ks_listen_note> notes_;
};

}  // namespace ks
