#include "db_guard/classify.h"

namespace ks::db {

std::string_view class_name(Class c) {
    switch (c) {
        case Class::Harmless:
            return "harmless";
        case Class::Drop:
            return "drop";
        case Class::Truncate:
            return "truncate";
        case Class::DeleteAll:
            return "delete-all";
        case Class::UpdateAll:
            return "update-all";
        case Class::AlterDrop:
            return "alter-drop";
        case Class::OpaqueCode:
            return "opaque-code";
        case Class::FlushAll:
            return "flush";
        case Class::ShutdownNoSave:
            return "shutdown-nosave";
        case Class::SwapDb:
            return "swapdb";
        case Class::ConfigSetPath:
            return "config-set-path";
        case Class::Unparseable:
            return "unparseable";
    }
    return "unparseable";
}

bool is_destructive(Class c) { return c != Class::Harmless && c != Class::Unparseable; }

Class Classification::verdict() const {
    Class out = Class::Harmless;
    for (const auto& s : statements) {
        if (is_destructive(s.cls)) return s.cls;
        if (s.cls == Class::Unparseable) out = Class::Unparseable;
    }
    return out;
}

const Statement* Classification::first_of(Class c) const {
    for (const auto& s : statements)
        if (s.cls == c) return &s;
    return nullptr;
}

}  // namespace ks::db
