//! Errors in the appliance's TOML file that name the key and the line, shared by the services
//! that read /etc/sba/sba.toml (each parses its own sections).
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: {source}")]
    Read { file: String, source: std::io::Error },
    #[error("{file} line {line}: key `{key}`: {message}")]
    Key { file: String, line: usize, key: String, message: String },
    #[error("{file}: {message}")]
    Other { file: String, message: String },
}

/// The file's text and the name errors call it by.
pub fn read(path: &Path) -> Result<(String, String), ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { file: file.clone(), source })?;
    Ok((text, file))
}

/// The 1-based line of byte `offset`.
pub fn line_at(text: &str, offset: usize) -> usize {
    text.get(..offset.min(text.len())).unwrap_or_default().matches('\n').count() + 1
}

/// Turns a toml error into one that names the line and the `section.key` on it.
pub fn located(text: &str, file: &str, err: &toml::de::Error) -> ConfigError {
    let message = err.message().to_string();
    let Some(span) = err.span() else {
        return ConfigError::Other { file: file.to_string(), message };
    };
    let before = text.get(..span.start.min(text.len())).unwrap_or_default();
    let line = line_at(text, span.start);
    let section = before.lines().rev().find_map(section_header).map(str::to_string);
    let key_on_line = text.lines().nth(line - 1).and_then(|l| l.split_once('=')).map(|(k, _)| k.trim().to_string());
    let key = match (section, key_on_line) {
        (Some(s), Some(k)) => format!("{s}.{k}"),
        (None, Some(k)) => k,
        (Some(s), None) => s,
        (None, None) => "(top level)".to_string(),
    };
    ConfigError::Key { file: file.to_string(), line, key, message }
}

/// The line where `key` is set inside `[section]`, for errors found after parsing.
pub fn line_of(text: &str, section: &str, key: &str) -> Option<usize> {
    let mut current = "";
    for (i, l) in text.lines().enumerate() {
        if let Some(s) = section_header(l) {
            current = s;
        } else if current == section && l.split_once('=').is_some_and(|(k, _)| k.trim() == key) {
            return Some(i + 1);
        }
    }
    None
}

/// `x` of a `[x]` or `[[x]]` line.
fn section_header(line: &str) -> Option<&str> {
    let t = line.trim();
    t.strip_prefix("[[")
        .and_then(|t| t.strip_suffix("]]"))
        .or_else(|| t.strip_prefix('[').and_then(|t| t.strip_suffix(']')))
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_section_key_and_line() {
        let text = "[a]\nx = 1\n\n[[b.c]]\ny = no\n";
        let err = toml::from_str::<toml::Table>(text).unwrap_err();
        let e = located(text, "f.toml", &err).to_string();
        assert!(e.starts_with("f.toml line 5: key `b.c.y`"), "{e}");
        assert_eq!(line_of(text, "a", "x"), Some(2));
        assert_eq!(line_of(text, "b.c", "y"), Some(5));
        assert_eq!(line_at(text, 0), 1);
        assert_eq!(line_of(text, "a", "y"), None);
    }
}
