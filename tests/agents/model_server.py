#!/usr/bin/env python3
"""Scripted model server for driving real agent CLIs in tests.

Listens on 127.0.0.1 and speaks enough of four model APIs:

  * Anthropic Messages          POST /v1/messages            (SSE or JSON)
                                POST /v1/messages/count_tokens
  * OpenAI Responses            POST /v1/responses           (SSE)
  * OpenAI Chat Completions     POST /v1/chat/completions    (SSE or JSON)
  * Gemini                      POST /v1beta/models/M:streamGenerateContent
                                POST /v1beta/models/M:generateContent
                                POST /v1beta/models/M:countTokens
  * model listings              GET  .../models

The script: the first "main" request (one that offers the agent's shell tool)
is answered with ONE call of that tool running --command.  The next main
request, which carries the tool result, is answered with a final text
(--final-text) that ends the turn.  Every other request (titles, summaries,
quota checks, token counts, model lists...) gets a plain answer and leaves the
script where it is.

--result FILE is rewritten after every main request with a JSON object:
  {"command", "tool_name", "tool_call_sent_at", "final_sent", "requests": [
     {"t", "path", "api", "kind": "tool_call"|"final"|..., "has_tool_result",
      "tool_result", "latency_s"}], "tool_result", "latency_s", "aux": [...]}
latency_s is the time between the end of the tool-call response and the
arrival of the request carrying the tool result (the agent's next turn).

Standard library only.  Run: model_server.py --command 'echo hi' --result r.json
[--port 0] [--port-file F] [--log F] [--dump-dir D]; it prints "PORT <n>".
"""

import argparse
import json
import os
import re
import signal
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Names of the shell tools the agents offer, best first.
SHELL_TOOL_NAMES = (
    "Bash",               # Claude Code
    "shell",              # Codex (function tool)
    "shell_command",      # Codex (string-command variant)
    "exec_command",       # Codex (unified exec)
    "run_shell_command",  # Gemini CLI
    "bash",               # opencode
)


MAX_REPEATS = 2  # times the tool call is sent again to an agent that ignores it


def now():
    return time.time()


# ---------------------------------------------------------------- tool lookup

def _props(schema):
    if not isinstance(schema, dict):
        return {}
    p = schema.get("properties")
    return p if isinstance(p, dict) else {}


def tool_list(api, body):
    """Return [(name, parameters_schema, kind)] for the tools in a request."""
    out = []
    tools = body.get("tools") or []
    if api == "gemini":
        for t in tools:
            for fd in (t.get("functionDeclarations") or t.get("function_declarations") or []):
                out.append((fd.get("name"), fd.get("parameters") or fd.get("parametersJsonSchema") or {}, "function"))
        return out
    for t in tools:
        if not isinstance(t, dict):
            continue
        if api == "chat":
            fn = t.get("function") or {}
            out.append((fn.get("name"), fn.get("parameters") or {}, t.get("type", "function")))
        elif api == "anthropic":
            out.append((t.get("name"), t.get("input_schema") or {}, t.get("type", "custom")))
        else:  # responses
            ttype = t.get("type")
            name = t.get("name") or ttype
            out.append((name, t.get("parameters") or {}, ttype))
    return out


def code_mode_exec(body):
    """Codex "code mode" (its default OpenAI models): no top-level tools, an
    input item of type additional_tools declares a custom tool "exec" that
    runs JavaScript, whose global `tools` object holds exec_command."""
    items = body.get("input")
    if not isinstance(items, list):
        return None
    for it in items:
        if not (isinstance(it, dict) and it.get("type") == "additional_tools"):
            continue
        stack = list(it.get("tools") or [])
        while stack:
            t = stack.pop()
            if not isinstance(t, dict):
                continue
            stack.extend(t.get("tools") or [])
            if (t.get("type") == "custom" and t.get("name") == "exec"
                    and "exec_command" in (t.get("description") or "")):
                return ("exec", {}, "code_mode")
    return None


def code_mode_source(command):
    return ("const r = await tools.exec_command({cmd: %s});\n"
            "text(typeof r === \"string\" ? r : (r.output ?? JSON.stringify(r)));\n"
            % json.dumps(command))


def find_shell_tool(api, body):
    if api == "responses":
        cm = code_mode_exec(body)
        if cm:
            return cm
    tools = tool_list(api, body)
    by_name = {n: (n, s, k) for n, s, k in tools if n}
    for n in SHELL_TOOL_NAMES:
        if n in by_name:
            return by_name[n]
    for n, s, k in tools:  # Responses API built-in local_shell
        if k == "local_shell":
            return (n, s, k)
    return None


