// What OCSF 1.8.0 requires of the four classes killswitch emits, written
// out from the schema (ocsf/ocsf-schema at tag 1.8.0: events/base_event.json,
// events/system/{system,process_activity,file_activity}.json,
// events/application/datastore_activity.json,
// events/findings/{finding,detection_finding}.json, dictionary.json and the
// objects each uses), independently of the code that maps records: every
// required attribute after `extends`, the objects' required attributes and
// `at_least_one` constraints, the enums of the ids, and type_uid.
// Used by the unit tests (every kind of record) and the kernel tier (the
// events a running daemon writes).
#pragma once

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

namespace ks::test::ocsf {

using nlohmann::json;

inline std::set<int> range(int from, int to, std::initializer_list<int> more = {99}) {
    std::set<int> s(more);
    for (int i = from; i <= to; ++i) s.insert(i);
    return s;
}

class Checker {
  public:
    // Every way `ev` falls short of its class in 1.8.0; empty when none.
    std::vector<std::string> check(const json& ev) {
        errs_.clear();
        if (!ev.is_object()) return {"not an object"};
        for (const char* k : {"activity_id", "category_uid", "class_uid", "type_uid", "severity_id",
                              "time", "metadata"})
            need(ev, k, "event");
        if (!errs_.empty()) return errs_;
        int cls = ev["class_uid"].get<int>(), act = ev["activity_id"].get<int>();
        if (ev["type_uid"].get<int64_t>() != cls * 100LL + act) err("type_uid is not class_uid*100+activity_id");
        if (!ev["time"].is_number_integer() || ev["time"].get<int64_t>() < 1000000000000LL)
            err("time is not milliseconds since the epoch");
        in_enum(ev, "severity_id", range(0, 6), "event");
        const json& md = ev["metadata"];
        need(md, "version", "metadata");
        need(md, "product", "metadata");
        if (md.value("version", "") != "1.8.0") err("metadata.version is not 1.8.0");
        if (md.contains("product")) at_least_one(md["product"], {"name", "uid"}, "metadata.product");
        std::set<std::string> profiles;
        for (const auto& p : md.value("profiles", json::array())) profiles.insert(p.get<std::string>());
        // disposition_id and action_id exist only through security_control.
        for (const char* k : {"disposition_id", "disposition", "action_id", "action"})
            if (ev.contains(k) && !profiles.count("security_control"))
                err(std::string(k) + " without the security_control profile in metadata.profiles");
        in_enum(ev, "disposition_id", range(0, 27), "event");
        in_enum(ev, "action_id", range(0, 4), "event");

        switch (cls) {
            case 1007:  // Process Activity: system.json makes actor and device required
                system_activity(ev, 5);
                need(ev, "process", "event") && process(ev["process"], "process");
                break;
            case 1001:  // File System Activity
                system_activity(ev, 14);
                need(ev, "file", "event") && file(ev["file"], "file");
                break;
            case 6005:
                expect_category(ev, 6);
                in_enum(ev, "activity_id", range(0, 10), "event");
                in_enum(ev, "status_id", range(0, 2), "event");
                in_enum(ev, "type_id", range(0, 3), "event");
                need(ev, "actor", "event") && actor(ev["actor"], "actor");
                need(ev, "src_endpoint", "event") && endpoint(ev["src_endpoint"], "src_endpoint");
                at_least_one(ev, {"database", "databucket", "table"}, "event");
                if (ev.contains("dst_endpoint")) endpoint(ev["dst_endpoint"], "dst_endpoint");
                if (ev.contains("database")) database(ev["database"], "database");
                if (ev.contains("device")) device(ev["device"], "device");
                if (ev.contains("query_info")) {
                    need(ev["query_info"], "query_string", "query_info");
                    at_least_one(ev["query_info"], {"name", "uid"}, "query_info");
                }
                break;
            case 2004:
                expect_category(ev, 2);
                in_enum(ev, "activity_id", range(0, 3), "event");
                in_enum(ev, "status_id", range(0, 6), "event");  // a finding's own statuses
                if (need(ev, "finding_info", "event")) {
                    const json& fi = ev["finding_info"];
                    need(fi, "uid", "finding_info");
                    if (fi.contains("analytic")) {
                        need(fi["analytic"], "type_id", "finding_info.analytic");
                        in_enum(fi["analytic"], "type_id", range(0, 11), "finding_info.analytic");
                        at_least_one(fi["analytic"], {"name", "uid"}, "finding_info.analytic");
                    }
                }
                for (const auto& e : ev.value("evidences", json::array())) {
                    at_least_one(e, {"actor", "api", "connection_info", "data", "database", "databucket",
                                     "device", "dst_endpoint", "email", "file", "process", "query",
                                     "src_endpoint", "url", "user", "job", "script", "reg_key",
                                     "reg_value", "win_service"},
                                 "evidences[]");
                    if (e.contains("process")) process(e["process"], "evidences[].process");
                    if (e.contains("file")) file(e["file"], "evidences[].file");
                    if (e.contains("database")) database(e["database"], "evidences[].database");
                    if (e.contains("user")) user(e["user"], "evidences[].user");
                }
                if (ev.contains("device")) device(ev["device"], "device");
                break;
            default: err("class_uid " + std::to_string(cls) + " is not one killswitch emits");
        }
        return errs_;
    }

