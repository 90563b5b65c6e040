//! Kamailio 5.6 from Debian as the central site, inside the topology's `central` namespace:
//! a registrar with digest auth (auth_db on a SQLite subscriber table), usrloc writing through to
//! SQLite (db_mode 1) so the test reads the `location` table, RFC 3327 Path stored with each
//! binding and used by lookup, and a stateful proxy routing requests to registered users.
//!
//! With `KamailioTls` it also listens for SIP over TLS on port 5061 (its tls module, Debian
//! kamailio-tls-modules), presenting a given certificate and asking every TLS peer, in and out,
//! for a certificate from a given CA (mutual TLS).
//!
//! Users are matched by user part only (use_domain 0), so the AORs in `location()` are user names
//! and a call reaches `bob` whatever host its Request-URI names. INVITEs are not challenged: the
//! branch SBA is a trusted peer of the central site.
use crate::netns::{KillOnDrop, Topology, CENTRAL};
use holdfast_sip::message::{Message, Response};
use holdfast_sip::wire;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const SCHEMA_DIR: &str = "/usr/share/kamailio/db_sqlite";

/// Kamailio's TLS: the certificate it presents, and the CA bundle a peer's certificate must
/// chain to (it requires one of every peer).
pub struct KamailioTls<'a> {
    pub cert: &'a Path,
    pub key: &'a Path,
    pub ca: &'a Path,
}

pub struct Kamailio {
    /// Where Kamailio listens (UDP and TCP) in the central namespace.
    pub addr: SocketAddr,
    /// Where it listens for TLS, when it does.
    pub tls_addr: Option<SocketAddr>,
    pub domain: String,
    db: PathBuf,
    log: PathBuf,
    process: Running,
}

impl Kamailio {
    /// Writes the database and config under `dir`, starts Kamailio in `topo.central` and waits
    /// (at most 10 s) until it answers OPTIONS. `users` are (name, password) in realm `domain`.
    pub fn start(topo: &Topology, dir: &Path, domain: &str, users: &[(&str, &str)]) -> Kamailio {
        Kamailio::start_with(topo, dir, domain, users, None)
    }

    /// `start`, and with `tls` a TLS listener on port 5061 as well.
    pub fn start_with(topo: &Topology, dir: &Path, domain: &str, users: &[(&str, &str)], tls: Option<&KamailioTls>) -> Kamailio {
        let addr = SocketAddr::from((CENTRAL, 5060));
        let tls_addr = tls.map(|_| SocketAddr::from((CENTRAL, 5061)));
        let db = dir.join("kamailio.sqlite");
        let log = dir.join("kamailio.log");
        let run_dir = dir.join("kamailio-run");
        let _ = std::fs::remove_file(&db);
        sqlite(&db, &setup_sql(domain, users));
        let cfg = dir.join("kamailio.cfg");
        let mut text = config(addr, domain, &db);
        if let (Some(tls), Some(tls_addr)) = (tls, tls_addr) {
            let tls_cfg = dir.join("kamailio-tls.cfg");
            std::fs::write(&tls_cfg, tls_config(tls)).expect("write kamailio-tls.cfg");
            text = with_tls(&text, tls_addr, &tls_cfg);
        }
        std::fs::write(&cfg, text).expect("write kamailio.cfg");
        let mut cmd = topo.central.command("kamailio");
        let process = Running::spawn(&mut cmd, &cfg, &run_dir, &log);
        let probe = topo.central.udp_socket(SocketAddr::from((CENTRAL, 0))).expect("socket in central");
        let mut k = Kamailio { addr, tls_addr, domain: domain.to_string(), db, log, process };
        k.process.wait_answering(&probe, addr, &k.log);
        k
    }

    /// The bindings in the `location` table: (AOR, contact URI).
    pub fn location(&self) -> Vec<(String, String)> {
        self.rows("SELECT username, domain, contact FROM location ORDER BY id")
            .into_iter()
            .map(|row| (aor(&row), text(&row, "contact")))
            .collect()
    }

