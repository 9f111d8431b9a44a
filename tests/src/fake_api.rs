//! A scripted stand-in for the Anthropic Messages API on 127.0.0.1, so that the real Claude Code
//! client runs offline (`ANTHROPIC_BASE_URL`). Each conversation request (one that offers tools)
//! is answered with the next turn of the script, streamed as server-sent events the way the API
//! streams them; the turn is chosen by how many assistant messages the request already holds, so
//! retries and extra requests cannot shift it. Requests that offer no tools (titles, summaries)
//! get a short text. Every request is kept, raw, for the test to inspect.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

/// One answer of the model.
#[derive(Debug, Clone)]
pub enum Turn {
    /// Calls a tool (`stop_reason: tool_use`).
    Tool { name: String, input: Value },
    /// Says this and ends the turn.
    Text(String),
}

impl Turn {
    pub fn bash(command: &str) -> Turn {
        Turn::Tool { name: "Bash".into(), input: json!({"command": command, "description": "run it"}) }
    }

    pub fn tool(name: &str, input: Value) -> Turn {
        Turn::Tool { name: name.into(), input }
    }

    pub fn text(text: &str) -> Turn {
        Turn::Text(text.into())
    }
}

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// The request line, headers and body, as bytes on the wire (after de-chunking).
    pub raw: Vec<u8>,
    pub body: Value,
}

impl Received {
    /// Whether this is a turn of the conversation (it offers tools).
    pub fn is_conversation(&self) -> bool {
        self.body["tools"].as_array().is_some_and(|t| !t.is_empty())
    }

    /// The whole conversation as text, for looking for what reached the model.
    pub fn messages_text(&self) -> String {
        self.body["messages"].to_string()
    }
}

/// A running fake; it serves until the process ends (the listener thread is detached).
pub struct FakeApi {
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<Vec<Turn>>>,
}

impl FakeApi {
    pub fn start(script: Vec<Turn>) -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake API");
        let port = listener.local_addr().expect("local addr").port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script));
        let (kept, turns) = (Arc::clone(&received), Arc::clone(&script));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (kept, turns) = (Arc::clone(&kept), Arc::clone(&turns));
                std::thread::spawn(move || serve_connection(stream, &turns, &kept));
            }
        });
        FakeApi { port, received, script }
    }

    /// What the model does from now on (a test that must prepare files first).
    pub fn set_script(&self, script: Vec<Turn>) {
        if let Ok(mut s) = self.script.lock() {
            *s = script;
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// The conversation requests, in arrival order.
    pub fn conversation(&self) -> Vec<Received> {
        self.received().into_iter().filter(Received::is_conversation).collect()
    }
}

fn serve_connection(stream: TcpStream, script: &Mutex<Vec<Turn>>, kept: &Mutex<Vec<Received>>) {
    let Ok(mut writer) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream);
    // Keep-alive: one request after another until the client closes.
    while let Some(request) = read_request(&mut reader) {
        let turns = script.lock().map(|s| s.clone()).unwrap_or_default();
        let response = respond(&request, &turns);
        if let Ok(mut k) = kept.lock() {
            k.push(request);
        }
        if writer.write_all(&response).and_then(|()| writer.flush()).is_err() {
            return;
        }
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Received> {
    let mut head = Vec::new();
    loop {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line).ok()? == 0 {
            return None;
        }
        let end = line == b"\r\n" || line == b"\n";
        head.extend_from_slice(&line);
        if end {
            break;
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.lines();
    let mut first = lines.next()?.split_whitespace();
    let (method, path) = (first.next()?.to_owned(), first.next()?.to_owned());
    let header = |name: &str| {
        text.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    };
    let mut body = Vec::new();
    if let Some(len) = header("content-length").and_then(|l| l.parse::<usize>().ok()) {
        body.resize(len, 0);
        reader.read_exact(&mut body).ok()?;
    } else if header("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    let mut raw = head;
    raw.extend_from_slice(&body);
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Some(Received { method, path, raw, body })
}

fn respond(request: &Received, script: &[Turn]) -> Vec<u8> {
    if request.method != "POST" || !request.path.starts_with("/v1/messages") {
        return http(200, "application/json", b"{}");
    }
    if request.path.starts_with("/v1/messages/count_tokens") {
        return http(200, "application/json", br#"{"input_tokens": 100}"#);
    }
    let turn = if request.is_conversation() {
        let answered = request.body["messages"].as_array().map_or(0, |m| m.iter().filter(|m| m["role"] == "assistant").count());
        script.get(answered).cloned().unwrap_or_else(|| Turn::text("Done."))
    } else {
        Turn::text("A title")
    };
    // Claude Code merges assistant messages that share an id: every answer gets its own.
    static ANSWERS: AtomicU64 = AtomicU64::new(1);
    let n = ANSWERS.fetch_add(1, Ordering::Relaxed);
    let message_id = format!("msg_fake_{n:06}");
    let model = request.body["model"].as_str().unwrap_or("claude-fake").to_owned();
    let (block, stop_reason) = match &turn {
        Turn::Text(t) => (json!({"type": "text", "text": t}), "end_turn"),
        Turn::Tool { name, input } => {
            let id = format!("toolu_fake_{n:06}");
            (json!({"type": "tool_use", "id": id, "name": name, "input": input}), "tool_use")
        }
    };
    if request.body["stream"] != true {
        let message = json!({
            "id": message_id, "type": "message", "role": "assistant", "model": model, "content": [block],
            "stop_reason": stop_reason, "stop_sequence": null, "usage": {"input_tokens": 10, "output_tokens": 5}
        });
        return http(200, "application/json", message.to_string().as_bytes());
    }
    let (start, delta) = match &turn {
        Turn::Text(t) => (json!({"type": "text", "text": ""}), json!({"type": "text_delta", "text": t})),
        Turn::Tool { input, .. } => {
            let mut start = block.clone();
            start["input"] = json!({});
            (start, json!({"type": "input_json_delta", "partial_json": input.to_string()}))
        }
    };
    let events = [
        json!({"type": "message_start", "message": {"id": message_id, "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 10, "output_tokens": 1}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": start}),
        json!({"type": "content_block_delta", "index": 0, "delta": delta}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null}, "usage": {"output_tokens": 5}}),
        json!({"type": "message_stop"}),
    ];
    let mut sse = String::new();
    for e in events {
        sse.push_str(&format!("event: {}\ndata: {e}\n\n", e["type"].as_str().unwrap_or("")));
    }
    http(200, "text/event-stream", sse.as_bytes())
}

fn http(status: u16, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out =
        format!("HTTP/1.1 {status} OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nrequest-id: req_fake\r\n\r\n", body.len())
            .into_bytes();
    out.extend_from_slice(body);
    out
}
