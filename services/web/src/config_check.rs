//! The configuration page's check: sba.toml read as each service reads it (sba-mediation's and
//! sba-gateway's own parsers, sba-web's sections, and TOML syntax for the whole file), so an
//! admin sees a mistake, with its key and line, before a service restarts on it. The result
//! is kept until the file changes.
use std::path::{Path, PathBuf};
use std::time::SystemTime;

#[derive(Debug, Clone, Default)]
pub struct Check {
    pub file: PathBuf,
    pub modified: Option<SystemTime>,
    pub checked_at_ms: u64,
    /// (who found it, the error) for each section that does not parse.
    pub errors: Vec<(&'static str, String)>,
}

/// Checks `file` again if it changed since `last`.
pub fn check(file: &Path, last: Option<Check>) -> Check {
    let modified = std::fs::metadata(file).and_then(|m| m.modified()).ok();
    if let Some(last) = last.filter(|l| l.file == file && l.modified == modified && modified.is_some()) {
        return last;
    }
    let mut errors = Vec::new();
    match std::fs::read_to_string(file) {
        Err(e) => errors.push(("sba.toml", format!("{}: {e}", file.display()))),
        Ok(text) => {
            let name = file.display().to_string();
            if let Err(e) = text.parse::<toml::Table>() {
                errors.push(("TOML", holdfast_runtime::config::located(&text, &name, &e).to_string()));
            } else {
                let table: toml::Table = text.parse().unwrap_or_default();
                if table.contains_key("mediation") {
                    if let Err(e) = sba_mediation::config::Config::parse(&text, &name) {
                        errors.push(("sba-mediation", e.to_string()));
                    }
                }
                if table.contains_key("gateway") {
                    if let Err(e) = sba_gateway::config::parse(&text, &name) {
                        errors.push(("sba-gateway", e.to_string()));
                    }
                }
                if let Err(e) = crate::config::parse(&text, &name) {
                    errors.push(("sba-web", e.to_string()));
                }
            }
        }
    }
    Check { file: file.to_owned(), modified, checked_at_ms: holdfast_runtime::unix_ms(), errors }
}