def shell_args(schema, command, workdir=None, kind=None):
    """Arguments for a shell tool call, shaped after the tool's own schema."""
    if kind == "code_mode":
        return {"input": code_mode_source(command)}
    props = _props(schema)
    args = {}
    if "command" in props:
        ctype = props["command"].get("type")
        if ctype == "array":
            args["command"] = ["bash", "-lc", command]
        else:
            args["command"] = command
    elif "cmd" in props:
        args["cmd"] = command
    else:
        args["command"] = command
    if "description" in props:
        args["description"] = "Run the requested command"
    if "timeout" in props and props["timeout"].get("type") in ("number", "integer"):
        # Claude/opencode take milliseconds: give them a generous bound.
        args["timeout"] = 120000
    if "timeout_ms" in props:
        args["timeout_ms"] = 120000
    if "workdir" in props and workdir:
        args["workdir"] = workdir
    return args


# ------------------------------------------------------------ tool results

def _text_of(content):
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for c in content:
            if isinstance(c, str):
                parts.append(c)
            elif isinstance(c, dict):
                if "text" in c and isinstance(c["text"], str):
                    parts.append(c["text"])
                elif "content" in c:
                    parts.append(_text_of(c["content"]))
                elif "output" in c:
                    parts.append(_text_of(c["output"]))
        return "".join(parts)
    if isinstance(content, dict):
        for k in ("text", "output", "content", "result", "error"):
            if k in content:
                v = content[k]
                return v if isinstance(v, str) else json.dumps(v)
        return json.dumps(content)
    return str(content)


def tool_results(api, body):
    """[(call_id, text, is_error)] of the tool results in the newest message.

    is_error is None when the API does not say."""
    res = []
    if api == "anthropic":
        msgs = body.get("messages") or []
        if msgs and msgs[-1].get("role") == "user" and isinstance(msgs[-1].get("content"), list):
            for c in msgs[-1]["content"]:
                if isinstance(c, dict) and c.get("type") == "tool_result":
                    res.append((c.get("tool_use_id"), _text_of(c.get("content")),
                                c.get("is_error")))
    elif api == "responses":
        items = body.get("input") or []
        if isinstance(items, list):
            for it in items:
                if isinstance(it, dict) and it.get("type") in (
                        "function_call_output", "custom_tool_call_output", "local_shell_call_output"):
                    res.append((it.get("call_id"), _text_of(it.get("output")), None))
    elif api == "chat":
        msgs = body.get("messages") or []
        # tool messages after the last assistant message
        tail = []
        for m in reversed(msgs):
            if m.get("role") == "tool":
                tail.append((m.get("tool_call_id"), _text_of(m.get("content")), None))
            else:
                break
        res = list(reversed(tail))
    elif api == "gemini":
        contents = body.get("contents") or []
        if contents:
            for p in contents[-1].get("parts") or []:
                fr = p.get("functionResponse") if isinstance(p, dict) else None
                if fr:
                    r = fr.get("response")
                    err = r.get("error") if isinstance(r, dict) else None
                    res.append((fr.get("id") or fr.get("name"), _text_of(r),
                                True if err else None))
    return res


def all_tool_result_ids(api, body):
    """Every tool-result id anywhere in the conversation (to spot our call)."""
    ids = set()
    if api == "anthropic":
        for m in body.get("messages") or []:
            if isinstance(m.get("content"), list):
                for c in m["content"]:
                    if isinstance(c, dict) and c.get("type") == "tool_result":
                        ids.add(c.get("tool_use_id"))
    elif api == "responses":
        for it in body.get("input") or []:
            if isinstance(it, dict) and it.get("type", "").endswith("_output"):
                ids.add(it.get("call_id"))
    elif api == "chat":
        for m in body.get("messages") or []:
            if m.get("role") == "tool":
                ids.add(m.get("tool_call_id"))
    elif api == "gemini":
        for c in body.get("contents") or []:
            for p in c.get("parts") or []:
                if isinstance(p, dict) and p.get("functionResponse"):
                    fr = p["functionResponse"]
                    ids.add(fr.get("id") or fr.get("name"))
    return ids


# ---------------------------------------------------------------- the script