    /// The Path stored with each binding: (AOR, path), empty when the REGISTER carried none.
    pub fn paths(&self) -> Vec<(String, String)> {
        self.rows("SELECT username, domain, path FROM location ORDER BY id")
            .into_iter()
            .map(|row| (aor(&row), text(&row, "path")))
            .collect()
    }

    /// The socket each binding's REGISTER came in on: (AOR, "tls:10.77.2.2:5061").
    pub fn sockets(&self) -> Vec<(String, String)> {
        self.rows("SELECT username, domain, socket FROM location ORDER BY id")
            .into_iter()
            .map(|row| (aor(&row), text(&row, "socket")))
            .collect()
    }

    /// The CSeq of the last REGISTER Kamailio stored for `user` (how many refreshes reached it).
    pub fn cseq_of(&self, user: &str) -> Option<u64> {
        self.rows(&format!("SELECT cseq FROM location WHERE username = '{user}'"))
            .first()
            .and_then(|row| row.get("cseq").and_then(serde_json::Value::as_u64))
    }

    /// Everything Kamailio logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn rows(&self, query: &str) -> Vec<serde_json::Map<String, serde_json::Value>> {
        let out = Command::new("sqlite3")
            .args(["-readonly", "-json", "-cmd", ".timeout 2000"])
            .arg(&self.db)
            .arg(query)
            .output()
            .expect("run sqlite3 (apt-get install sqlite3)");
        assert!(out.status.success(), "sqlite3: {}", String::from_utf8_lossy(&out.stderr));
        if out.stdout.iter().all(u8::is_ascii_whitespace) {
            return Vec::new();
        }
        serde_json::from_slice(&out.stdout).expect("sqlite3 -json output")
    }
}

/// A kamailio process: stopped with SIGTERM when dropped, so the main process takes its
/// children down (KillOnDrop is the fallback).
pub(crate) struct Running(Option<KillOnDrop>);

impl Running {
    /// Starts `cmd` (kamailio, in the namespace it enters) on config `cfg`, in the foreground,
    /// its runtime files in `run_dir`, everything it logs into `log`.
    pub(crate) fn spawn(cmd: &mut Command, cfg: &Path, run_dir: &Path, log: &Path) -> Running {
        std::fs::create_dir_all(run_dir).expect("kamailio runtime dir");
        let log_file = std::fs::File::create(log).expect("kamailio log");
        let child = cmd
            .arg("-f")
            .arg(cfg)
            .args(["-DD", "-E", "-m", "32", "-M", "8", "-Y"])
            .arg(run_dir)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log fd"))
            .stderr(log_file)
            .spawn()
            .expect("start kamailio (apt-get install kamailio kamailio-sqlite-modules kamailio-tls-modules)");
        Running(Some(KillOnDrop(child)))
    }

