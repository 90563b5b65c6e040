//! The configuration page's check: sba.toml read as each service reads it (sba-registrar's,
//! sba-mediation's and sba-gateway's own parsers, sba-web's sections, and TOML syntax for the
//! whole file), so an admin sees a mistake, with its key and line, before a service restarts on
//! it. The result is kept until the file changes.
use holdfast_runtime::config::Loaded;
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
                // The registrar reads the whole file whatever it holds (no [registrar]: defaults).
                if let Err(e) = sba_registrar::config::Config::parse(&text, &name) {
                    errors.push(("sba-registrar", e.to_string()));
                }
                if table.contains_key("mediation") {
                    if let Err(e) = sba_mediation::config::Config::parse(&text, &name) {
                        errors.push(("sba-mediation", e.to_string()));
                    }
                }
                if table.contains_key("gateway") {
                    if let Err(e) = sba_gateway::config::Gateway::parse(&text, &name) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(name: &str, text: &str) -> Vec<(&'static str, String)> {
        let file = std::env::temp_dir().join(format!("sba-web-config-check-{}-{name}.toml", std::process::id()));
        std::fs::write(&file, text).expect("write");
        let check = check(&file, None);
        let _ = std::fs::remove_file(&file);
        check.errors
    }

    #[test]
    fn registrar_sections_are_checked_by_the_registrars_parser() {
        assert_eq!(errors_of("ok", "[registrar]\ndomain = \"branch.example\"\n"), vec![]);
        let errors = errors_of("expiry", "[registrar]\ndomain = \"branch.example\"\nmin_expires = 600\nmax_expires = 60\n");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].0, "sba-registrar");
        assert!(errors[0].1.contains("line 4") && errors[0].1.contains("registrar.max_expires"), "{errors:?}");
        let errors = errors_of("central", "[central]\nproxies = []\n");
        assert!(errors.iter().any(|(who, e)| *who == "sba-registrar" && e.contains("line 2") && e.contains("central.proxies")), "{errors:?}");
        let errors = errors_of("unknown", "[survival]\nno_answer = 5\n");
        assert!(errors.iter().any(|(who, e)| *who == "sba-registrar" && e.contains("survival.no_answer")), "{errors:?}");
    }
}
