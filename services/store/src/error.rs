use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create database directory {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open database {}: {source}", path.display())]
    Open { path: PathBuf, source: sqlx::Error },
    #[error("cannot create or lock {} (the services open the database one at a time): {source}", path.display())]
    Lock { path: PathBuf, source: std::io::Error },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database disk is full: {0}")]
    DiskFull(sqlx::Error),
    #[error("database is read-only: {0}")]
    ReadOnly(sqlx::Error),
    #[error("database I/O error: {0}")]
    Io(sqlx::Error),
    #[error("database error: {0}")]
    Db(sqlx::Error),
    #[error("user {name}@{domain} already exists")]
    UserExists { name: String, domain: String },
    #[error("stored {column} holds an invalid value {value:?}")]
    Corrupt { column: &'static str, value: String },
    #[error("cannot encode binding operations: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("hashing the password: {0}")]
    Hash(String),
    #[error("the binding writer has stopped")]
    WriterStopped,
    #[error("the binding writer's queue is full")]
    Busy,
}

// SQLite primary result codes (the low byte of the extended code).
const SQLITE_READONLY: i32 = 8;
const SQLITE_IOERR: i32 = 10;
const SQLITE_FULL: i32 = 13;

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        let primary = e
            .as_database_error()
            .and_then(|db| db.code())
            .and_then(|code| code.parse::<i32>().ok())
            .map(|code| code & 0xff);
        match primary {
            Some(SQLITE_FULL) => StoreError::DiskFull(e),
            Some(SQLITE_READONLY) => StoreError::ReadOnly(e),
            Some(SQLITE_IOERR) => StoreError::Io(e),
            _ => StoreError::Db(e),
        }
    }
}