    /// Waits (at most 10 s) until it answers an OPTIONS from `probe` on `addr`; panics with
    /// its `log` if it exits or stays silent.
    pub(crate) fn wait_answering(&mut self, probe: &UdpSocket, addr: SocketAddr, log: &Path) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if options_status(probe, addr, Duration::from_millis(200)) == Some(200) {
                return;
            }
            if let Some(Ok(Some(status))) = self.0.as_mut().map(|p| p.0.try_wait()) {
                panic!("kamailio exited ({status}):\n{}", std::fs::read_to_string(log).unwrap_or_default());
            }
        }
        panic!("kamailio did not answer OPTIONS on {addr} within 10 s:\n{}", std::fs::read_to_string(log).unwrap_or_default());
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let Some(mut process) = self.0.take() else { return };
        let _ = Command::new("kill").args(["-TERM", &process.0.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = process.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Sends one OPTIONS from `sock` to `to` and returns the final status, or None if none came
/// within `wait`.
pub fn options_status(sock: &UdpSocket, to: SocketAddr, wait: Duration) -> Option<u16> {
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let local = sock.local_addr().ok()?;
    let call_id = format!("opt-{}-{n}@{}", std::process::id(), local.ip());
    let msg = format!(
        "OPTIONS sip:{to} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-opt-{}-{n};rport\r\n\
         From: <sip:probe@{}>;tag=o{n}\r\nTo: <sip:{to}>\r\nCall-ID: {call_id}\r\n\
         CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        std::process::id(),
        local.ip()
    );
    sock.send_to(msg.as_bytes(), to).ok()?;
    let deadline = Instant::now() + wait;
    let mut buf = vec![0u8; 65536];
    loop {
        let left = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())?;
        sock.set_read_timeout(Some(left)).ok()?;
        let (len, _) = sock.recv_from(&mut buf).ok()?;
        // Earlier probes' late answers carry another Call-ID: skip them.
        if let Ok(Message::Response(r)) = wire::parse(&buf[..len]) {
            if is_answer(&r, &call_id) {
                return Some(r.status);
            }
        }
    }
}

fn is_answer(r: &Response, call_id: &str) -> bool {
    r.status >= 200 && r.call_id().is_ok_and(|c| c == call_id)
}

/// The SQL that creates Kamailio's database (schemas from this machine's kamailio-sqlite-modules)
/// with `users` as subscribers in realm `domain`.
pub fn setup_sql(domain: &str, users: &[(&str, &str)]) -> String {
    // WAL: auth reads and the test's reads never wait for a write (db_sqlite has no busy
    // timeout, so any lock becomes a 500).
    let mut sql = String::from("PRAGMA journal_mode=WAL;\n");
    for schema in ["standard", "auth_db", "usrloc"] {
        let path = Path::new(SCHEMA_DIR).join(format!("{schema}-create.sql"));
        sql += &std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (apt-get install kamailio-sqlite-modules)", path.display()));
    }
    for (user, password) in users {
        sql += &format!(
            "INSERT INTO subscriber (username, domain, password) VALUES ('{}', '{}', '{}');\n",
            sql_text(user),
            sql_text(domain),
            sql_text(password)
        );
    }
    sql
}

fn aor(row: &serde_json::Map<String, serde_json::Value>) -> String {
    match text(row, "domain").as_str() {
        "" => text(row, "username"),
        domain => format!("{}@{domain}", text(row, "username")),
    }
}

fn text(row: &serde_json::Map<String, serde_json::Value>, column: &str) -> String {
    row.get(column).and_then(|v| v.as_str()).unwrap_or_default().to_string()
}

fn sql_text(s: &str) -> String {
    s.replace('\'', "''")
}

fn sqlite(db: &Path, sql: &str) {
    use std::io::Write;
    let mut child = Command::new("sqlite3")
        .arg(db)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sqlite3 (apt-get install sqlite3)");
    child.stdin.take().expect("sqlite3 stdin").write_all(sql.as_bytes()).expect("write sql");
    let out = child.wait_with_output().expect("wait for sqlite3");
    assert!(out.status.success(), "sqlite3: {}", String::from_utf8_lossy(&out.stderr));
}

/// `config` with the tls module loaded and listening on `tls_addr`, configured by `tls_cfg`.
fn with_tls(config: &str, tls_addr: SocketAddr, tls_cfg: &Path) -> String {
    let listen = format!("enable_tls=yes\nlisten=tls:{tls_addr}\n");
    let module = format!("loadmodule \"tls.so\"\nmodparam(\"tls\", \"config\", \"{}\")\n", tls_cfg.display());
    config
        .replacen("auto_aliases=no\n", &format!("auto_aliases=no\n{listen}"), 1)
        .replacen("loadmodule \"kex.so\"\n", &format!("loadmodule \"kex.so\"\n{module}"), 1)
}

/// The tls module's own file: one profile for connections in, one for connections out, each
/// presenting `tls.cert` and requiring a peer certificate from `tls.ca`.
pub(crate) fn tls_config(tls: &KamailioTls) -> String {
    let profile = format!(
        "method = TLSv1.2+\ncertificate = {}\nprivate_key = {}\nca_list = {}\nverify_certificate = yes\nrequire_certificate = yes\n",
        tls.cert.display(),
        tls.key.display(),
        tls.ca.display()
    );
    format!("[server:default]\n{profile}\n[client:default]\n{profile}")
}

/// Kamailio's config: listening on `addr`, realm and alias `domain`, SQLite database `db`.
pub fn config(addr: SocketAddr, domain: &str, db: &Path) -> String {
    let db_url = format!("sqlite://{}", db.display());
    format!(
        r#"#!KAMAILIO
# Central site for the Holdfast survivability tests (written by tests/src/kamailio.rs).
debug=2
log_stderror=yes
log_facility=LOG_LOCAL0
# One SIP worker: db_sqlite cannot wait for a lock, so two writers would fail each other.
children=1
tcp_children=1
listen=udp:{addr}
listen=tcp:{addr}
alias="{domain}"
auto_aliases=no

loadmodule "kex.so"
{PROXY_MODULES}loadmodule "db_sqlite.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "path.so"
loadmodule "auth.so"
loadmodule "auth_db.so"

modparam("usrloc", "db_url", "{db_url}")
# Write-through: the test reads bindings from the location table.
modparam("usrloc", "db_mode", 1)
modparam("usrloc", "use_domain", 0)
modparam("registrar", "use_path", 1)
# Store Path whether or not the phone said Supported: path (the SBA adds it, not the phone).
modparam("registrar", "path_mode", 0)
modparam("registrar", "max_expires", 3600)
modparam("auth_db", "db_url", "{db_url}")
modparam("auth_db", "calculate_ha1", yes)
modparam("auth_db", "password_column", "password")
modparam("auth_db", "use_domain", 0)
modparam("auth_db", "load_credentials", "")
modparam("rr", "append_fromtag", 1)

request_route {{
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    if (is_method("OPTIONS") && uri == myself && $rU == $null) {{
        sl_send_reply("200", "Keepalive");
        exit;
    }}
{WITHIN_DIALOGS}    t_check_trans();
    remove_hf("Route");
    if (is_method("INVITE|SUBSCRIBE|REFER")) {{
        record_route();
    }}
    if (is_method("REGISTER")) {{
        if (!www_authorize("{domain}", "subscriber")) {{
            www_challenge("{domain}", "0");
            exit;
        }}
        consume_credentials();
        # save() sends its own reply, errors included.
        save("location");
        xlog("L_INFO", "registered $tu from $si:$sp\n");
        exit;
    }}
    if ($rU == $null) {{
        sl_send_reply("484", "Address Incomplete");
        exit;
    }}
    if (is_method("INVITE")) {{
        xlog("L_INFO", "INVITE to $rU over $pr from $si\n");
    }}
    if (!lookup("location")) {{
        xlog("L_INFO", "$rm to unknown $rU\n");
        sl_send_reply("404", "Not Found");
        exit;
    }}
    route(RELAY);
}}

{RELAY}"#
    )
}

/// The part of a request_route every Kamailio role here shares: in-dialog requests follow their
/// Route (logged with their transport), an ACK goes with its transaction, anything else in a
/// dialog gets 404; a CANCEL goes with its INVITE's transaction.
pub(crate) const WITHIN_DIALOGS: &str = r#"    if (has_totag()) {
        if (loose_route()) {
            xlog("L_INFO", "in-dialog $rm over $pr from $si\n");
            route(RELAY);
        }
        if (is_method("ACK") && t_check_trans()) {
            t_relay();
            exit;
        }
        if (!is_method("ACK")) {
            sl_send_reply("404", "Not here");
        }
        exit;
    }
    if (is_method("CANCEL")) {
        if (t_check_trans()) {
            route(RELAY);
        }
        exit;
    }
"#;

/// The modules every Kamailio role here loads after kex (and the tls module, where it has one).
pub(crate) const PROXY_MODULES: &str = r#"loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
"#;

/// Relays statefully, or answers the error.
pub(crate) const RELAY: &str = r#"
route[RELAY] {
    if (!t_relay()) {
        sl_reply_error();
    }
    exit;
}
"#;
