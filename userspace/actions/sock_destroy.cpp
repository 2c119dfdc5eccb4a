#include "actions/sock_destroy.h"

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "common/fd.h"

namespace ks {

Status destroy_tcp_socket(const TcpEndpoints& s) {
    Fd nl(::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
    if (!nl.valid()) return sys_error("sock_diag netlink socket");
    struct {
        nlmsghdr nlh;
        inet_diag_req_v2 req;
    } msg{};
    msg.nlh.nlmsg_len = sizeof(msg);
    msg.nlh.nlmsg_type = SOCK_DESTROY;
    msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    msg.nlh.nlmsg_seq = 1;
    msg.req.sdiag_family = static_cast<uint8_t>(s.family);
    msg.req.sdiag_protocol = IPPROTO_TCP;
    msg.req.idiag_states = ~0u;
    msg.req.id.idiag_sport = htons(s.local_port);
    msg.req.id.idiag_dport = htons(s.remote_port);
    size_t n = s.family == AF_INET6 ? 16 : 4;
    std::memcpy(msg.req.id.idiag_src, s.local.data(), n);
    std::memcpy(msg.req.id.idiag_dst, s.remote.data(), n);
    msg.req.id.idiag_cookie[0] = static_cast<uint32_t>(s.cookie);
    msg.req.id.idiag_cookie[1] = static_cast<uint32_t>(s.cookie >> 32);
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    if (::sendto(nl.get(), &msg, sizeof(msg), 0, reinterpret_cast<sockaddr*>(&kernel),
                 sizeof(kernel)) < 0)
        return sys_error("SOCK_DESTROY request");
    alignas(nlmsghdr) char buf[512];
    ssize_t got = ::recv(nl.get(), buf, sizeof(buf), 0);
    if (got < static_cast<ssize_t>(sizeof(nlmsghdr) + sizeof(nlmsgerr)))
        return sys_error("SOCK_DESTROY answer");
    auto* h = reinterpret_cast<nlmsghdr*>(buf);
    if (h->nlmsg_type == NLMSG_ERROR) {
        auto* e = static_cast<nlmsgerr*>(NLMSG_DATA(h));
        if (e->error != 0) return sys_error("SOCK_DESTROY", -e->error);
    }
    return {};
}

}  // namespace ks
