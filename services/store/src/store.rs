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
        // The appliance's services start together and share this database. A fresh database's
        // first connection switches it to WAL, upgrading a read lock to an exclusive one, which
        // SQLite refuses at once (no busy wait) when another process is doing the same; and sqlx
        // takes no lock around SQLite migrations. So the first connection and the migrations
        // happen under a lock file, one process at a time.
        let lock = lock_for_setup(path).await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await
            .map_err(open_error)?;
        MIGRATOR.run(&pool).await?;
        drop(lock);
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

/// Takes the lock file beside `path` that serializes the services' first connection and
/// migrations; it is released when the returned file is dropped.
async fn lock_for_setup(path: &Path) -> Result<std::fs::File, StoreError> {
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
    // Waiting for another process's migrations blocks, so not on the async runtime's thread.
    tokio::task::spawn_blocking(move || lock.lock().map(|()| lock))
        .await
        .map_err(|e| lock_error(std::io::Error::other(e)))?
        .map_err(lock_error)
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

    /// The services start together on a fresh disk: each one's first connection must not find
    /// the database locked by another's switch to WAL.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn services_starting_together_all_open_a_fresh_database() {
        let root =
            std::env::temp_dir().join(format!("holdfast-store-first-open-{}", std::process::id()));
        for round in 0..40 {
            let path = root.join(round.to_string()).join("db");
            let mut opens = tokio::task::JoinSet::new();
            for _ in 0..4 {
                let path = path.clone();
                opens.spawn(async move { Store::open(&path).await });
            }
            while let Some(opened) = opens.join_next().await {
                let store = opened.unwrap().unwrap_or_else(|e| panic!("round {round}: {e}"));
                store.close().await;
            }
        }
        let _ = std::fs::remove_dir_all(root);
    }
}
