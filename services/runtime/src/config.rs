//! How a service reads the appliance's TOML file (/etc/sba/sba.toml, or its embedded default),
//! and errors that name the key and the line. Each service describes and checks only its own
//! sections (`Loaded::parse`); reading, the embedded default and the error's shape are here.
use serde::de::DeserializeOwned;
use std::ops::Range;
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

/// What a service reads from the appliance file: its sections, checked.
pub trait Loaded: Sized {
    /// The service's default.toml, embedded in its binary (each service tests that it parses).
    const DEFAULT: &'static str;

    /// Reads and checks the service's sections of `source`.
    fn from_source(source: &Source) -> Result<Self, ConfigError>;

    /// `text` of a file errors call `file`.
    fn parse(text: &str, file: &str) -> Result<Self, ConfigError> {
        Self::from_source(&Source { text, file })
    }

    fn load(path: &Path) -> Result<Self, ConfigError> {
        let (text, file) = read(path)?;
        Self::parse(&text, &file)
    }

    fn embedded() -> Self {
        Self::parse(Self::DEFAULT, "embedded default").unwrap_or_else(|e| panic!("{e}"))
    }

    /// The file given (`--config`), else the embedded default.
    fn load_or_embedded(path: Option<&Path>) -> Result<Self, ConfigError> {
        match path {
            Some(path) => Self::load(path),
            None => Ok(Self::embedded()),
        }
    }
}

/// One appliance file's text and the name its errors call it by.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub text: &'a str,
    pub file: &'a str,
}

impl Source<'_> {
    /// The sections `T` describes; the other services' sections pass unread.
    pub fn sections<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        toml::from_str(self.text).map_err(|e| located(self.text, self.file, &e))
    }

    /// `[section] key` is wrong: the error names the line it is set on (0 when it is not set, and
    /// its default is what is wrong).
    pub fn key_error(&self, section: &str, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Key {
            file: self.file.to_string(),
            line: line_of(self.text, section, key).unwrap_or(0),
            key: format!("{section}.{key}"),
            message: message.into(),
        }
    }

    /// The value at `span` (a `toml::Spanned`'s), named `key`, is wrong.
    pub fn span_error(&self, span: Range<usize>, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::Key {
            file: self.file.to_string(),
            line: line_at(self.text, span.start),
            key: key.into(),
            message: message.into(),
        }
    }

    /// What is wrong is no single key.
    pub fn error(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::Other { file: self.file.to_string(), message: message.into() }
    }
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

    #[derive(Debug, serde::Deserialize)]
    struct Sections {
        a: A,
    }
    #[derive(Debug, serde::Deserialize)]
    struct A {
        x: u32,
    }
    impl Loaded for A {
        const DEFAULT: &'static str = "[a]\nx = 1\n";
        fn from_source(source: &Source) -> Result<A, ConfigError> {
            let a = source.sections::<Sections>()?.a;
            if a.x == 0 {
                return Err(source.key_error("a", "x", "must be at least 1"));
            }
            Ok(a)
        }
    }

    #[test]
    fn a_service_checks_its_section_and_errors_name_the_file_line_and_key() {
        assert_eq!(A::embedded().x, 1);
        assert_eq!(A::load_or_embedded(None).unwrap().x, 1);
        let e = A::parse("[other]\ny = 2\n[a]\nx = 0\n", "sba.toml").unwrap_err().to_string();
        assert_eq!(e, "sba.toml line 4: key `a.x`: must be at least 1");
        let e = A::parse("[a]\nx = \"one\"\n", "sba.toml").unwrap_err().to_string();
        assert!(e.starts_with("sba.toml line 2: key `a.x`"), "{e}");
        let missing = std::env::temp_dir().join(format!("holdfast-no-such-config-{}.toml", std::process::id()));
        let e = A::load_or_embedded(Some(&missing)).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }), "{e}");
    }
}
