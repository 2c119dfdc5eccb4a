#!/usr/bin/env python3
"""Checks the scripted model server on its own, with no agent: for each API,
a main request gets the shell tool call, the request carrying the result gets
the final text, side requests leave the script alone.  Stdlib unittest:
python3 tests/agents/test_model_server.py"""

import json
import os
import shutil
import sys
import tempfile
import threading
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_server  # noqa: E402

CMD = "ls /nonexistent-dir-xyz; echo rc=$?"


def sse_events(raw):
    out = []
    for block in raw.decode().split("\n\n"):
        for line in block.split("\n"):
            if line.startswith("data: "):
                data = line[6:]
                out.append(data if data == "[DONE]" else json.loads(data))
    return out


class ServerCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.result = os.path.join(self.tmp, "r.json")
        self.srv = model_server.make_server(CMD, self.result, log_path=os.path.join(self.tmp, "log"))
        self.port = self.srv.server_address[1]
        self.th = threading.Thread(target=self.srv.serve_forever, kwargs={"poll_interval": 0.05})
        self.th.start()

    def tearDown(self):
        self.srv.shutdown()
        self.srv.server_close()
        self.th.join()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def post(self, path, body):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path),
                                     data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.read()

    def res(self):
        with open(self.result) as f:
            return json.load(f)

    def test_anthropic(self):
        tools = [{"name": "Read", "input_schema": {}},
                 {"name": "Bash", "input_schema": {"properties": {
                     "command": {"type": "string"}, "description": {"type": "string"},
                     "timeout": {"type": "number"}}}}]
        # a side request (no tools) does not consume the script
        ev = sse_events(self.post("/v1/messages", {"model": "m", "stream": True, "messages": [
            {"role": "user", "content": "title?"}]}))
        self.assertEqual(ev[2]["delta"]["text"], "ok")
        ev = sse_events(self.post("/v1/messages?beta=true", {"model": "m", "stream": True,
                                                             "tools": tools, "messages": [
                                                                 {"role": "user", "content": "go"}]}))
        start = ev[1]["content_block"]
        self.assertEqual(start["type"], "tool_use")
        self.assertEqual(start["name"], "Bash")
        self.assertEqual(json.loads(ev[2]["delta"]["partial_json"])["command"], CMD)
        self.assertEqual(ev[4]["delta"]["stop_reason"], "tool_use")
        self.assertFalse(self.res()["final_sent"])
        msgs = [{"role": "user", "content": "go"},
                {"role": "assistant", "content": [dict(start, input={"command": CMD})]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": start["id"],
                                              "content": "ls: cannot access\nrc=2",
                                              "is_error": False}]}]
        body = json.loads(self.post("/v1/messages", {"model": "m", "tools": tools,
                                                     "messages": msgs}))
        self.assertEqual(body["content"][0]["text"], "done")
        self.assertEqual(body["stop_reason"], "end_turn")
        r = self.res()
        self.assertTrue(r["final_sent"])
        self.assertEqual(r["tool_result"], "ls: cannot access\nrc=2")
        self.assertIsNotNone(r["latency_s"])
        self.assertEqual(len(r["aux"]), 1)
        self.assertEqual(json.loads(self.post("/v1/messages/count_tokens", {}))["input_tokens"], 100)

    def test_responses(self):
        tools = [{"type": "function", "name": "exec_command",
                  "parameters": {"properties": {"cmd": {"type": "string"}}}},
                 {"type": "web_search"}]
        ev = sse_events(self.post("/v1/responses", {"model": "m", "stream": True, "tools": tools,
                                                    "input": [{"type": "message", "role": "user",
                                                               "content": "go"}]}))
        item = [e for e in ev if e["type"] == "response.output_item.done"][0]["item"]
        self.assertEqual(item["type"], "function_call")
        self.assertEqual(json.loads(item["arguments"]), {"cmd": CMD})
        self.assertEqual(ev[-1]["type"], "response.completed")
        ev = sse_events(self.post("/v1/responses", {"model": "m", "stream": True, "tools": tools,
                                                    "input": [item, {"type": "function_call_output",
                                                                     "call_id": item["call_id"],
                                                                     "output": "rc=2"}]}))
        done = [e for e in ev if e["type"] == "response.output_item.done"][0]["item"]
        self.assertEqual(done["content"][0]["text"], "done")
        self.assertEqual(self.res()["tool_result"], "rc=2")

    def test_chat(self):
        tools = [{"type": "function", "function": {"name": "bash", "parameters": {
            "properties": {"command": {"type": "string"}, "description": {"type": "string"}}}}}]
        ev = sse_events(self.post("/v1/chat/completions", {"model": "m", "stream": True,
                                                           "tools": tools, "messages": [
                                                               {"role": "user", "content": "go"}]}))
        call = ev[0]["choices"][0]["delta"]["tool_calls"][0]
        self.assertEqual(call["function"]["name"], "bash")
        self.assertEqual(json.loads(call["function"]["arguments"])["command"], CMD)
        self.assertEqual(ev[1]["choices"][0]["finish_reason"], "tool_calls")
        self.assertEqual(ev[-1], "[DONE]")
        body = json.loads(self.post("/v1/chat/completions", {"model": "m", "tools": tools, "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call["id"], "content": "out\n"}]}))
        self.assertEqual(body["choices"][0]["message"]["content"], "done")
        self.assertEqual(self.res()["tool_result"], "out\n")

    def test_gemini(self):
        tools = [{"functionDeclarations": [
            {"name": "read_file", "parametersJsonSchema": {}},
            {"name": "run_shell_command", "parametersJsonSchema": {"properties": {
                "command": {"type": "string"}, "description": {"type": "string"}}}}]}]
        aux = json.loads(self.post("/v1beta/models/flash:generateContent", {
            "contents": [{"role": "user", "parts": [{"text": "x"}]}],
            "generationConfig": {"responseMimeType": "application/json", "responseJsonSchema": {
                "type": "OBJECT", "properties": {"complexity_score": {"type": "INTEGER"},
                                                 "complexity_reasoning": {"type": "STRING"}}}}}))
        self.assertEqual(json.loads(aux["candidates"][0]["content"]["parts"][0]["text"]),
                         {"complexity_score": 1, "complexity_reasoning": "ok"})
        path = "/v1beta/models/pro:streamGenerateContent?alt=sse"
        ev = sse_events(self.post(path, {"tools": tools, "contents": [
            {"role": "user", "parts": [{"text": "go"}]}]}))
        fc = ev[0]["candidates"][0]["content"]["parts"][0]["functionCall"]
        self.assertEqual(fc["name"], "run_shell_command")
        self.assertEqual(fc["args"]["command"], CMD)
        ev = sse_events(self.post(path, {"tools": tools, "contents": [
            {"role": "user", "parts": [{"text": "go"}]},
            {"role": "model", "parts": [{"functionCall": fc}]},
            {"role": "user", "parts": [{"functionResponse": {
                "id": fc["id"], "name": fc["name"], "response": {"output": "Output: rc=2"}}}]}]}))
        self.assertEqual(ev[0]["candidates"][0]["content"]["parts"][0]["text"], "done")
        self.assertEqual(self.res()["tool_result"], "Output: rc=2")

    def test_ignored_call_is_resent_then_given_up(self):
        tools = [{"type": "function", "function": {"name": "bash", "parameters": {}}}]
        body = {"model": "m", "tools": tools, "messages": [{"role": "user", "content": "go"}]}
        kinds = []
        for _ in range(4):
            r = json.loads(self.post("/v1/chat/completions", body))
            kinds.append(r["choices"][0]["finish_reason"])
        self.assertEqual(kinds, ["tool_calls", "tool_calls", "tool_calls", "stop"])
        self.assertIsNone(self.res()["tool_result"])


if __name__ == "__main__":
    unittest.main()
