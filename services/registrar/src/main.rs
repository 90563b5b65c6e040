//! sba-registrar: the branch registrar. Loads its bindings from SQLite, answers at once, and
//! acknowledges a REGISTER only once its binding is on disk.
#![forbid(unsafe_code)]
mod auth;
mod central;
mod proxy;
mod registrar;
mod server;
mod trust;
mod wan;

use anyhow::{Context, Result};
use sba_registrar::{config, directory, routing};
use clap::Parser;
use config::Config;
use holdfast_runtime::config::Loaded;
use holdfast_runtime::{init_logging, Notifier};
use holdfast_sip::auth::Algorithm;
use holdfast_sip::transaction::{TimerConfig, Transactions};
use std::collections::HashMap;
use holdfast_sip::transport::{Protocol, TcpLimits, TlsPeer, TlsSetup, Transport};
use holdfast_tls::{peer_client_config, ApplianceCert, LiveCert, PeerTrust};
use holdfast_store::Store;
use directory::Directory;
use proxy::{PathStamp, Proxy, ProxyConfig};
use registrar::{Limits, Registrar};
use wan::{WanConfig, WanMonitor, WanState};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "sba-registrar", about = "Holdfast branch registrar")]
struct Cli {
    /// The appliance configuration (TOML); without it the embedded laptop default is used.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Listen on this address (UDP and TCP), overriding the config.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// The SQLite database, overriding the config.
    #[arg(long)]
    db: Option<PathBuf>,
}

fn main() -> Result<()> {
    init_logging("sba-registrar");
    holdfast_runtime::raise_open_files_limit();
    let cli = Cli::parse();
    let mut config = Config::load_or_embedded(cli.config.as_deref())?;
    if let Some(listen) = cli.listen {
        config.registrar.listen = listen;
    }
    if let Some(db) = cli.db {
        config.registrar.db = db;
    }
    // One thread: the loop, the socket readers and the commit waits hand work to each other
    // without crossing threads (the store's SQLite connections have threads of their own).
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?
        .block_on(run(config))
}

async fn run(config: Config) -> Result<()> {
    let c = config.registrar.clone();
    let store = Store::open(&c.db).await.with_context(|| format!("opening {}", c.db.display()))?;
    let now = server::unix_now();
    let loaded = store.load_bindings(i64::try_from(now).unwrap_or(i64::MAX)).await.context("loading bindings")?;
    let writer = store.binding_writer().await.context("starting the binding writer")?;
    let registrar = Registrar::new(
        Limits {
            min_expires: c.min_expires,
            max_expires: c.max_expires,
            default_expires: c.default_expires,
            max_contacts: c.max_contacts,
        },
        loaded,
    );
    let users_version = store.users_version().await.context("reading users")?;
    let auth = if c.auth {
        let algorithms = c.digest_algorithms.iter().filter_map(|a| Algorithm::parse(a).map(|(alg, _)| alg)).collect();
        let lifetime = Duration::from_secs(c.nonce_lifetime.into());
        let mut auth = auth::Authenticator::new(algorithms, lifetime, rand::random(), holdfast_runtime::WallClock::read());
        auth.set_users(store.load_users().await.context("loading users")?);
        Some(auth)
    } else {
        None
    };
    let tls = match c.tls_listen {
        Some(listen) => Some(tls_setup(&c, listen, config.central.as_ref())?),
        None => None,
    };
    let tcp_limits = TcpLimits {
        max_connections: c.limits.tcp_connections,
        max_per_ip: c.limits.tcp_per_source,
        idle_timeout: Duration::from_secs(c.limits.tcp_idle_secs.into()),
    };
    let (transport, incoming) = Transport::bind_with(c.listen, tls, tcp_limits)
        .await
        .with_context(|| format!("listening on {} (UDP and TCP) and {:?} (TLS)", c.listen, c.tls_listen))?;
    let notifier = Notifier::from_env()?;
    let status = server::StatusFile::beside(&c.db, now);
    let wan = match &config.central {
        Some(central) => {
            let initial = if status.was_down() { WanState::Down } else { WanState::Up };
            let wan_config = WanConfig {
                targets: central.proxies.clone(),
                interval: Duration::from_millis(central.keepalive_interval_ms),
                timeout: Duration::from_millis(central.keepalive_timeout_ms),
                down_after: central.down_after,
                up_after: central.up_after,
                initial,
            };
            Some(WanMonitor::new(wan_config, std::time::Instant::now(), rand::random()).context("[central] WAN monitor")?)
        }
        None => None,
    };
    let mode = match &wan {
        None => "primary registrar".to_string(),
        Some(w) if w.state() == WanState::Up => format!("pass-through to {:?}", config.central.as_ref().map(|c| &c.proxies)),
        Some(_) => "survival (the WAN was down when we stopped)".to_string(),
    };
    let status_text = format!(
        "{mode}; serving {} bindings on {} (auth {})",
        registrar.binding_count(),
        transport.local_addr(),
        match &auth {
            Some(a) => format!("on, {} users", a.user_count()),
            None => "off".to_string(),
        }
    );
    log::info!("{status_text}; database {}", c.db.display());
    notifier.ready(&status_text);
    let route_key = store.secret("record-route", rand::random()).await.context("reading the Record-Route key")?;
    let stamp = trust::RouteStamp::new(&route_key);
    let peers = config.central.iter().flat_map(|c| c.proxies.iter()).chain(config.survival.mediation.iter());
    let trust = trust::Trust::new(c.auth, peers.map(SocketAddr::ip).collect(), stamp.clone());
    let proxy = Proxy::new(ProxyConfig {
        no_answer: Duration::from_secs(config.survival.no_answer_secs.into()),
        stamp,
    });
    let addresses = server::Addresses::new(transport.local_addr(), transport.tls_addr());
    let notifier_watchdog = notifier.watchdog_interval();
    let server = server::Server {
        registrar,
        auth,
        txns: Transactions::new(TimerConfig::default()),
        ids: holdfast_sip::Ids::from_os(),
        transport,
        store,
        writer,
        notifier,
        users_version,
        proxy,
        path: PathStamp::new(&route_key),
        addresses,
        domain: c.domain.clone(),
        site: c.site.clone(),
        directory: Directory::new(&config.directory),
        central: config.central.clone(),
        survival: config.survival.clone(),
        wan,
        links: central::CentralLinks::new(config.central.as_ref().map_or(Protocol::Udp, |c| c.transport.protocol())),
        status,
        relays: HashMap::new(),
        outbox: Default::default(),
        trust,
        counters: trust::TrustCounters::default(),
        guard: trust::Guard::new(trust::GuardConfig {
            max_requests: c.limits.requests_per_source,
            ban_for: Duration::from_secs(c.limits.ban_secs.into()),
            ..trust::GuardConfig::default()
        }),
        delayed: server::Delayed::new(c.limits.delayed_responses),
        max_transactions: c.limits.max_transactions,
        done: None,
        ticks: server::ticks(notifier_watchdog, std::time::Instant::now()),
    };
    server.run(incoming).await
}

