// Recoverable errors travel in the return value: Result<T> holds a T or an
// Error (errno plus a context chain such as "attach file_guard: open tracefs").
#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <variant>

namespace ks {

struct Error {
    int code = 0;  // errno, or 0 when not a system error
    std::string message;

    [[nodiscard]] std::string str() const {
        if (code == 0) return message;
        return message + ": " + std::strerror(code);
    }
    // "ctx: message" so that each layer adds what it was doing.
    [[nodiscard]] Error wrap(const std::string& ctx) const {
        return Error{code, ctx + ": " + message};
    }
};

inline Error sys_error(const std::string& what, int code = errno) { return Error{code, what}; }
inline Error make_error(std::string what) { return Error{0, std::move(what)}; }

template <typename T>
class [[nodiscard]] Result {
  public:
    Result(T value) : v_(std::move(value)) {}
    Result(Error err) : v_(std::move(err)) {}

    [[nodiscard]] bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }
    T& value() & { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    const T& value() const& { return std::get<0>(v_); }
    T* operator->() { return &std::get<0>(v_); }
    const T* operator->() const { return &std::get<0>(v_); }
    T& operator*() & { return value(); }
    const Error& error() const { return std::get<1>(v_); }

  private:
    std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
  public:
    Result() = default;
    Result(Error err) : err_(std::move(err)), failed_(true) {}
    [[nodiscard]] bool ok() const { return !failed_; }
    explicit operator bool() const { return ok(); }
    const Error& error() const { return err_; }

  private:
    Error err_;
    bool failed_ = false;
};

using Status = Result<void>;

}  // namespace ks
