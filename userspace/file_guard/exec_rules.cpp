#include "file_guard/exec_rules.h"

#include <algorithm>

namespace ks {
namespace {

std::string join(const std::string& cwd, const std::string& p) {
    if (!p.empty() && p[0] == '/') return p;
    return (cwd == "/" ? "" : cwd) + "/" + p;
}

bool has(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

struct Parsed {
    std::vector<std::string> operands;
    std::vector<std::string> options;
};

// Splits short/long options from operands. Options that take a value (listed
// in with_value, short letters or long names) swallow it.
Parsed parse(const std::vector<std::string>& argv, const std::string& short_with_value,
             const std::vector<std::string>& long_with_value) {
    Parsed p;
    bool only_operands = false;
    for (size_t i = 1; i < argv.size(); ++i) {
        const std::string& a = argv[i];
        if (only_operands || a == "-" || a.empty() || a[0] != '-') {
            p.operands.push_back(a);
            continue;
        }
        if (a == "--") {
            only_operands = true;
            continue;
        }
        p.options.push_back(a);
        if (a.rfind("--", 0) == 0) {
            if (a.find('=') == std::string::npos && has(long_with_value, a) && i + 1 < argv.size())
                p.options.push_back(argv[++i]);
            continue;
        }
        // -abc: a value-taking letter consumes the rest, or the next word.
        for (size_t j = 1; j < a.size(); ++j) {
            if (short_with_value.find(a[j]) != std::string::npos) {
                if (j + 1 == a.size() && i + 1 < argv.size()) p.options.push_back(argv[++i]);
                break;
            }
        }
    }
    return p;
}

bool short_flag(const Parsed& p, char c, const std::string& long_name) {
    for (const auto& o : p.options) {
        if (o == long_name) return true;
        if (o.size() > 1 && o[0] == '-' && o[1] != '-' && o.find(c) != std::string::npos)
            return true;
    }
    return false;
}

std::optional<ExecMatch> hit(const std::string& rule, const std::string& reason,
                             const PathVerdict& v) {
    return ExecMatch{rule, reason + " (" + v.root + ")", v.resolved, v.rule_id};
}

// A block device: the rule is protect.block_devices'.
std::optional<ExecMatch> device(const std::string& rule, const std::string& reason,
                                const PathVerdict& v) {
    return ExecMatch{rule, reason + " (" + v.resolved + ")", v.resolved, policy::kRuleBlockDevice};
}

std::optional<ExecMatch> always(const std::string& rule, const std::string& reason) {
    return ExecMatch{rule, reason, "", std::nullopt};
}

}  // namespace

const std::vector<std::string>& watched_tools() {
    static const std::vector<std::string> tools = {
        "rm",        "rmdir",    "unlink",     "find",      "shred",    "dd",         "truncate",
        "mv",        "cp",       "rsync",      "mkfs",      "mke2fs",   "mkfs.ext2",  "mkfs.ext3",
        "mkfs.ext4", "mkfs.xfs", "mkfs.btrfs", "mkfs.vfat", "mkfs.fat", "wipefs",     "dropdb",
        "prisma",    "alembic",  "bfs",        "busybox",   "toybox",   "blkdiscard", "mkswap"};
    return tools;
}

namespace {

std::string base_name(const std::string& path) {
    std::string p = path;
    const std::string deleted = " (deleted)";  // an exe unlinked since it started
    if (p.size() > deleted.size() &&
        p.compare(p.size() - deleted.size(), deleted.size(), deleted) == 0)
        p.resize(p.size() - deleted.size());
    return p.substr(p.find_last_of('/') + 1);
}

bool multi_call(const std::string& name) { return name == "busybox" || name == "toybox"; }

// The tool whose rules apply to a name (bfs is a find).
std::string canonical_tool(const std::string& name) { return name == "bfs" ? "find" : name; }

}  // namespace

ExecIdentity identify_exec(const std::string& comm, const std::string& program,
                           const std::vector<std::string>& argv) {
    ExecIdentity id;
    id.argv = argv;
    std::string argv0 = argv.empty() ? "" : base_name(argv[0]);
    std::vector<std::string> names = {comm, base_name(program), argv0};
    // `busybox rm -rf /data`: the applet is the next word.
    if (multi_call(argv0) && argv.size() > 1) {
        id.argv.assign(argv.begin() + 1, argv.end());
        names.push_back(base_name(argv[1]));
    }
    const auto& watched = watched_tools();
    for (const auto& n : names) {
        if (n.empty() || multi_call(n)) continue;
        bool is_watched = std::find(watched.begin(), watched.end(), n) != watched.end();
        std::string t = canonical_tool(n);
        if (is_watched && std::find(id.tools.begin(), id.tools.end(), t) == id.tools.end())
            id.tools.push_back(t);
    }
    return id;
}

std::optional<ExecMatch> evaluate_exec_rules(const std::string& tool,
                                             const std::vector<std::string>& argv,
                                             const std::string& cwd,
                                             const PathClassifier& classify) {
    auto cls = [&](const std::string& operand) {
        bool trailing = !operand.empty() && operand.back() == '/';
        return classify(join(cwd, operand), trailing);
    };

    if (tool == "rm") {
        Parsed p = parse(argv, "", {});
        bool recursive = short_flag(p, 'r', "--recursive") || short_flag(p, 'R', "--recursive");
        for (const auto& op : p.operands) {
            PathVerdict v = cls(op);
            if (v.inside) return hit("exec:rm", "rm of protected data", v);
            if (recursive && v.contains)
                return hit("exec:rm-recursive",
                           "recursive rm of a directory holding protected data", v);
        }
    } else if (tool == "rmdir" || tool == "unlink") {
        for (const auto& op : parse(argv, "", {}).operands)
            if (auto v = cls(op); v.inside)
                return hit("exec:" + tool, tool + " of protected data", v);
    } else if (tool == "find") {
        std::vector<std::string> starts;
        size_t i = 1;
        for (; i < argv.size(); ++i) {
            const std::string& a = argv[i];
            if (a == "-H" || a == "-L" || a == "-P") continue;
            if (!a.empty() && (a[0] == '-' || a[0] == '(' || a[0] == '!')) break;
            starts.push_back(a);
        }
        if (starts.empty()) starts.push_back(".");
        bool deletes = false;
        for (size_t j = i; j < argv.size(); ++j) {
            const std::string& a = argv[j];
            if (a == "-delete") deletes = true;
            if ((a == "-exec" || a == "-execdir" || a == "-ok" || a == "-okdir") &&
                j + 1 < argv.size()) {
                std::string prog = argv[j + 1].substr(argv[j + 1].find_last_of('/') + 1);
                if (prog == "rm" || prog == "unlink" || prog == "shred" || prog == "truncate")
                    deletes = true;
            }
        }
        if (deletes)
            for (const auto& s : starts)
                if (auto v = cls(s); v.inside || v.contains)
                    return hit("exec:find-delete", "find that deletes protected data", v);
    } else if (tool == "shred") {
        for (const auto& op :
             parse(argv, "ns", {"--iterations", "--size", "--random-source"}).operands) {
            auto v = cls(op);
            if (v.inside) return hit("exec:shred", "shred of protected data", v);
            if (v.block_device) return device("exec:shred-device", "shred of a block device", v);
        }
    } else if (tool == "dd") {
        for (size_t i = 1; i < argv.size(); ++i)
            if (argv[i].rfind("of=", 0) == 0) {
                auto v = cls(argv[i].substr(3));
                if (v.inside) return hit("exec:dd-of", "dd writing over protected data", v);
                if (v.block_device)
                    return device("exec:dd-device", "dd writing to a block device", v);
            }
    } else if (tool == "truncate") {
        for (const auto& op : parse(argv, "sr", {"--size", "--reference"}).operands)
            if (auto v = cls(op); v.inside)
                return hit("exec:truncate", "truncate of protected data", v);
    } else if (tool == "mv" || tool == "cp" || tool == "rsync") {
        Parsed p = parse(argv, tool == "rsync" ? "eBfT" : "tS",
                         {"--target-directory", "--suffix", "--rsh", "--filter", "--exclude",
                          "--include", "--temp-dir"});
        std::string target;
        for (size_t i = 0; i < p.options.size(); ++i) {
            const std::string& o = p.options[i];
            if ((o == "-t" || o == "--target-directory") && i + 1 < p.options.size())
                target = p.options[i + 1];
            else if (o.rfind("--target-directory=", 0) == 0)
                target = o.substr(19);
        }
        std::vector<std::string> sources = p.operands;
        if (target.empty() && !sources.empty()) {
            target = sources.back();
            sources.pop_back();
        }
        if (tool == "mv")
            for (const auto& s : sources)
                if (auto v = cls(s); v.inside || v.contains)
                    return hit("exec:mv-away", "mv moving protected data away", v);
        if (!target.empty() && !sources.empty())
            if (auto v = cls(target); v.inside)
                return hit("exec:" + tool + "-onto", tool + " writing over protected data", v);
    } else if (tool.rfind("mkfs", 0) == 0 || tool == "mke2fs" || tool == "wipefs") {
        return always("exec:mkfs", tool + " destroys a filesystem");
    } else if (tool == "blkdiscard") {
        return always("exec:blkdiscard", "blkdiscard discards a device's data");
    } else if (tool == "mkswap") {
        for (const auto& op :
             parse(argv, "LUpe", {"--label", "--uuid", "--pagesize", "--endianness"}).operands) {
            auto v = cls(op);
            if (v.inside) return hit("exec:mkswap", "mkswap over protected data", v);
            if (v.block_device) return device("exec:mkswap-device", "mkswap of a block device", v);
        }
    } else if (tool == "dropdb") {
        return always("exec:dropdb", "dropdb removes a database");
    } else if (tool == "prisma") {
        for (size_t i = 1; i + 1 < argv.size(); ++i)
            if (argv[i] == "migrate" && argv[i + 1] == "reset")
                return always("exec:prisma-migrate-reset",
                              "prisma migrate reset drops the database");
        if (has(argv, "--force-reset"))
            return always("exec:prisma-force-reset", "prisma db push --force-reset drops the data");
    } else if (tool == "alembic") {
        for (size_t i = 1; i + 1 < argv.size(); ++i)
            if (argv[i] == "downgrade" && argv[i + 1] == "base")
                return always("exec:alembic-downgrade-base",
                              "alembic downgrade base drops every table");
    }
    return std::nullopt;
}

}  // namespace ks
