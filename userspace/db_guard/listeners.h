// Every address a running database server listens on, found from the server's
// own process (databases.discover): a guarded client that reaches PostgreSQL
// on a second port, a private unix socket directory or ::1 is judged as on
// the port the policy names.
//
// A server is a process named postgres, mysqld, mariadbd, redis-server or
// mongod (or "tmux: server", screen, SCREEN) in the daemon's network
// namespace, or one whose executable is named so or is a copy of such a
// server's executable (the same ELF build ID); what it listens on
// is each of its sockets that /proc/net/{tcp,tcp6,unix} shows listening (abstract unix sockets left
// out: nothing connects to them by path).
//
// A local proxy in front of a database serves that database on its own
// listeners: a guarded client that reaches the server through it is judged
// all the same. Two kinds are known:
//   - database proxies and routers, by name, each speaking one protocol:
//     pgbouncer, pgcat, odyssey, pgpool (PostgreSQL); proxysql, mysqlrouter,
//     maxscale (MySQL); nutcracker (twemproxy: Redis); mongos (MongoDB);
//   - port forwarders, by the address their command line forwards to, when
//     that address is a watched endpoint or a server's listener: socat
//     (TCP*, OPENSSL and UNIX-CONNECT/UNIX-CLIENT addresses), ssh -L and
//     docker-proxy; haproxy and nginx (stream) by their configuration
//     (forwarder_configs.cpp), listener by listener; a target off loopback may be a server in
//     another network namespace (a container), whose listeners are read from its own /proc/PID/net.
// A process is never taken for a proxy because it merely holds connections
// to a database (every application server does, and its own port speaks
// HTTP, not the database's protocol).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "policy/db_endpoints.h"

namespace ks::db {

// Deputies (Kind::Deputy) too: the unix sockets of terminal multiplexers'
// servers (tmux, screen), which run whatever keys or commands a client sends.
struct Listener {
    Endpoint endpoint;   // "*:PORT" for a socket bound to every address
    int pid = 0;         // the server process that holds it
    std::string server;  // its name (comm)
    std::string via;     // a proxy: "forwards to 127.0.0.1:5432", "a postgres proxy"
};

class ServerBuilds;

// proc_root: /proc, or a tree laid out like it (tests). watched: the
// endpoints the policy names, which a forwarder's target may be (besides
// the servers' own listeners). builds: the servers' executables by build
// ID (server_builds.h), so that a copy of one under another name is found;
// none: by names alone.
std::vector<Listener> discover_listeners(const std::string& proc_root = "/proc",
                                         const std::vector<Endpoint>& watched = {},
                                         ServerBuilds* builds = nullptr);

// A port forwarder's targets, from its name and command line (argv): "HOST:PORT"
// or a unix socket path; none for any other program.
std::vector<std::string> forward_targets(const std::string& comm,
                                         const std::vector<std::string>& argv);

// A forwarder's route: a listener ("[HOST]:PORT", ":PORT" for every
// address, or a unix path; empty: every listener of the process) and the
// addresses it forwards to ("HOST:PORT" or a unix path).
struct ForwardRoute {
    std::string listen;
    std::vector<std::string> targets;
};
// haproxy's configuration files (their text, in the order -f gives them):
// each bind of a frontend or listen section in TCP mode, to the servers of
// the section and of its backends (default_backend, use_backend).
std::vector<ForwardRoute> haproxy_routes(const std::vector<std::string>& files);
// nginx's configuration (the main file's text; include(PATTERN) gives the
// text of each file an include names): each listen of a server in the
// stream block, to its proxy_pass (an address, or an upstream's servers).
std::vector<ForwardRoute> nginx_stream_routes(
    const std::string& main,
    const std::function<std::vector<std::string>(const std::string&)>& include);

// A process of this name may listen for a database: a server, a proxy or a
// forwarder that discover_listeners() looks at (a new TCP listener of one
// is looked for at once: listen_watch.h).
bool listens_for_databases(const std::string& comm);
// The name of a process's executable (proc_dir: /proc/PID), as the server it
// is: a server started under another name (through a link of another name,
// or renamed by a wrapper) is known by it.
std::string executable_name(const std::string& proc_dir);

// Whether one of the endpoints already watches what the listener serves (the
// same unix path, or the same port on every address or on its address).
bool covered(const Endpoint& listener, const std::vector<Endpoint>& watched);

}  // namespace ks::db
