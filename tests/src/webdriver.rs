//! Headless Chromium driven through Debian's chromedriver over the W3C WebDriver protocol.
//!
//! The client is the handful of WebDriver commands the web tests use (new session, navigate,
//! find, type, click, text, run a script, screenshot), JSON over HTTP/1.1 on loopback, so the
//! tests crate carries no second HTTP stack and no browser-automation framework for six calls.
use crate::netns::KillOnDrop;
use crate::ports::free_port;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

pub struct Browser {
    port: u16,
    session: String,
    _driver: KillOnDrop,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with an empty profile in `dir`, downloads
    /// going to `dir/downloads`; self-signed certificates accepted (the appliance's own).
    pub fn start(dir: &Path) -> Browser {
        // Chromium writes its DevTools port under the canonical profile path; with `..` in it
        // chromedriver looks elsewhere and gives up.
        let dir = &dir.canonicalize().expect("scratch directory");
        let port = free_port();
        let log = std::fs::File::create(dir.join("chromedriver.log")).expect("chromedriver log");
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start chromedriver (apt-get install chromium chromium-driver)");
        let driver = KillOnDrop(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = dir.join("chromium-profile");
        let downloads = dir.join("downloads");
        std::fs::create_dir_all(&downloads).expect("downloads dir");
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--window-size=1280,900", format!("--user-data-dir={}", profile.display())],
                "prefs": { "download.default_directory": downloads.display().to_string(),
                           "download.prompt_for_download": false }
            }
        }}});
        let mut b = Browser { port, session: String::new(), _driver: driver };
        let v = b.call("POST", "/session", Some(caps));
        b.session = v["sessionId"].as_str().unwrap_or_else(|| panic!("no WebDriver session: {v}")).to_string();
        b
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to chromedriver");
        s.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.port,
            body.len()
        )
        .expect("send to chromedriver");
        // chromedriver keeps the connection open whatever the request says: read the head,
        // then exactly Content-Length bytes.
        let mut raw = Vec::new();
        let mut buf = [0u8; 65536];
        let (head_end, length) = loop {
            let n = s.read(&mut buf).expect("read from chromedriver");
            assert!(n > 0, "chromedriver closed the connection: {}", String::from_utf8_lossy(&raw));
            raw.extend_from_slice(&buf[..n]);
            if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..i]).to_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or_else(|| panic!("no Content-Length from chromedriver: {head}"));
                break (i + 4, length);
            }
        };
        while raw.len() < head_end + length {
            let n = s.read(&mut buf).expect("read from chromedriver");
            assert!(n > 0, "chromedriver closed the connection mid-answer");
            raw.extend_from_slice(&buf[..n]);
        }
        let body = &raw[head_end..head_end + length];
        let v: Value = serde_json::from_slice(body)
            .unwrap_or_else(|e| panic!("chromedriver said {:?}: {e}", String::from_utf8_lossy(body)));
        v["value"].clone()
    }

    fn session_call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    pub fn goto(&self, url: &str) {
        let v = self.session_call("POST", "/url", Some(json!({ "url": url })));
        assert!(v.is_null(), "navigating to {url}: {v}");
    }

    /// The first element matching `css`, if any.
    pub fn find(&self, css: &str) -> Option<String> {
        let v = self.session_call("POST", "/element", Some(json!({ "using": "css selector", "value": css })));
        // A found element is an object with one member, the W3C element reference; a miss is
        // an error object with several.
        match v.as_object() {
            Some(o) if o.len() == 1 => o.values().next().and_then(|e| e.as_str()).map(str::to_string),
            _ => None,
        }
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).unwrap_or_else(|| panic!("no {css}"));
        self.session_call("POST", &format!("/element/{e}/value"), Some(json!({ "text": text })));
    }

    pub fn click(&self, css: &str) {
        let e = self.find(css).unwrap_or_else(|| panic!("no {css}"));
        self.session_call("POST", &format!("/element/{e}/click"), Some(json!({})));
    }

    /// The visible text of the first element matching `css` ("" when there is none).
    pub fn text(&self, css: &str) -> String {
        match self.find(css) {
            Some(e) => self.session_call("GET", &format!("/element/{e}/text"), None).as_str().unwrap_or("").to_string(),
            None => String::new(),
        }
    }

    /// Runs an async script (its last argument is the callback) and returns what it passed.
    pub fn run_async(&self, script: &str) -> Value {
        self.session_call("POST", "/execute/async", Some(json!({ "script": script, "args": [] })))
    }

    pub fn current_url(&self) -> String {
        self.session_call("GET", "/url", None).as_str().unwrap_or("").to_string()
    }

    /// A PNG of the window, written to `path`.
    pub fn screenshot(&self, path: &Path) {
        let v = self.session_call("GET", "/screenshot", None);
        use base64::Engine;
        let png = base64::engine::general_purpose::STANDARD.decode(v.as_str().expect("screenshot data")).expect("base64 PNG");
        std::fs::write(path, png).expect("write screenshot");
    }

    /// Waits until `f` is true (the page refreshes itself every 2 s).
    pub fn wait(&self, what: &str, within: Duration, mut f: impl FnMut(&Browser) -> bool) {
        let deadline = Instant::now() + within;
        while !f(self) {
            assert!(Instant::now() < deadline, "{what} not seen within {within:?} on {}", self.current_url());
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.call("DELETE", &format!("/session/{}", self.session), None)));
        }
    }
}