class Script:
    def __init__(self, command, final_text, result_path, workdir=None):
        self.command = command
        self.final_text = final_text
        self.result_path = result_path
        self.workdir = workdir
        self.lock = threading.Lock()
        self.call_id = None
        self.tool_name = None
        self.tool_call_sent_at = None
        self.final_sent = False
        self.final_at = None
        self.repeats = 0
        self.main = []
        self.aux = []
        self.tool_result = None
        self.tool_result_is_error = None
        self.latency = None
        self.write()

    def decide(self, api, path, body):
        """Return (kind, info) where kind is tool_call|final|aux."""
        t = now()
        with self.lock:
            shell = find_shell_tool(api, body)
            results = tool_results(api, body)
            ours = None
            if self.call_id is not None:
                for res in results:
                    if res[0] in (self.call_id, self.tool_name) or res[0] is None:
                        ours = res
                        break
                if ours is None and results and shell is not None:
                    # The agent renamed the id: take the first result.
                    ours = results[0]
            if ours is not None:
                rec = {"t": t, "path": path, "api": api, "kind": "final",
                       "has_tool_result": True, "tool_result": ours[1], "is_error": ours[2],
                       "latency_s": (t - self.tool_call_sent_at) if self.tool_call_sent_at else None}
                if self.tool_result is None:
                    self.tool_result = ours[1]
                    self.tool_result_is_error = ours[2]
                    self.latency = rec["latency_s"]
                self.main.append(rec)
                self.write_locked()
                return "final", rec
            if shell is not None:
                if self.call_id is None:
                    self.tool_name = shell[0]
                    self.call_id = "call_" + uuid.uuid4().hex[:24]
                    if api == "anthropic":
                        self.call_id = "toolu_" + uuid.uuid4().hex[:24]
                    rec = {"t": t, "path": path, "api": api, "kind": "tool_call",
                           "has_tool_result": False, "tool_result": None, "latency_s": None,
                           "tool_name": shell[0],
                           "arguments": shell_args(shell[1], self.command, self.workdir, shell[2])}
                    self.main.append(rec)
                    self.write_locked()
                    return "tool_call", dict(rec, call_id=self.call_id, tool_kind=shell[2])
                # Tools offered again without our result.
                ids = all_tool_result_ids(api, body)
                again = not (self.call_id in ids or self.final_sent)
                if again:
                    self.repeats += 1
                    again = self.repeats <= MAX_REPEATS
                rec = {"t": t, "path": path, "api": api,
                       "kind": "tool_call" if again else "final",
                       "has_tool_result": False, "tool_result": None, "latency_s": None}
                self.main.append(rec)
                self.write_locked()
                if not again:
                    # A new turn after our call was answered, or an agent
                    # that keeps asking: end the conversation.
                    return "final", rec
                # A retry of the first request (the agent did not take our
                # call, e.g. a broken stream): send the same call again.
                return "tool_call", dict(rec, call_id=self.call_id, tool_kind=shell[2],
                                         tool_name=self.tool_name,
                                         arguments=shell_args(shell[1], self.command, self.workdir, shell[2]))
            self.aux.append({"t": t, "path": path, "api": api})
            return "aux", None

    def tool_call_sent(self):
        with self.lock:
            self.tool_call_sent_at = now()
            self.write_locked()

    def final_done(self):
        with self.lock:
            if not self.final_sent:
                self.final_at = now()
            self.final_sent = True
            self.write_locked()

    def write(self):
        with self.lock:
            self.write_locked()

    def write_locked(self):
        if not self.result_path:
            return
        data = {
            "command": self.command,
            "tool_name": self.tool_name,
            "call_id": self.call_id,
            "tool_call_sent_at": self.tool_call_sent_at,
            "final_sent": self.final_sent,
            "final_at": self.final_at,
            "tool_result": self.tool_result,
            "tool_result_is_error": self.tool_result_is_error,
            "latency_s": self.latency,
            "requests": self.main,
            "aux": self.aux,
        }
        tmp = self.result_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1)
        os.replace(tmp, self.result_path)


# ----------------------------------------------------------- wire formats

def sse(handler, events, anthropic_style=False):
    """Send a list of (event_name, data_dict) as a server-sent event stream."""
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.send_header("Cache-Control", "no-cache")
    handler.send_header("Connection", "close")
    handler.end_headers()
    for name, data in events:
        chunk = ""
        if name:
            chunk += "event: %s\n" % name
        chunk += "data: %s\n\n" % (data if isinstance(data, str) else json.dumps(data))
        handler.wfile.write(chunk.encode())
        handler.wfile.flush()
    handler.close_connection = True


