//! Opening the database: directories, pragmas that make a COMMIT durable, migrations.
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::ConnectOptions;

use crate::error::StoreError;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The database: a small pool for reads and administrative writes; binding writes go through
/// a `BindingWriter`.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: SqlitePool,
    options: SqliteConnectOptions,
    path: PathBuf,
}

impl Store {
    /// Opens (creating it and its parent directories if needed) and migrates the database.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::CreateDir {
                path: parent.to_owned(),
                source,
            })?;
        }
        let open_error = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let options = SqliteConnectOptions::from_str("sqlite:")
            .map_err(open_error)?
            .filename(path)
            .create_if_missing(true)
            // WAL + FULL: a committed transaction is fsynced, so an acknowledged REGISTER
            // survives power loss, and readers never block the writer.
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await
            .map_err(open_error)?;
        // The appliance's services start together and share this database; sqlx takes no lock
        // around SQLite migrations, so two of them would apply the same one twice.
        let mut lock_name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        lock_name.push(".migrate-lock");
        let lock_path = path.with_file_name(lock_name);
        let lock_error = |source| StoreError::Lock { path: lock_path.clone(), source };
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(lock_error)?;
        lock.lock().map_err(lock_error)?;
        let migrated = MIGRATOR.run(&pool).await;
        drop(lock);
        migrated?;
        log::info!("opened database {}", path.display());
        Ok(Store {
            pool,
            options,
            path: path.to_owned(),
        })
    }

    /// Opens an existing database for reading only (sba-web): no migrations, and no write lock
    /// is ever taken, so readers never hold up the services' commits (WAL).
    pub async fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        let open_error = |source| StoreError::Open { path: path.to_owned(), source };
        let options = SqliteConnectOptions::from_str("sqlite:")
            .map_err(open_error)?
            .filename(path)
            .read_only(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new().max_connections(2).connect_with(options.clone()).await.map_err(open_error)?;
        Ok(Store { pool, options, path: path.to_owned() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A connection of its own, outside the pool (for the binding writer).
    pub(crate) async fn dedicated_connection(&self) -> Result<SqliteConnection, StoreError> {
        self.options
            .connect()
            .await
            .map_err(|source| StoreError::Open {
                path: self.path.clone(),
                source,
            })
    }

    /// Closes every pooled connection, checkpointing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::{Connection, Row};

    async fn pragma(conn: &mut SqliteConnection, name: &str) -> i64 {
        sqlx::query(&format!("PRAGMA {name}"))
            .fetch_one(conn)
            .await
            .unwrap()
            .get(0)
    }

    #[tokio::test]
    async fn every_connection_is_durable_and_waits_for_locks() {
        let dir =
            std::env::temp_dir().join(format!("holdfast-store-pragmas-{}", std::process::id()));
        let store = Store::open(&dir.join("db")).await.unwrap();
        let mut pooled = store.pool.acquire().await.unwrap();
        let mut dedicated = store.dedicated_connection().await.unwrap();
        for conn in [&mut *pooled, &mut dedicated] {
            // 2 = FULL: the WAL is fsynced at every commit.
            assert_eq!(pragma(conn, "synchronous").await, 2);
            assert_eq!(pragma(conn, "busy_timeout").await, 5000);
        }
        dedicated.close().await.unwrap();
        drop(pooled);
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
