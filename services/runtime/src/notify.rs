//! sd_notify(3) over $NOTIFY_SOCKET: READY=1, STATUS=, WATCHDOG=1. Written here rather than taken
//! from a crate because it is one datagram and the units depend on its exact behaviour.
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("NOTIFY_SOCKET {path}: {source}")]
    Socket { path: String, source: std::io::Error },
}

/// A handle on the service manager, or nothing when not run under systemd.
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
    watchdog: Option<Duration>,
}

impl Notifier {
    pub fn from_env() -> Result<Notifier, NotifyError> {
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|usec| *usec > 0)
            .map(Duration::from_micros);
        let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
            return Ok(Notifier { target: None, watchdog: None });
        };
        let path = path.to_string_lossy().into_owned();
        let err = |source| NotifyError::Socket { path: path.clone(), source };
        let addr = match path.strip_prefix('@') {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name.as_bytes()).map_err(err)?
            }
            None => SocketAddr::from_pathname(&path).map_err(err)?,
        };
        let sock = UnixDatagram::unbound().map_err(err)?;
        Ok(Notifier { target: Some((sock, addr)), watchdog })
    }

    /// Sends one state string; a missing manager is not an error.
    pub fn notify(&self, state: &str) {
        if let Some((sock, addr)) = &self.target {
            if let Err(e) = sock.send_to_addr(state.as_bytes(), addr) {
                log::warn!("sd_notify {state:?}: {e}");
            }
        }
    }

    pub fn ready(&self, status: &str) {
        self.notify(&format!("READY=1\nSTATUS={status}"));
    }

    /// How often to send WATCHDOG=1: half the interval systemd gave us.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|d| d / 2)
    }
}
