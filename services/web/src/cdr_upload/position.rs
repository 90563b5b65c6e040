//! The last call record the central site accepted, on disk beside the database: written to a
//! temporary file, fsynced, renamed over the old one, and the directory fsynced, so after a
//! power cut it is the old position or the new one.
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum PositionError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: not an upload position ({text:?})", path.display())]
    Corrupt { path: PathBuf, text: String },
}

pub struct Position {
    path: PathBuf,
    last: i64,
}

impl Position {
    pub fn open(path: PathBuf) -> Result<Position, PositionError> {
        let last = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["last_id"].as_i64())
                .ok_or_else(|| PositionError::Corrupt { path: path.clone(), text: text.chars().take(80).collect() })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(source) => return Err(PositionError::Io { path, source }),
        };
        Ok(Position { path, last })
    }

    /// The row id of the last record accepted (0: none yet).
    pub fn last(&self) -> i64 {
        self.last
    }

    pub fn advance(&mut self, last: i64) -> Result<(), PositionError> {
        let io = |source| PositionError::Io { path: self.path.clone(), source };
        let tmp = self.path.with_extension("json.tmp");
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(format!("{{\"last_id\":{last}}}\n").as_bytes()).and_then(|()| f.sync_all()).map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        self.last = last;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_position_survives_reopening() {
        let dir = std::env::temp_dir().join(format!("sba-web-position-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sba.db.cdr-upload.json");
        let mut p = Position::open(path.clone()).unwrap();
        assert_eq!(p.last(), 0);
        p.advance(42).unwrap();
        assert_eq!(Position::open(path.clone()).unwrap().last(), 42);
        std::fs::write(&path, "garbage").unwrap();
        assert!(Position::open(path).is_err(), "a damaged position is an error, never a restart from 0");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
