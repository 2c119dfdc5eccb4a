#include "outputs/webhook.h"

#include <curl/curl.h>

#include <mutex>

#include "audit/audit.h"
#include "common/identity.h"

namespace ks::outputs {

namespace {

std::string str(const nlohmann::json& r, const char* k) { return record_text(r, k); }

// What the operation was, in a few words: "unlink /var/lib/pg/base" or
// "DROP TABLE orders" or "exec rm -rf /srv/data".
std::string what_of(const nlohmann::json& r) {
    if (r.contains("statement")) return str(r, "statement");
    std::string op = str(r, "op"), path = str(r, "path");
    if (op == "exec" && r.contains("argv") && r["argv"].is_array()) return record_command(r);
    return op + (path.empty() ? "" : " " + path);
}

class WebhookSink final : public RecordSink {
  public:
    WebhookSink(const std::string& url, Limits limits)
        : RecordSink("webhook", url, limits), hostname_(host_name()) {
        static std::once_flag once;
        std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
        start();
    }
    ~WebhookSink() override {
        stop(std::chrono::milliseconds(0));
        reset();
    }

  protected:
    std::optional<std::string> render(const nlohmann::json& record) override {
        auto body = webhook_payload(record, hostname_);
        if (!body) return std::nullopt;
        return body->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }

    Status deliver(const std::string& body) override {
        if (!curl_) {
            curl_ = curl_easy_init();
            if (!curl_) return make_error("curl_easy_init failed");
            headers_ = curl_slist_append(nullptr, "Content-Type: application/json");
            headers_ = curl_slist_append(headers_, "User-Agent: killswitch/" KS_VERSION);
        }
        curl_easy_setopt(curl_, CURLOPT_URL, target().c_str());
        curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers_);
        curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, body.c_str());
        curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
        curl_easy_setopt(curl_, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
        curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS, 5000L);
        curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl_, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, +[](char*, size_t n, size_t m, void*) { return n * m; });
        char err[CURL_ERROR_SIZE] = "";
        curl_easy_setopt(curl_, CURLOPT_ERRORBUFFER, err);
        CURLcode rc = curl_easy_perform(curl_);
        curl_easy_setopt(curl_, CURLOPT_ERRORBUFFER, nullptr);
        if (rc != CURLE_OK)
            return make_error("POST " + target() + ": " + (err[0] ? err : curl_easy_strerror(rc)));
        long status = 0;
        curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &status);
        if (status < 200 || status > 299)
            return make_error("POST " + target() + ": HTTP " + std::to_string(status));
        return {};
    }

    void reset() override {
        if (curl_) curl_easy_cleanup(curl_);
        curl_ = nullptr;
        if (headers_) curl_slist_free_all(headers_);
        headers_ = nullptr;
    }

  private:
    std::string hostname_;
    CURL* curl_ = nullptr;
    curl_slist* headers_ = nullptr;
};

}  // namespace

Status check_webhook_url(const std::string& url) {
    const std::string usage = "webhook needs http://HOST[:PORT]/PATH or https://HOST[:PORT]/PATH";
    size_t sep = url.find("://");
    if (sep == std::string::npos) return make_error(usage);
    std::string scheme = url.substr(0, sep);
    if (scheme != "http" && scheme != "https")
        return make_error("unknown scheme '" + scheme + "'; " + usage);
    CURLU* u = curl_url();
    CURLUcode rc = curl_url_set(u, CURLUPART_URL, url.c_str(), 0);
    char* host = nullptr;
    if (rc == CURLUE_OK) rc = curl_url_get(u, CURLUPART_HOST, &host, 0);
    bool ok = rc == CURLUE_OK && host && host[0];
    std::string why = rc == CURLUE_OK ? "no host" : curl_url_strerror(rc);
    curl_free(host);
    curl_url_cleanup(u);
    if (!ok) return make_error(why + "; " + usage);
    return {};
}

std::optional<nlohmann::json> webhook_payload(const nlohmann::json& r, const std::string& hostname) {
    std::string event = str(r, "event");
    if (event == "exec" || event == "fork" || event == "exit" || event == "session_start" ||
        event == "session_end")
        return std::nullopt;
    if (event == "db" && str(r, "class") == "harmless" && str(r, "verdict") != "allowed")
        return std::nullopt;
    nlohmann::json body{{"kind", "decision"}, {"host", r.value("host", "")}, {"hostname", hostname}};
    nlohmann::json commands = nlohmann::json::array();
    std::string session = str(r, "session"), verdict = str(r, "verdict");
    std::string who = "pid " + str(r, "pid") + (session.empty() ? "" : " (session " + session + ")");
    std::string text;
    if (verdict == "hold" && r.contains("hold_id")) {
        std::string id = str(r, "hold_id");
        body["kind"] = "hold";
        commands = {"killswitch approve " + id, "killswitch deny " + id};
        text = "killswitch on " + hostname + ": held " + what_of(r) + " by " + who + " (rule " +
               str(r, "rule") + "). Run `killswitch approve " + id + "` or `killswitch deny " + id +
               "`" +
               (r.contains("hold_timeout_s") ? "; denied in " + str(r, "hold_timeout_s") + " s if nobody decides" : "") +
               ".";
    } else if (str(r, "session_action") == "freeze" && !r.contains("session_action_error") &&
               !session.empty()) {
        body["kind"] = "frozen";
        commands = {"killswitch thaw --session " + session, "killswitch kill --session " + session};
        text = "killswitch on " + hostname + ": session " + session + " frozen after " + what_of(r) +
               " by pid " + str(r, "pid") + " (rule " + str(r, "rule") + ", " + verdict +
               "). Run `killswitch thaw --session " + session + "` to let it go on or `killswitch kill --session " +
               session + "` to end it";
        if (r.contains("frozen_timeout") && r["frozen_timeout"].is_object())
            text += "; in " + str(r["frozen_timeout"], "seconds") + " s: " + str(r["frozen_timeout"], "then");
        text += ".";
    } else {
        text = "killswitch on " + hostname + ": " + format_audit_human(r);
    }
    body["text"] = text;
    body["commands"] = commands;
    body["record"] = r;
    return body;
}

std::unique_ptr<RecordSink> make_webhook_sink(const std::string& url, RecordSink::Limits limits) {
    return std::make_unique<WebhookSink>(url, limits);
}

}  // namespace ks::outputs
