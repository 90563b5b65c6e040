//! sba-gateway: brings up the PSTN span (DAHDI, or simulated on a laptop) and its PRI D-channel,
//! and carries its calls to and from sba-mediation as SIP with RTP.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use log::info;
use tokio::signal::unix::{signal, SignalKind};
use tokio::task::JoinHandle;

use holdfast_runtime::config::Loaded;
use holdfast_runtime::Notifier;
use sba_gateway::config::Gateway;
use sba_gateway::edge::{Edge, EdgeConfig};
use sba_gateway::exchange;
use sba_gateway::pri::Pri;
use sba_gateway::q931::Layout;
use sba_gateway::q921::Side;
use sba_gateway::span::{DahdiSpan, DahdiSpanConfig, SimulatedSpan, SpanError};
use sba_gateway::status;
use sba_gateway::trunk::{self, TrunkHandle};

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
    let gateway = Gateway::load_or_embedded(args.config.as_deref())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(run(gateway))
}

/// How often a missing DAHDI span is looked for again: a card's driver is loaded by udev, at any
/// time after the gateway has started.
const SPAN_RETRY: Duration = Duration::from_secs(1);

async fn run(gateway: Gateway) -> Result<()> {
    let notifier = Arc::new(Notifier::from_env()?);
    if let Some(every) = notifier.watchdog_interval() {
        let n = notifier.clone();
        // One thread runs everything, so these pings stop when the gateway's loop hangs.
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                n.notify("WATCHDOG=1");
            }
        });
    }
    let (side, layout, layer1) = (gateway.side(), gateway.layout(), gateway.layer1());
    let mut pri = Pri::new(side, layout, layer1);
    pri.set_dial_plan(gateway.dial_plan());
    let edge = Edge::bind(EdgeConfig { listen: gateway.listen, mediation: gateway.mediation, layout, law: gateway.law() })
        .await
        .context("binding the SIP and RTP sockets")?;
    if gateway.simulated {
        let far_side = match side {
            Side::User => Side::Network,
            Side::Network => Side::User,
        };
        info!("span {}: simulated {layout:?} span; its far end ({far_side:?} side) is simulated in this process", gateway.span);
        let (ours, theirs, _line) = SimulatedSpan::pair(layout);
        let (far, far_task) = trunk::spawn(theirs, Pri::new(far_side, layout, layer1));
        let control = exchange::driver::bind_control(&gateway.exchange_control)
            .with_context(|| format!("binding the simulated exchange's control socket {}", gateway.exchange_control.display()))?;
        info!("simulated PSTN exchange: `sbactl pstn call NUMBER` through {}", gateway.exchange_control.display());
        let exchange = tokio::spawn(exchange::driver::run(far, gateway.law(), Some(control)));
        let (handle, task) = trunk::spawn(ours, pri);
        tokio::spawn(status::run(handle.status_source(), edge.strangers(), gateway.status_file.clone(), span_info(&gateway)));
        notifier.ready(&format!("simulated {layout:?} span {}", gateway.span));
        let result = serve(edge, handle, task).await;
        exchange.abort();
        far_task.abort();
        let _ = std::fs::remove_file(&gateway.exchange_control);
        result
    } else {
        let info = span_info(&gateway);
        let span = open_span(&gateway, layout, &notifier, &info).await;
        let (handle, task) = trunk::spawn(span, pri);
        tokio::spawn(status::run(handle.status_source(), edge.strangers(), gateway.status_file.clone(), info));
        notifier.notify(&format!("STATUS=DAHDI {layout:?} span {}", gateway.span));
        serve(edge, handle, task).await
    }
}

fn span_info(gateway: &Gateway) -> status::SpanInfo {
    let started = holdfast_runtime::unix_ms() / 1000;
    status::SpanInfo { span: gateway.span, layout: gateway.layout(), simulated: gateway.simulated, started }
}

/// Configures and opens the DAHDI span, waiting for it while it is missing (no card, its driver
/// not loaded yet) or unusable: the service is READY meanwhile, and mediation finds the trunk
/// unavailable, since its OPTIONS go unanswered until the span is there. The status file says
/// why at every try.
async fn open_span(gateway: &Gateway, layout: Layout, notifier: &Notifier, info: &status::SpanInfo) -> DahdiSpan {
    let config = DahdiSpanConfig {
        spanno: gateway.span,
        layout,
        law: gateway.law(),
        basechan: gateway.basechan,
        line: gateway.line(),
    };
    let mut waiting: Option<String> = None;
    loop {
        match DahdiSpan::open(config) {
            Ok(span) => {
                match waiting {
                    Some(_) => info!("DAHDI span {} is there", gateway.span),
                    None => notifier.ready(&format!("DAHDI span {}", gateway.span)),
                }
                return span;
            }
            Err(e) => {
                let reason = e.to_string();
                status::waiting(&gateway.status_file, info, &reason);
                // Said once per reason, not at every retry.
                if waiting.as_ref() != Some(&reason) {
                    let status = format!("DAHDI span {} unavailable ({reason}); looking again every {}s", gateway.span, SPAN_RETRY.as_secs());
                    match waiting {
                        Some(_) => notifier.notify(&format!("STATUS={status}")),
                        None => notifier.ready(&status),
                    }
                    log::warn!("{status}");
                    waiting = Some(reason);
                }
                tokio::time::sleep(SPAN_RETRY).await;
            }
        }
    }
}

async fn serve(edge: Edge, trunk: TrunkHandle, task: JoinHandle<Result<(), SpanError>>) -> Result<()> {
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let stop = async {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => info!("interrupted, stopping"),
            _ = sigterm.recv() => info!("SIGTERM, stopping"),
        }
    };
    let stopped = edge.run(trunk, stop).await;
    if task.is_finished() {
        task.await.context("trunk task")?.context("trunk stopped")?;
    }
    Ok(stopped?)
}