/// The TLS listener with the appliance certificate, kept live (`sbactl tls install`), and the
/// central proxies over TLS (`[central] transport = "tls"`; the config check made sure a
/// listener is there for the Path that names it).
fn tls_setup(c: &config::Registrar, listen: SocketAddr, central: Option<&config::Central>) -> Result<TlsSetup> {
    let mut names = vec![c.domain.clone(), "localhost".to_string()];
    names.extend([c.listen.ip(), listen.ip()].iter().filter(|ip| !ip.is_unspecified()).map(|ip| ip.to_string()));
    names.dedup();
    let cert = ApplianceCert::load_or_generate(&c.tls_dir, &names)
        .with_context(|| format!("the appliance certificate in {}", c.tls_dir.display()))?;
    log::info!("SIP over TLS on {listen} with {} (SHA-256 {})", cert.cert_path().display(), cert.fingerprint_sha256());
    let live = LiveCert::watch(&cert)?;
    let mut peers = Vec::new();
    if let Some(central) = central.filter(|c| c.transport == config::CentralTransport::Tls) {
        if !central.tls_verify {
            log::warn!("central proxies {:?}: their TLS certificates are NOT verified (tls_verify = false)", central.proxies);
        }
        let trust = PeerTrust {
            ca: central.tls_ca.as_deref(),
            verify: central.tls_verify,
            client_cert: central.tls_client_cert.then(|| live.clone()),
        };
        let client = peer_client_config(&trust)
            .with_context(|| format!("[central] tls_ca {:?}", central.tls_ca.as_ref().map(|p| p.display())))?;
        for &addr in &central.proxies {
            let name = central.tls_name_of(addr).map_err(anyhow::Error::msg).context("[central] tls_name")?;
            peers.push(TlsPeer { addr, label: "central proxy".to_string(), name, client: client.clone() });
        }
    }
    Ok(TlsSetup {
        listen: Some(listen),
        server: live.server_config(&[])?,
        client: peer_client_config(&PeerTrust::verified(None))?,
        peers,
        callers: Vec::new(),
    })
}
