#include "db_guard/listen_watch.h"

#include <bpf/libbpf.h>

#include <cstring>

#include "db_listen.skel.h"

namespace ks {

KS_SKELETON(db_listen);

Result<std::unique_ptr<ListenWatch>> ListenWatch::start() {
    std::unique_ptr<ListenWatch> w(new ListenWatch());
    if (auto st = w->skel_.open(); !st) return st.error();
    if (auto st = w->skel_.load(); !st) return st.error();
    w->link_ = bpf_program__attach(w->skel_->progs.ks_listen);
    if (!w->link_)
        return sys_error("attach the sock/inet_sock_set_state tracepoint (is tracefs mounted?)");
    w->rb_ = ring_buffer__new(bpf_map__fd(w->skel_->maps.listen_notes), &ListenWatch::on_note,
                              w.get(), nullptr);
    if (!w->rb_) return sys_error("ring buffer of the listen notes");
    return w;
}

ListenWatch::~ListenWatch() {
    if (rb_) ring_buffer__free(rb_);
    if (link_) bpf_link__destroy(link_);
}

int ListenWatch::fd() const { return ring_buffer__epoll_fd(rb_); }

int ListenWatch::on_note(void* ctx, void* data, size_t size) {
    if (size < sizeof(ks_listen_note)) return 0;
    ks_listen_note n;
    std::memcpy(&n, data, sizeof(n));
    static_cast<ListenWatch*>(ctx)->notes_.push_back(n);
    return 0;
}

std::vector<ks_listen_note> ListenWatch::take() {
    ring_buffer__consume(rb_);
    return std::exchange(notes_, {});
}

}  // namespace ks
