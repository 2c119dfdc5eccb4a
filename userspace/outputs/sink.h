// A record output (syslog, webhook, OCSF file, journald): the daemon offers
// it each audit record as the record is written; the output keeps a bounded
// queue and delivers from a thread of its own. Offering never blocks and
// never fails: when the queue is full (the receiver is down or slow) the
// record is dropped from this output and counted. The audit file, written
// by the daemon itself, is never affected.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "common/result.h"

namespace ks::outputs {

// What an output has done since the daemon started (status, metrics).
struct SinkStats {
    uint64_t delivered = 0;  // records the receiver took
    uint64_t dropped = 0;    // records never delivered: queue full, or retries spent
    uint64_t queue_full = 0; // of dropped: refused because the queue was full
    uint64_t retries = 0;    // deliveries tried again after a failure
    uint64_t queued = 0;     // waiting now
    uint64_t connects = 0;   // connections made (stream outputs): one while the receiver stays up
    bool connected = false;  // the last delivery worked
    std::string last_error;  // the last failure, "" when none
};

class RecordSink {
  public:
    struct Limits {
        size_t queue = 4096;  // records waiting, at most
        int attempts = 5;     // per record, before it is dropped (0: until it goes)
        std::chrono::milliseconds backoff_first{200};
        std::chrono::milliseconds backoff_max{10000};
    };

    virtual ~RecordSink();
    RecordSink(const RecordSink&) = delete;
    RecordSink& operator=(const RecordSink&) = delete;

    // "syslog", "webhook", ...; and the target as configured.
    [[nodiscard]] const std::string& kind() const { return kind_; }
    [[nodiscard]] const std::string& target() const { return target_; }

    // The record if this output wants it (render() gives nullopt when not):
    // queued, or dropped and counted when the queue is full. Never blocks
    // on the receiver.
    void offer(const nlohmann::json& record);

    // The daemon stops: from now, up to `deadline` for the queue to empty;
    // then the thread ends and what is left is counted as dropped.
    // begin_stop() only says so (so that several outputs drain at once);
    // stop() also waits for the thread.
    void begin_stop(std::chrono::milliseconds deadline);
    void stop(std::chrono::milliseconds deadline);

    // SIGHUP (log rotation): an output that writes a file opens it again.
    virtual void reopen() {}

    [[nodiscard]] SinkStats stats() const;
    // {name, target, delivered, dropped, queue_full, retries, queued,
    //  connected, last_error}: status and the metrics.
    [[nodiscard]] nlohmann::json stats_json() const;

  protected:
    RecordSink(std::string kind, std::string target, Limits limits);
    // Starts the delivery thread; the subclass's constructor calls it last.
    void start();

    // On the caller's thread (the event loop): the text to deliver for this
    // record, or nullopt when this output does not take it. Cheap.
    virtual std::optional<std::string> render(const nlohmann::json& record) = 0;
    // On the delivery thread: deliver one rendered record. An error keeps
    // it at the head of the queue to be tried again after a backoff.
    virtual Status deliver(const std::string& item) = 0;
    // On the delivery thread, after a failure: drop any connection.
    virtual void reset() {}
    // A stream output made a new connection (counted in stats).
    void count_connect();

  private:
    void loop();

    std::string kind_, target_;
    Limits limits_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::string> queue_;
    bool stopping_ = false;
    std::chrono::steady_clock::time_point stop_by_{};
    SinkStats stats_;
    std::thread thread_;
};

}  // namespace ks::outputs
