//! sbactl: administers the Holdfast services through their SQLite store.
#![forbid(unsafe_code)]
mod cdr;
mod number;
mod plan;
mod pstn;
mod status;
mod userfile;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use holdfast_store::Store;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(name = "sbactl", about = "Administers the Holdfast branch appliance")]
struct Cli {
    /// The appliance database (default: [registrar].db of /etc/sba/sba.toml, else ./var/sba.db).
    /// It must exist (the services create it when they start) except for `sbactl init`.
    #[arg(long, global = true)]
    db: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Creates the database (or brings an existing one up to date): before adding users to a
    /// branch whose services have not started yet.
    Init,
    /// Local users: who may register at the branch (only their HA1 digests are stored).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// The registrar's mode (primary, pass-through, survival), WAN state and counters.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Current bindings, one per registered contact.
    Registrations {
        /// A JSON array, one object per binding.
        #[arg(long)]
        json: bool,
    },
    /// sba-mediation's call records, oldest first.
    Cdr {
        /// Calls set up since: Unix seconds, a UTC date/time (2026-11-21T12:30Z) or 15m/2h/7d ago.
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        csv: bool,
    },
    /// The web page's admin account.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// The appliance certificate (HTTPS, and SIP over TLS).
    Tls {
        #[command(subcommand)]
        command: TlsCommand,
    },
    /// PSTN ports for N users: Erlang B beside the rule of thumb, the E1/T1 spans it takes,
    /// and whether the spans in sba.toml suffice.
    Plan {
        #[arg(long)]
        users: u32,
        /// PSTN calls per user in the busy hour (1 light, 2 moderate, 3 or more heavy).
        #[arg(long, default_value_t = 2.0)]
        calls_per_user_hour: f64,
        /// Mean call length in seconds.
        #[arg(long, default_value_t = 180.0)]
        hold_secs: f64,
        /// Share of busy-hour calls that may find every port busy.
        #[arg(long, default_value_t = 0.01)]
        blocking: f64,
        #[arg(long)]
        json: bool,
        /// The configuration whose [gateway] spans are checked (default: /etc/sba/sba.toml).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Numbers as sba-mediation sees them (normalization, usage, route, trunks).
    Number {
        #[command(subcommand)]
        command: NumberCommand,
    },
    /// The simulated PSTN behind sba-gateway's simulated span (image/run-local).
    Pstn {
        #[command(subcommand)]
        command: PstnCommand,
    },
}

#[derive(Subcommand)]
enum PstnCommand {
    /// The simulated exchange calls NUMBER (a branch DID, e.g. 5559873001) as a PSTN caller
    /// would; once answered the call hears a tone, then its own audio echoed.
    Call {
        number: String,
        /// The calling number the branch sees.
        #[arg(long, default_value = "+12125550123")]
        from: String,
        /// The exchange hangs up (cause 16) this many seconds after the answer.
        #[arg(long)]
        hangup_after: Option<u64>,
        /// sba-gateway's configuration, for its `exchange_control` socket (default:
        /// /etc/sba/sba.toml, else the embedded default's ./var/pstn.sock).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum NumberCommand {
    /// Which rule normalizes NUMBER, and the usage, route and trunks a call by --user takes.
    Test {
        number: String,
        #[arg(long)]
        user: String,
        /// The caller's number (default: the user name, an extension).
        #[arg(long)]
        caller: Option<String>,
        /// The configuration (default: /etc/sba/sba.toml, else sba-mediation's embedded default).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum TlsCommand {
    /// Its subject, issuer, validity, SHA-256 fingerprint (what a browser shows) and chain.
    Show {
        /// The certificate directory (default: [web].tls_dir of /etc/sba/sba.toml, else /etc/sba/tls).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Puts CERT (PEM, leaf first) and its KEY in place of the appliance certificate. The
    /// running services present it at their next TLS handshakes (within a second); calls and
    /// the connections they use go on.
    Install {
        cert: PathBuf,
        key: PathBuf,
        /// Intermediate CA certificates (PEM) sent after the leaf.
        #[arg(long)]
        chain: Option<PathBuf>,
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Sets the admin password of sba-web (stored as an Argon2id hash). Reads it from standard
    /// input: typed twice at a terminal (not echoed), or one line from a pipe.
    Passwd,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Adds a user. The password is asked twice at a terminal (not echoed), or read as one
    /// line from standard input with --password-stdin; never from the command line, where
    /// `ps` and the shell history would show it.
    Add {
        name: String,
        #[arg(long)]
        domain: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Adds every user of FILE in one go (all or none): `name;password` lines (sipp's CSV
    /// format; `#` comments; a field in double quotes may hold `;`), or a header line naming
    /// the columns (username, password, ha1, domain) as Kamailio's subscriber table exports
    /// them, so users can be imported with their MD5 HA1 instead of a password.
    Import {
        file: PathBuf,
        #[arg(long)]
        domain: String,
    },
    List,
    Remove {
        name: String,
        #[arg(long)]
        domain: String,
    },
}

const APPLIANCE_CONFIG: &str = "/etc/sba/sba.toml";

fn default_db() -> PathBuf {
    std::fs::read_to_string(APPLIANCE_CONFIG)
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
        .and_then(|t| t.get("registrar")?.get("db")?.as_str().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(holdfast_runtime::DEFAULT_DB))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let db = cli.db.unwrap_or_else(default_db);
    match cli.command {
        Command::Init => {
            let existed = db.exists();
            Store::open(&db).await.with_context(|| format!("creating the database {}", db.display()))?.close().await;
            println!("{} {}", if existed { "up to date:" } else { "created" }, db.display());
            Ok(())
        }
        Command::Status { json } => status::show(&db, json),
        Command::User { command } => user(&open(&db).await?, command).await,
        Command::Registrations { json } => registrations(&open(&db).await?, json).await,
        Command::Cdr { since, csv } => cdr::list(&open(&db).await?, since.as_deref(), csv).await,
        Command::Admin { command: AdminCommand::Passwd } => {
            let password = read_password("New admin password", !std::io::stdin().is_terminal())?;
            anyhow::ensure!(password.chars().count() >= 8, "use at least 8 characters");
            open(&db).await?.set_admin_password(&password).await.context("storing the admin password")?;
            println!("admin password set");
            Ok(())
        }
        Command::Tls { command: TlsCommand::Show { dir } } => tls_show(&dir.unwrap_or_else(default_tls_dir)),
        Command::Tls { command: TlsCommand::Install { cert, key, chain, dir } } => {
            let dir = dir.unwrap_or_else(default_tls_dir);
            let installed = holdfast_tls::ApplianceCert::install(&dir, &cert, &key, chain.as_deref())
                .with_context(|| format!("installing {} into {}", cert.display(), dir.display()))?;
            println!("installed; the services present it at their next TLS handshakes");
            print_cert(&installed)
        }
        Command::Plan { users, calls_per_user_hour, hold_secs, blocking, json, config } => {
            let traffic = plan::Traffic { users, calls_per_user_hour, hold_secs, blocking };
            plan_ports(traffic, json, config.as_deref())
        }
        Command::Pstn { command: PstnCommand::Call { number, from, hangup_after, config } } => {
            pstn::call(config.as_deref(), &number, &from, hangup_after)
        }
        Command::Number { command: NumberCommand::Test { number, user, caller, config } } => {
            let config = number::load(config.as_deref())?;
            // Refused: the reason is printed; the exit status says so to scripts.
            if !number::test(&config.plan, &number, &user, caller.as_deref()) {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

/// An existing database: a mistyped --db is an error, not a fresh empty database.
async fn open(db: &Path) -> Result<Store> {
    anyhow::ensure!(
        db.is_file(),
        "no database at {} (a wrong --db? `sbactl --db {} init` creates one)",
        db.display(),
        db.display()
    );
    Store::open(db).await.with_context(|| format!("opening the database {}", db.display()))
}

async fn user(store: &Store, command: UserCommand) -> Result<()> {
    match command {
        UserCommand::Add { name, domain, password_stdin } => {
            anyhow::ensure!(valid_user(&name), "user name {name:?}: use letters, digits and -_.!~*'()&=+$,;?/");
            anyhow::ensure!(!domain.is_empty() && !domain.contains(['@', ' ']), "domain {domain:?} is not a SIP domain");
            let password = read_password(&format!("Password for sip:{name}@{domain}"), password_stdin)?;
            anyhow::ensure!(!password.is_empty(), "the password must not be empty");
            store.add_user(&name, &domain, &password).await.context("adding the user")?;
            println!("added sip:{name}@{domain}");
        }
        UserCommand::Import { file, domain } => {
            anyhow::ensure!(!domain.is_empty() && !domain.contains(['@', ' ']), "domain {domain:?} is not a SIP domain");
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let import = userfile::parse(&text, &domain, valid_user).with_context(|| file.display().to_string())?;
            store.add_users(&domain, &import.users).await.context("adding the users")?;
            println!("added {} users to {domain}", import.users.len());
            if import.other_domains > 0 {
                println!("left out {} rows of other domains", import.other_domains);
            }
        }
        UserCommand::List => {
            for u in store.list_users().await.context("listing users")? {
                println!("sip:{}@{}", u.name, u.domain);
            }
        }
        UserCommand::Remove { name, domain } => {
            let removed = store.remove_user(&name, &domain).await.context("removing the user")?;
            anyhow::ensure!(removed, "no user sip:{name}@{domain}");
            println!("removed sip:{name}@{domain}");
        }
    }
    Ok(())
}

fn default_tls_dir() -> PathBuf {
    std::fs::read_to_string(APPLIANCE_CONFIG)
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
        .and_then(|t| t.get("web")?.get("tls_dir")?.as_str().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(holdfast_tls::DEFAULT_DIR))
}

fn tls_show(dir: &Path) -> Result<()> {
    let Some(cert) = holdfast_tls::ApplianceCert::load(dir).with_context(|| format!("reading {}", dir.display()))? else {
        println!("no certificate in {} yet: sba-web generates a self-signed one at its first start", dir.display());
        return Ok(());
    };
    print_cert(&cert)
}

fn print_cert(cert: &holdfast_tls::ApplianceCert) -> Result<()> {
    let info = cert.info().with_context(|| format!("reading {}", cert.cert_path().display()))?;
    let date = |secs: u64| holdfast_store::cdr_text::iso(i64::try_from(secs).unwrap_or(i64::MAX).saturating_mul(1000));
    let now = holdfast_runtime::unix_now().as_secs();
    let state = if now > info.not_after {
        "EXPIRED".to_string()
    } else if now < info.not_before {
        "not valid yet".to_string()
    } else {
        format!("{} days left", (info.not_after - now) / 86_400)
    };
    println!("certificate:  {}", cert.cert_path().display());
    println!("subject:      {}", info.subject);
    println!("issuer:       {}", info.issuer);
    println!("valid from:   {}", date(info.not_before));
    println!("expires:      {} ({state})", date(info.not_after));
    println!("SHA-256:      {}", info.fingerprint_sha256);
    println!("chain:        {} certificate(s)", cert.chain.len());
    Ok(())
}

/// A new password: one line of standard input when `from_stdin`, else asked twice at the
/// terminal with echo off.
fn read_password(prompt: &str, from_stdin: bool) -> Result<String> {
    use std::io::BufRead;
    let stdin = std::io::stdin();
    let read_line = || -> Result<String> {
        let mut line = String::new();
        stdin.lock().read_line(&mut line).context("reading the password")?;
        Ok(line.trim_end_matches(['\n', '\r']).to_string())
    };
    if from_stdin {
        return read_line();
    }
    anyhow::ensure!(stdin.is_terminal(), "no terminal to ask the password at: pipe it in with --password-stdin");
    let _echo = EchoOff::new();
    eprint!("{prompt}: ");
    let first = read_line()?;
    eprint!("\nAgain: ");
    let again = read_line()?;
    eprintln!();
    anyhow::ensure!(first == again, "the two passwords differ");
    Ok(first)
}

/// Terminal echo off until dropped.
struct EchoOff(Option<nix::sys::termios::Termios>);

impl EchoOff {
    fn new() -> EchoOff {
        use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
        let stdin = std::io::stdin();
        let Ok(saved) = tcgetattr(&stdin) else { return EchoOff(None) };
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, &quiet);
        EchoOff(Some(saved))
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = nix::sys::termios::tcsetattr(std::io::stdin(), nix::sys::termios::SetArg::TCSANOW, saved);
        }
    }
}

fn plan_ports(traffic: plan::Traffic, json: bool, config: Option<&Path>) -> Result<()> {
    let p = plan::plan(traffic)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&p)?);
        return Ok(());
    }
    let plan::Traffic { users, calls_per_user_hour, hold_secs, blocking } = traffic;
    println!("offered traffic:  {:.2} erlangs ({users} users × {calls_per_user_hour} calls/h × {hold_secs} s)", p.offered_erlangs);
    let achieved = plan::erlang_b(traffic.offered_erlangs(), p.erlang_b_ports) * 100.0;
    println!("Erlang B:         {} ports for {}% blocking ({achieved:.2}% with them)", p.erlang_b_ports, blocking * 100.0);
    println!("rule of thumb:    {} ports (one per 15/10/5 users for light/moderate/heavy use)", p.rule_of_thumb_ports);
    println!("spans:            {} E1 (30 B-channels each) or {} T1 (23 each)", p.e1_spans, p.t1_spans);
    let path = config.unwrap_or(Path::new(APPLIANCE_CONFIG));
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            println!("configured:       not checked ({}: {e})", path.display());
            return Ok(());
        }
    };
    let (kind, channels) = plan::configured_span(&text, &path.display().to_string())?;
    let verdict = if channels >= p.erlang_b_ports { "enough" } else { "NOT enough" };
    println!("configured:       one {kind} span in {}: {channels} B-channels, {verdict}", path.display());
    Ok(())
}

/// RFC 3261 user part characters (unreserved and user-unreserved), no escapes.
fn valid_user(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.!~*'()&=+$,;?/".contains(c))
}

async fn registrations(store: &Store, json: bool) -> Result<()> {
    let now = holdfast_runtime::unix_secs();
    let mut bindings = store.list_bindings().await.context("listing bindings")?;
    bindings.retain(|b| b.expires_at > now);
    if json {
        let rows: Vec<serde_json::Value> = bindings
            .iter()
            .map(|b| {
                serde_json::json!({
                    "aor": b.aor,
                    "contact": b.contact,
                    "expires": b.expires_at.saturating_sub(now),
                    "expires_at": b.expires_at,
                    "instance": b.instance,
                    "reg_id": b.reg_id,
                    "q": b.q.map(|q| (f64::from(q) * 1000.0).round() / 1000.0),
                    "call_id": b.call_id,
                    "cseq": b.cseq,
                    "path": b.path,
                    "source": b.source,
                    "transport": b.transport,
                    "user_agent": b.user_agent,
                    "origin": b.origin.as_str(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        for b in &bindings {
            println!("{}  {}  expires in {}s  ({} {})", b.aor, b.contact, b.expires_at.saturating_sub(now), b.transport, b.source);
        }
    }
    Ok(())
}
