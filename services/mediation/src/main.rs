//! sba-mediation: the Mediation Server between the branch registrar and the PSTN side.
#![forbid(unsafe_code)]
use anyhow::{Context, Result};
use clap::Parser;
use holdfast_runtime::config::Loaded;
use holdfast_runtime::{init_logging, Notifier};
use sba_mediation::config::Config;
use sba_mediation::server::Server;
use std::path::PathBuf;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "sba-mediation", about = "Holdfast Mediation Server: B2BUA and media relay towards the PSTN")]
struct Cli {
    /// The appliance configuration (TOML, its [mediation] section); without it the embedded
    /// laptop default (127.0.0.1:5070, sipp carriers on loopback) is used.
    #[arg(long)]
    config: Option<PathBuf>,
}

fn main() -> Result<()> {
    init_logging("sba-mediation");
    holdfast_runtime::raise_open_files_limit();
    let cli = Cli::parse();
    let config = Config::load_or_embedded(cli.config.as_deref())?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?
        .block_on(async {
            let notifier = Notifier::from_env().context("sd_notify socket")?;
            let (server, incoming) = Server::start(config, notifier).await?;
            log::info!("sba-mediation listening on {}", server.local_addr());
            server.run(incoming).await?;
            Ok(())
        })
}
