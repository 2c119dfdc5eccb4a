// RAII for a bpftool-generated skeleton: one owner that opens, loads and
// destroys it. KS_SKELETON(name), inside namespace ks in the loader's .cpp
// after its "name.skel.h", names the generated functions once and registers
// the object's bytes (the pinned state's build id covers every object).
#pragma once

#include <bpf/libbpf.h>

#include <cerrno>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace ks {

template <typename T>
struct SkeletonTraits;

using ElfBytesFn = std::string_view (*)();
// Every skeleton linked into this binary, by name.
const std::map<std::string, ElfBytesFn>& skeleton_registry();
struct SkeletonRegistration {
    SkeletonRegistration(const char* name, ElfBytesFn bytes);
};
// Every object's bytes, in name order.
std::vector<std::string_view> all_skeleton_bytes();

#define KS_SKELETON(name)                                         \
    template <>                                                   \
    struct SkeletonTraits<::name> {                               \
        static constexpr const char* kName = #name;               \
        static ::name* open() { return ::name##__open(); }        \
        static int load(::name* s) { return ::name##__load(s); }  \
        static void destroy(::name* s) { ::name##__destroy(s); }  \
        static std::string_view elf_bytes() {                     \
            size_t sz = 0;                                        \
            const void* p = ::name##__elf_bytes(&sz);             \
            return {static_cast<const char*>(p), sz};             \
        }                                                         \
    };                                                            \
    static const SkeletonRegistration ks_registered_##name(#name, \
                                                           &SkeletonTraits<::name>::elf_bytes)

template <typename T>
class Skeleton {
    using Traits = SkeletonTraits<T>;

  public:
    Skeleton() = default;
    ~Skeleton() { reset(); }
    Skeleton(Skeleton&& o) noexcept : skel_(std::exchange(o.skel_, nullptr)) {}
    Skeleton& operator=(Skeleton&& o) noexcept {
        if (this != &o) {
            reset();
            skel_ = std::exchange(o.skel_, nullptr);
        }
        return *this;
    }
    Skeleton(const Skeleton&) = delete;
    Skeleton& operator=(const Skeleton&) = delete;

    // "open NAME BPF object: ERRNO" on failure.
    [[nodiscard]] Status open() {
        reset();
        skel_ = Traits::open();
        if (!skel_) return sys_error(std::string("open ") + Traits::kName + " BPF object");
        return {};
    }
    // The verifier's reason reaches the log through libbpf's print callback.
    [[nodiscard]] Status load() {
        if (int err = Traits::load(skel_))
            return sys_error(std::string("load ") + Traits::kName + " BPF programs", -err);
        return {};
    }
    void reset() {
        if (skel_) Traits::destroy(std::exchange(skel_, nullptr));
    }

    T* operator->() const { return skel_; }
    [[nodiscard]] T* get() const { return skel_; }
    [[nodiscard]] bpf_object* object() const { return skel_ ? skel_->obj : nullptr; }
    explicit operator bool() const { return skel_ != nullptr; }
    // The object's bytes (the pinned state's build id).
    static std::string_view elf_bytes() { return Traits::elf_bytes(); }
    static constexpr const char* name() { return Traits::kName; }

  private:
    T* skel_ = nullptr;
};

}  // namespace ks
