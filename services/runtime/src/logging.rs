//! Logs go to journald on the appliance and to stderr on a laptop or in tests.
use log::{LevelFilter, Log, Metadata, Record};
use std::io::Write;
use std::path::Path;

const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// Sends `log` records to journald when its socket exists, else to stderr. `RUST_LOG`-style level
/// names (error, warn, info, debug, trace) in `HOLDFAST_LOG` set the level; info by default.
pub fn init_logging(service: &str) {
    let level = std::env::var("HOLDFAST_LOG")
        .ok()
        .and_then(|s| s.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::Info);
    let journal = Path::new(JOURNAL_SOCKET).exists() && std::env::var_os("HOLDFAST_LOG_STDERR").is_none();
    let installed = if journal {
        systemd_journal_logger::JournalLog::new()
            .map(|j| j.with_syslog_identifier(service.to_string()))
            .ok()
            .and_then(|j| j.install().ok())
            .is_some()
    } else {
        false
    };
    if !installed {
        // Only fails if a logger is already set, in which case that one stays.
        let _ = log::set_boxed_logger(Box::new(StderrLog { service: service.to_string() }));
    }
    log::set_max_level(level);
}

struct StderrLog {
    service: String,
}

impl Log for StderrLog {
    fn enabled(&self, meta: &Metadata) -> bool {
        quiet_enough(meta)
    }

    fn log(&self, record: &Record) {
        if !quiet_enough(record.metadata()) {
            return;
        }
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{} {} {}: {}", self.service, record.level(), record.target(), record.args());
    }

    fn flush(&self) {}
}

/// sqlx logs every statement at debug; only its warnings matter to an operator.
fn quiet_enough(meta: &Metadata) -> bool {
    !meta.target().starts_with("sqlx") || meta.level() <= log::Level::Warn
}
