//! Process limits a service raises for itself at start.
use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Raises the soft limit on open files to the hard one. systemd starts services with a soft
/// limit of 1,024 (the hard one is far higher): below a thousand concurrent TCP phones, or the
/// media relay's sockets (four a call, kept bound for the next call), that would be reached.
pub fn raise_open_files_limit() {
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => {
            if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                log::warn!("open files limit stays at {soft}: {e}");
            }
        }
        Ok(_) => {}
        Err(e) => log::warn!("reading the open files limit: {e}"),
    }
}
