//! sba-web started by a test, on loopback in the test's own namespace (it reads files only:
//! the database and the status snapshots the services write), and what the tests read from it:
//! /metrics through curl, parsed by a real Prometheus text-format parser.
use crate::bins::bin;
use crate::netns::KillOnDrop;
use crate::ports::free_port;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const ADMIN_PASSWORD: &str = "branch-admin-pw";

pub struct Web {
    pub addr: SocketAddr,
    pub base: String,
    pub config: PathBuf,
    _child: KillOnDrop,
}

impl Web {
    /// Sets the admin password in `db` and starts sba-web over HTTPS (a certificate generated
    /// in `dir/tls`) on a free loopback port.
    pub fn start(dir: &Path, db: &Path) -> Web {
        let mut passwd = Command::new(bin("sbactl"))
            .arg("--db")
            .arg(db)
            .args(["admin", "passwd"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("sbactl");
        passwd.stdin.take().expect("stdin").write_all(format!("{ADMIN_PASSWORD}\n").as_bytes()).expect("password");
        assert!(passwd.wait().expect("sbactl ran").success(), "sbactl admin passwd failed");
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let config = dir.join("web.toml");
        std::fs::write(
            &config,
            format!(
                "[registrar]\ndb = \"{}\"\n\n[gateway]\nstatus_file = \"{}.gateway.json\"\n\n[web]\nlisten = \"{addr}\"\ntls = true\ntls_dir = \"{}\"\nnames = [\"127.0.0.1\"]\n",
                db.display(),
                db.display(),
                dir.join("tls").display()
            ),
        )
        .expect("write web config");
        let log = std::fs::File::create(dir.join("web.log")).expect("web log");
        let child = Command::new(bin("sba-web"))
            .arg("--config")
            .arg(&config)
            .env("HOLDFAST_LOG_STDERR", "1")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sba-web");
        let web = Web { addr, base: format!("https://{addr}"), config, _child: KillOnDrop(child) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "sba-web did not listen on {addr}:\n{}", web.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        web
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.config.with_file_name("web.log")).unwrap_or_default()
    }

    /// GET `path` with curl (certificate not checked: it is the appliance's self-signed one):
    /// (status, content type, body).
    pub fn get(&self, path: &str) -> (u16, String, String) {
        let out = Command::new("curl")
            .args(["-sk", "--max-time", "10", "-w", "\n%{http_code} %{content_type}"])
            .arg(format!("{}{path}", self.base))
            .output()
            .expect("run curl (apt-get install curl)");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, tail) = text.rsplit_once('\n').unwrap_or(("", &text));
        let (code, ctype) = tail.split_once(' ').unwrap_or((tail, ""));
        (code.parse().unwrap_or(0), ctype.to_string(), body.to_string())
    }

    /// One login with `password` from source address `from` (curl, its own cookie jar): the
    /// status of the POST (303 logged in, 401 wrong, 429 throttled).
    pub fn login_from(&self, from: &str, password: &str, jar: &Path) -> u16 {
        let curl = |args: &[&str]| {
            let out = Command::new("curl")
                .args(["-sk", "--max-time", "10", "--interface", from, "-c"])
                .arg(jar)
                .arg("-b")
                .arg(jar)
                .args(args)
                .output()
                .expect("run curl");
            String::from_utf8_lossy(&out.stdout).to_string()
        };
        let page = curl(&[&format!("{}/login", self.base)]);
        let token = page.split("name=\"form\" value=\"").nth(1).and_then(|t| t.split('"').next()).unwrap_or_default().to_string();
        let status = curl(&["-o", "/dev/null", "-w", "%{http_code}", "--data-urlencode", &format!("form={token}"), "--data-urlencode", &format!("password={password}"), &format!("{}/login", self.base)]);
        status.trim().parse().unwrap_or(0)
    }

    /// /metrics, parsed.
    pub fn metrics(&self) -> prometheus_parse::Scrape {
        let (status, ctype, body) = self.get("/metrics");
        assert_eq!(status, 200, "/metrics: {body}");
        assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
        parse(&body)
    }
}

/// A /metrics body, parsed as the Prometheus text format.
pub fn parse(body: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).expect("the Prometheus text format")
}

/// The value of `name` whose labels include `labels` (None when absent).
pub fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .and_then(|s| match &s.value {
            prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => Some(*v),
            prometheus_parse::Value::Histogram(h) => h.iter().map(|b| b.count).reduce(f64::max),
            _ => None,
        })
}