  private:
    // What the System Activity category (events/system/system.json) asks of
    // its classes: category 1, actor and device, the status enum.
    void system_activity(const json& ev, int last_activity) {
        expect_category(ev, 1);
        in_enum(ev, "activity_id", range(0, last_activity), "event");
        in_enum(ev, "status_id", range(0, 2), "event");
        need(ev, "actor", "event") && actor(ev["actor"], "actor");
        need(ev, "device", "event") && device(ev["device"], "device");
    }
    void err(const std::string& e) { errs_.push_back(e); }
    bool need(const json& o, const char* k, const std::string& where) {
        if (o.is_object() && o.contains(k) && !o[k].is_null()) return true;
        err(where + ": missing required " + k);
        return false;
    }
    void at_least_one(const json& o, std::initializer_list<const char*> ks, const std::string& where) {
        for (const char* k : ks)
            if (o.is_object() && o.contains(k) && !o[k].is_null()) return;
        std::string names;
        for (const char* k : ks) names += std::string(names.empty() ? "" : ", ") + k;
        err(where + ": needs at least one of " + names);
    }
    void in_enum(const json& o, const char* k, const std::set<int>& values, const std::string& where) {
        if (!o.contains(k)) return;
        if (!o[k].is_number_integer() || !values.count(o[k].get<int>()))
            err(where + "." + k + " = " + o[k].dump() + " is not in its enum");
    }
    void expect_category(const json& ev, int cat) {
        if (ev["category_uid"] != cat) err("category_uid is not " + std::to_string(cat));
    }
    bool actor(const json& a, const std::string& where) {
        at_least_one(a, {"process", "user", "invoked_by", "session", "app_name", "app_uid"}, where);
        if (a.contains("process")) process(a["process"], where + ".process");
        if (a.contains("user")) user(a["user"], where + ".user");
        return true;
    }
    bool process(const json& p, const std::string& where) {
        at_least_one(p, {"pid", "uid", "cpid"}, where);
        if (p.contains("pid") && !p["pid"].is_number_integer()) err(where + ".pid is not an integer");
        if (p.contains("file")) file(p["file"], where + ".file");
        if (p.contains("parent_process")) process(p["parent_process"], where + ".parent_process");
        if (p.contains("user")) user(p["user"], where + ".user");
        return true;
    }
    bool device(const json& d, const std::string& where) {
        need(d, "type_id", where);
        in_enum(d, "type_id", range(0, 15), where);
        at_least_one(d, {"ip", "uid", "name", "hostname", "instance_uid", "interface_uid", "interface_name"},
                     where);
        return true;
    }
    bool file(const json& f, const std::string& where) {
        need(f, "name", where);
        need(f, "type_id", where);
        in_enum(f, "type_id", range(0, 8), where);
        return true;
    }
    void user(const json& u, const std::string& where) {
        at_least_one(u, {"account", "name", "uid"}, where);
        if (u.contains("uid") && !u["uid"].is_string()) err(where + ".uid is not a string");
    }
    bool endpoint(const json& e, const std::string& where) {
        at_least_one(e, {"ip", "uid", "name", "hostname", "svc_name", "instance_uid", "interface_uid",
                         "interface_name", "domain"},
                     where);
        return true;
    }
    void database(const json& d, const std::string& where) {
        need(d, "type_id", where);
        in_enum(d, "type_id", range(0, 8), where);
        at_least_one(d, {"name", "uid"}, where);
    }

    std::vector<std::string> errs_;
};

}  // namespace ks::test::ocsf
