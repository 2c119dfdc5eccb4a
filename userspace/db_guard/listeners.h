// Every address a running database server listens on, found from the server's
// own process (databases.discover): a guarded client that reaches PostgreSQL
// on a second port, a private unix socket directory or ::1 is judged as on
// the port the policy names.
//
// A server is a process named postgres, mysqld, mariadbd, redis-server or
// mongod (or "tmux: server", screen, SCREEN) in the daemon's network namespace; what it listens on
// is each of its sockets that /proc/net/{tcp,tcp6,unix} shows listening (abstract unix sockets left
// out: nothing connects to them by path).
#pragma once

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
};

// proc_root: /proc, or a tree laid out like it (tests).
std::vector<Listener> discover_listeners(const std::string& proc_root = "/proc");

// Whether one of the endpoints already watches what the listener serves (the
// same unix path, or the same port on every address or on its address).
bool covered(const Endpoint& listener, const std::vector<Endpoint>& watched);

}  // namespace ks::db