def usage_anthropic():
    return {"input_tokens": 10, "output_tokens": 5,
            "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}


def anthropic_message(model, content, stop_reason):
    return {"id": "msg_" + uuid.uuid4().hex[:24], "type": "message", "role": "assistant",
            "model": model, "content": content, "stop_reason": stop_reason,
            "stop_sequence": None, "usage": usage_anthropic()}


def anthropic_events(model, block, stop_reason):
    msg = anthropic_message(model, [], None)
    msg["usage"] = dict(usage_anthropic(), output_tokens=1)
    ev = [("message_start", {"type": "message_start", "message": msg})]
    if block["type"] == "text":
        ev.append(("content_block_start", {"type": "content_block_start", "index": 0,
                                           "content_block": {"type": "text", "text": ""}}))
        ev.append(("content_block_delta", {"type": "content_block_delta", "index": 0,
                                           "delta": {"type": "text_delta", "text": block["text"]}}))
    else:
        ev.append(("content_block_start", {"type": "content_block_start", "index": 0,
                                           "content_block": {"type": "tool_use", "id": block["id"],
                                                             "name": block["name"], "input": {}}}))
        ev.append(("content_block_delta", {"type": "content_block_delta", "index": 0,
                                           "delta": {"type": "input_json_delta",
                                                     "partial_json": json.dumps(block["input"])}}))
    ev.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
    ev.append(("message_delta", {"type": "message_delta",
                                 "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                                 "usage": {"output_tokens": 5}}))
    ev.append(("message_stop", {"type": "message_stop"}))
    return ev


def responses_events(model, items):
    rid = "resp_" + uuid.uuid4().hex[:24]
    base = {"id": rid, "object": "response", "created_at": int(now()), "model": model,
            "status": "in_progress", "output": []}
    ev = [("response.created", {"type": "response.created", "sequence_number": 0, "response": base})]
    seq = 1
    for i, item in enumerate(items):
        ev.append(("response.output_item.added", {"type": "response.output_item.added",
                                                  "sequence_number": seq, "output_index": i,
                                                  "item": item}))
        seq += 1
        if item["type"] == "message":
            text = item["content"][0]["text"]
            ev.append(("response.output_text.delta", {"type": "response.output_text.delta",
                                                      "sequence_number": seq, "item_id": item["id"],
                                                      "output_index": i, "content_index": 0,
                                                      "delta": text}))
            seq += 1
        ev.append(("response.output_item.done", {"type": "response.output_item.done",
                                                 "sequence_number": seq, "output_index": i,
                                                 "item": item}))
        seq += 1
    done = dict(base, status="completed", output=items,
                usage={"input_tokens": 10, "input_tokens_details": {"cached_tokens": 0},
                       "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 0},
                       "total_tokens": 15})
    ev.append(("response.completed", {"type": "response.completed", "sequence_number": seq,
                                      "response": done}))
    return ev


def responses_text_item(text):
    return {"type": "message", "id": "msg_" + uuid.uuid4().hex[:24], "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}


def chat_chunks(model, delta_list, finish):
    cid = "chatcmpl-" + uuid.uuid4().hex[:24]
    created = int(now())
    out = []
    for d in delta_list:
        out.append({"id": cid, "object": "chat.completion.chunk", "created": created,
                    "model": model, "choices": [{"index": 0, "delta": d, "finish_reason": None}]})
    out.append({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    out.append({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 5,
                                         "total_tokens": 15}})
    return out


def gemini_response(parts, model):
    return {"candidates": [{"content": {"role": "model", "parts": parts},
                            "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5,
                              "totalTokenCount": 15},
            "modelVersion": model}


# ---------------------------------------------------------------- handler

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ks-model/1"

    def log_message(self, fmt, *args):  # silence default stderr logging
        pass

    def _log(self, line):
        srv = self.server
        with srv.log_lock:
            if srv.log_file:
                srv.log_file.write("%.3f %s\n" % (now(), line))
                srv.log_file.flush()

    def _read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            raw = self._read_chunked()
        enc = (self.headers.get("Content-Encoding") or "").lower()
        if enc == "gzip":
            import gzip
            raw = gzip.decompress(raw)
        elif enc == "deflate":
            import zlib
            raw = zlib.decompress(raw)
        elif enc == "br" or enc == "zstd":
            self._log("  unsupported content-encoding %s" % enc)
        return raw

    def _read_chunked(self):
        data = b""
        while True:
            line = self.rfile.readline().strip()
            size = int(line.split(b";")[0], 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return data
            data += self.rfile.read(size)
            self.rfile.readline()

    def _json(self, obj, code=200):
        raw = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _dump(self, method, body_raw):
        d = self.server.dump_dir
        if not d:
            return
        with self.server.log_lock:
            self.server.dump_seq += 1
            seq = self.server.dump_seq
        name = "%03d_%s_%s.json" % (seq, method, re.sub(r"[^A-Za-z0-9]+", "_", self.path)[:60])
        with open(os.path.join(d, name), "wb") as f:
            f.write(("// %s %s\n" % (method, self.path)).encode())
            f.write(("// " + json.dumps(dict(self.headers.items())) + "\n").encode())
            f.write(body_raw)

    def do_HEAD(self):
        self._log("HEAD %s" % self.path)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        self._log("GET %s" % self.path)
        self._dump("GET", b"")
        path = self.path.split("?")[0]
        if path.endswith("/models"):
            if "v1beta" in path:
                return self._json({"models": [{"name": "models/gemini-2.5-pro",
                                               "supportedGenerationMethods": ["generateContent"]}]})
            return self._json({"object": "list", "data": [
                {"id": self.server.model_name, "object": "model", "created": 0, "owned_by": "test",
                 "type": "model", "display_name": self.server.model_name}],
                "has_more": False, "first_id": self.server.model_name,
                "last_id": self.server.model_name, "models": []})
        return self._json({})

    def do_POST(self):
        raw = self._read_body()
        self._dump("POST", raw)
        path = self.path.split("?")[0]
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        api = None
        if path.endswith("/messages/count_tokens"):
            self._log("POST %s (count_tokens)" % self.path)
            return self._json({"input_tokens": 100})
        if path.endswith(":countTokens"):
            self._log("POST %s (countTokens)" % self.path)
            return self._json({"totalTokens": 100})
        if path.endswith("/messages"):
            api = "anthropic"
        elif path.endswith("/responses"):
            api = "responses"
        elif path.endswith("/chat/completions"):
            api = "chat"
        elif ":streamGenerateContent" in path or ":generateContent" in path:
            api = "gemini"
        if api is None:
            self._log("POST %s (unknown, answered {})" % self.path)
            return self._json({})
        kind, info = self.server.script.decide(api, path, body)
        self._log("POST %s api=%s kind=%s stream=%s tools=%d" % (
            self.path, api, kind, body.get("stream"), len(tool_list(api, body))))
        if kind == "final":
            self.server.script.final_done()
        getattr(self, "answer_" + api)(body, kind, info)
        if kind == "tool_call":
            self.server.script.tool_call_sent()

    # -- per API -----------------------------------------------------------

    def _aux_text(self, body):
        return self.server.aux_text

    def answer_anthropic(self, body, kind, info):
        model = body.get("model") or self.server.model_name
        if kind == "tool_call":
            block = {"type": "tool_use", "id": info["call_id"], "name": info["tool_name"],
                     "input": info["arguments"]}
            stop = "tool_use"
        else:
            block = {"type": "text",
                     "text": self.server.script.final_text if kind == "final" else self._aux_text(body)}
            stop = "end_turn"
        if body.get("stream"):
            return sse(self, anthropic_events(model, block, stop))
        return self._json(anthropic_message(model, [block], stop))

    def answer_responses(self, body, kind, info):
        model = body.get("model") or self.server.model_name
        if kind == "tool_call":
            if info.get("tool_kind") == "code_mode":
                item = {"type": "custom_tool_call", "id": "ctc_" + uuid.uuid4().hex[:20],
                        "status": "completed", "call_id": info["call_id"], "name": "exec",
                        "input": code_mode_source(self.server.script.command)}
            elif info.get("tool_kind") == "local_shell":
                item = {"type": "local_shell_call", "id": "lsh_" + uuid.uuid4().hex[:20],
                        "call_id": info["call_id"], "status": "completed",
                        "action": {"type": "exec", "command": ["bash", "-lc", self.server.script.command],
                                   "timeout_ms": 120000, "env": {}}}
            else:
                item = {"type": "function_call", "id": "fc_" + uuid.uuid4().hex[:20],
                        "status": "completed", "call_id": info["call_id"],
                        "name": info["tool_name"], "arguments": json.dumps(info["arguments"])}
            items = [item]
        else:
            text = self.server.script.final_text if kind == "final" else self._aux_text(body)
            items = [responses_text_item(text)]
        if body.get("stream", False):
            return sse(self, responses_events(model, items))
        return self._json({"id": "resp_" + uuid.uuid4().hex[:24], "object": "response",
                           "status": "completed", "model": model, "output": items,
                           "usage": {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}})

    def answer_chat(self, body, kind, info):
        model = body.get("model") or self.server.model_name
        if kind == "tool_call":
            call = {"id": info["call_id"], "type": "function",
                    "function": {"name": info["tool_name"], "arguments": json.dumps(info["arguments"])}}
            message = {"role": "assistant", "content": None, "tool_calls": [call]}
            deltas = [{"role": "assistant", "content": None,
                       "tool_calls": [dict(call, index=0)]}]
            finish = "tool_calls"
        else:
            text = self.server.script.final_text if kind == "final" else self._aux_text(body)
            message = {"role": "assistant", "content": text}
            deltas = [{"role": "assistant", "content": ""}, {"content": text}]
            finish = "stop"
        if body.get("stream"):
            chunks = chat_chunks(model, deltas, finish)
            return sse(self, [(None, c) for c in chunks] + [(None, "[DONE]")])
        return self._json({"id": "chatcmpl-" + uuid.uuid4().hex[:24], "object": "chat.completion",
                           "created": int(now()), "model": model,
                           "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                           "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})

    def answer_gemini(self, body, kind, info):
        m = re.search(r"/models/([^:/]+):", self.path)
        model = m.group(1) if m else self.server.model_name
        if kind == "tool_call":
            fc = {"name": info["tool_name"], "args": info["arguments"], "id": info["call_id"]}
            parts = [{"functionCall": fc}]
        else:
            gc = body.get("generationConfig") or {}
            if kind == "aux" and gc.get("responseMimeType") == "application/json":
                text = self._aux_json(gc)
            else:
                text = self.server.script.final_text if kind == "final" else self._aux_text(body)
            parts = [{"text": text}]
        resp = gemini_response(parts, model)
        if ":streamGenerateContent" in self.path:
            if "alt=sse" in self.path:
                return sse(self, [(None, resp)])
            return self._json([resp])
        return self._json(resp)

    def _aux_json(self, gc):
        """Side requests that ask for JSON (e.g. routing, next-speaker)."""
        schema = gc.get("responseJsonSchema") or gc.get("responseSchema") or {}
        props = _props(schema)
        out = {}
        for k, v in props.items():
            t = (v or {}).get("type", "string")
            t = t.lower() if isinstance(t, str) else "string"
            enum = (v or {}).get("enum")
            if enum:
                out[k] = enum[0]
            elif t == "boolean":
                out[k] = False
            elif t in ("number", "integer"):
                out[k] = v.get("minimum", 1) if isinstance(v, dict) else 1
            elif t == "array":
                out[k] = []
            elif t == "object":
                out[k] = {}
            else:
                out[k] = "user" if k == "next_speaker" else "ok"
        return json.dumps(out)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    log_file = None

    def server_close(self):
        super().server_close()
        if self.log_file:
            self.log_file.close()
            self.log_file = None


def make_server(command, result_path, port=0, log_path=None, dump_dir=None,
                final_text="done", aux_text="ok", model_name="test-model", workdir=None):
    srv = Server(("127.0.0.1", port), Handler)
    srv.script = Script(command, final_text, result_path, workdir)
    srv.log_lock = threading.Lock()
    srv.log_file = open(log_path, "a") if log_path else None
    srv.dump_dir = dump_dir
    srv.dump_seq = 0
    srv.aux_text = aux_text
    srv.model_name = model_name
    if dump_dir:
        os.makedirs(dump_dir, exist_ok=True)
    return srv


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--command", required=True, help="shell command the agent is told to run")
    ap.add_argument("--result", required=True, help="JSON result file, rewritten as requests come")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", help="write the chosen port here")
    ap.add_argument("--log", help="append one line per request here")
    ap.add_argument("--dump-dir", help="save every request (headers and body) in this folder")
    ap.add_argument("--final-text", default="done")
    ap.add_argument("--aux-text", default="ok", help="answer to side requests (titles...)")
    ap.add_argument("--model-name", default="test-model")
    ap.add_argument("--workdir", help="workdir argument for tools that take one")
    a = ap.parse_args()
    srv = make_server(a.command, a.result, a.port, a.log, a.dump_dir, a.final_text, a.aux_text,
                      a.model_name, a.workdir)
    port = srv.server_address[1]
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, a.port_file)
    print("PORT %d" % port, flush=True)

    def stop(signum, frame):
        threading.Thread(target=srv.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        srv.serve_forever(poll_interval=0.1)
    finally:
        srv.server_close()


if __name__ == "__main__":
    main()
