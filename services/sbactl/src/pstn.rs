//! `sbactl pstn call NUMBER`: asks sba-gateway's simulated exchange (its control socket) to call
//! the branch, as a PSTN caller would.
use anyhow::{bail, Context, Result};
use holdfast_runtime::config::Loaded;
use sba_gateway::config::Gateway;
use sba_gateway::exchange::control::CallRequest;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

pub fn call(config: Option<&Path>, number: &str, from: &str, hangup_after: Option<u64>) -> Result<()> {
    let request = CallRequest::new(number, from, hangup_after.map(Duration::from_secs))?;
    let appliance = Path::new(crate::APPLIANCE_CONFIG);
    let gateway = Gateway::load_or_embedded(config.or(appliance.exists().then_some(appliance)))?;
    let socket = &gateway.exchange_control;
    let mut stream = UnixStream::connect(socket).with_context(|| {
        format!("connecting to {} (is sba-gateway running a simulated span?)", socket.display())
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    writeln!(stream, "{request}")?;
    let mut answer = String::new();
    BufReader::new(&stream).read_line(&mut answer).context("reading the exchange's answer")?;
    let answer = answer.trim_end();
    if answer.starts_with("calling") {
        println!("{answer}");
        Ok(())
    } else if answer.is_empty() {
        bail!("the exchange closed the connection without an answer")
    } else {
        bail!("{answer}")
    }
}
