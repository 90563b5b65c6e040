//! sba-web: the appliance's admin web page and Prometheus metrics (one port), and the task that
//! sends call records home. It only reads what the services write (their status snapshots,
//! SQLite through read-only connections), so it never holds them up.
#![forbid(unsafe_code)]
mod auth;
mod cdr_upload;
mod config;
mod config_check;
mod connections;
mod http;
mod metrics;
mod pages;
mod serve;
mod view;

use anyhow::{Context, Result};
use clap::Parser;
use config::Config;
use holdfast_runtime::{init_logging, Notifier};
use holdfast_store::Store;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(name = "sba-web", about = "Holdfast admin web page, /metrics, and call records home")]
struct Cli {
    /// The appliance configuration (TOML: [web], [cdr], [registrar].db); without it the embedded
    /// laptop default (http://127.0.0.1:8080, ./var/sba.db) is used.
    #[arg(long)]
    config: Option<PathBuf>,
}

/// How long to wait for the services to create the database at first boot.
const DB_WAIT: Duration = Duration::from_millis(500);

fn main() -> Result<()> {
    init_logging("sba-web");
    let cli = Cli::parse();
    let config = match &cli.config {
        Some(path) => Config::load(path)?,
        None => Config::embedded(),
    };
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the runtime")?.block_on(run(config))
}

async fn run(config: Config) -> Result<()> {
    let tls = if config.web.tls {
        let names = if config.web.names.is_empty() { default_names(&config) } else { config.web.names.clone() };
        let cert = holdfast_tls::ApplianceCert::load_or_generate(&config.web.tls_dir, &names)
            .with_context(|| format!("the appliance certificate in {}", config.web.tls_dir.display()))?;
        log::info!("HTTPS with {} (SHA-256 {})", cert.cert_path().display(), cert.fingerprint_sha256());
        // Live: `sbactl tls install` swaps the certificate without a restart.
        let live = holdfast_tls::LiveCert::watch(&cert)?;
        Some(tokio_rustls::TlsAcceptor::from(live.server_config(&[b"http/1.1"])?))
    } else {
        None
    };
    let listener = tokio::net::TcpListener::bind(config.web.listen).await.with_context(|| format!("listening on {}", config.web.listen))?;
    // sba-registrar creates and migrates the database; a read-only connection cannot.
    let mut logged = false;
    let store = loop {
        if config.db.exists() {
            match Store::open_read_only(&config.db).await {
                Ok(s) => break s,
                Err(e) if !logged => log::warn!("{e}; waiting"),
                Err(_) => {}
            }
        } else if !logged {
            log::warn!("{} does not exist yet; waiting for sba-registrar to create it", config.db.display());
        }
        logged = true;
        tokio::time::sleep(DB_WAIT).await;
    };
    let upload = match &config.cdr {
        Some(cdr) => Some(cdr_upload::start(cdr.clone(), config.db.clone(), store.clone()).context("[cdr] upload")?),
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let app = Arc::new(http::App {
        store,
        sessions: Mutex::new(auth::Sessions::new(Duration::from_secs(config.web.session_minutes * 60))),
        throttle: Mutex::new(auth::LoginThrottle::new(Instant::now())),
        upload,
        config_check: Mutex::new(None),
        config,
    });
    let status = format!("serving {scheme}://{}", listener.local_addr()?);
    log::info!("{status}");
    Notifier::from_env()?.ready(&status);
    serve::serve(listener, tls, http::router(app)).await.context("accepting connections")
}

/// The host name and the listen address (when it names one), for a generated certificate.
fn default_names(config: &Config) -> Vec<String> {
    let mut names = Vec::new();
    if let Ok(host) = std::fs::read_to_string("/etc/hostname") {
        let host = host.trim();
        if !host.is_empty() {
            names.push(host.to_string());
        }
    }
    names.push("localhost".into());
    if !config.web.listen.ip().is_unspecified() {
        names.push(config.web.listen.ip().to_string());
    }
    names
}
