//! sba-gateway: brings up the PSTN span (DAHDI, or simulated on a laptop) and its PRI D-channel,
//! and reports the trunk's state.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use log::{info, warn};
use tokio::signal::unix::{signal, SignalKind};
use tokio::task::JoinHandle;

use sba_gateway::config::{self, Gateway};
use sba_gateway::pri::{Pri, PriEvent};
use sba_gateway::q921::Side;
use sba_gateway::q931::{cause, CallEvent};
use sba_gateway::span::{DahdiSpan, DahdiSpanConfig, SimulatedSpan, SpanError};
use sba_gateway::trunk::{self, TrunkEvent, TrunkHandle};

#[derive(Parser)]
#[command(name = "sba-gateway", about = "Holdfast PSTN gateway: DAHDI spans with ISDN PRI")]
struct Args {
    /// The appliance's TOML file ([gateway] section); the embedded laptop default without it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    holdfast_runtime::init_logging("sba-gateway");
    let gateway = match &args.config {
        Some(path) => config::load(path)?,
        None => config::parse(config::DEFAULT, "embedded default")?,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(run(gateway))
}

async fn run(gateway: Gateway) -> Result<()> {
    let (side, layout, layer1) = (gateway.side(), gateway.layout(), gateway.layer1());
    let pri = Pri::new(side, layout, layer1);
    if gateway.simulated {
        let far_side = match side {
            Side::User => Side::Network,
            Side::Network => Side::User,
        };
        info!("span {}: simulated {layout:?} span; its far end ({far_side:?} side) is simulated in this process", gateway.span);
        let (ours, theirs, _line) = SimulatedSpan::pair(layout);
        // The far end only keeps the link up; its events are not read.
        let (_far, far_task) = trunk::spawn(theirs, Pri::new(far_side, layout, layer1));
        let (handle, task) = trunk::spawn(ours, pri);
        let result = serve(handle, task).await;
        far_task.abort();
        result
    } else {
        let span = DahdiSpan::open(DahdiSpanConfig {
            spanno: gateway.span,
            layout,
            law: gateway.law(),
            basechan: gateway.basechan,
        })
        .with_context(|| format!("opening DAHDI span {}", gateway.span))?;
        let (handle, task) = trunk::spawn(span, pri);
        serve(handle, task).await
    }
}

async fn serve(mut trunk: TrunkHandle, task: JoinHandle<Result<(), SpanError>>) -> Result<()> {
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    loop {
        tokio::select! {
            event = trunk.events.recv() => match event {
                None => break,
                Some(TrunkEvent::Pri(PriEvent::InService(up))) => {
                    info!("trunk {}", if up { "in service" } else { "unavailable" });
                }
                Some(TrunkEvent::Pri(PriEvent::Call(CallEvent::Incoming { call, channel, called, .. }))) => {
                    // Calls reach sba-mediation once the SIP side of the gateway exists.
                    warn!(
                        "{call} for {:?} on B-channel {channel}: no SIP side to deliver it to, refusing (cause 41)",
                        called.map(|c| c.digits)
                    );
                    trunk.hangup(call, cause::TEMPORARY_FAILURE).await?;
                }
                Some(TrunkEvent::Pri(PriEvent::Call(event))) => info!("{event:?}"),
                Some(TrunkEvent::Audio { .. }) => {}
            },
            _ = tokio::signal::ctrl_c() => {
                info!("interrupted, stopping");
                return Ok(());
            }
            _ = sigterm.recv() => {
                info!("SIGTERM, stopping");
                return Ok(());
            }
        }
    }
    task.await.context("trunk task")?.context("trunk stopped")
}
