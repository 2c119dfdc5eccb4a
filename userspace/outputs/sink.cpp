#include "outputs/sink.h"

#include <pthread.h>
#include <signal.h>

#include <algorithm>

namespace ks::outputs {

using Clock = std::chrono::steady_clock;

RecordSink::RecordSink(std::string kind, std::string target, Limits limits)
    : kind_(std::move(kind)), target_(std::move(target)), limits_(limits) {}

RecordSink::~RecordSink() { stop(std::chrono::milliseconds(0)); }

void RecordSink::start() {
    // Signals stay with the event loop (its signalfd): the thread starts
    // with all of them blocked, whenever the daemon blocks its own.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    thread_ = std::thread([this] { loop(); });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

void RecordSink::offer(const nlohmann::json& record) {
    std::optional<std::string> item = render(record);
    if (!item) return;
    {
        std::lock_guard lk(mu_);
        if (stopping_) return;
        if (queue_.size() >= limits_.queue) {
            ++stats_.dropped;
            ++stats_.queue_full;
            return;
        }
        queue_.push_back(std::move(*item));
    }
    cv_.notify_one();
}

void RecordSink::begin_stop(std::chrono::milliseconds deadline) {
    {
        std::lock_guard lk(mu_);
        if (!stopping_) {
            stopping_ = true;
            stop_by_ = Clock::now() + deadline;
        }
    }
    cv_.notify_all();
}

void RecordSink::stop(std::chrono::milliseconds deadline) {
    begin_stop(deadline);
    if (thread_.joinable()) thread_.join();
}

void RecordSink::loop() {
    std::unique_lock lk(mu_);
    int attempt = 0;
    auto backoff = limits_.backoff_first;
    for (;;) {
        cv_.wait(lk, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) break;  // stopping, nothing left
        if (stopping_ && Clock::now() >= stop_by_) break;
        std::string item = queue_.front();
        lk.unlock();
        Status st = deliver(item);
        if (!st) reset();
        lk.lock();
        if (st) {
            queue_.pop_front();
            ++stats_.delivered;
            stats_.connected = true;
            attempt = 0;
            backoff = limits_.backoff_first;
            continue;
        }
        stats_.connected = false;
        stats_.last_error = st.error().str();
        ++attempt;
        if (stopping_ || (limits_.attempts > 0 && attempt >= limits_.attempts)) {
            // Spent: this record is lost to this output; the next one starts
            // afresh (after the backoff, so a receiver that is down costs
            // one attempt per backoff, not one per record).
            queue_.pop_front();
            ++stats_.dropped;
            attempt = 0;
            if (stopping_) break;  // the receiver is down: the rest is lost too
        } else {
            ++stats_.retries;
        }
        auto until = Clock::now() + backoff;
        cv_.wait_until(lk, until, [&] { return stopping_; });
        backoff = std::min(backoff * 2, limits_.backoff_max);
    }
    stats_.dropped += queue_.size();
    queue_.clear();
}

void RecordSink::count_connect() {
    std::lock_guard lk(mu_);
    ++stats_.connects;
}

SinkStats RecordSink::stats() const {
    std::lock_guard lk(mu_);
    SinkStats s = stats_;
    s.queued = queue_.size();
    return s;
}

nlohmann::json RecordSink::stats_json() const {
    SinkStats s = stats();
    return {{"name", kind_},
            {"target", target_},
            {"delivered", s.delivered},
            {"dropped", s.dropped},
            {"queue_full", s.queue_full},
            {"retries", s.retries},
            {"queued", s.queued},
            {"connected", s.connected},
            {"connects", s.connects},
            {"last_error", s.last_error}};
}

}  // namespace ks::outputs
