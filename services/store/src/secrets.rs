//! Secrets the services keep across restarts: created at random on first use, then read back.
use sqlx::Row;

use crate::error::StoreError;
use crate::store::Store;

impl Store {
    /// The 32-byte secret called `name`; `fresh` is stored if there is none yet (the first
    /// writer wins when two services ask at once).
    pub async fn secret(&self, name: &str, fresh: [u8; 32]) -> Result<[u8; 32], StoreError> {
        sqlx::query("INSERT OR IGNORE INTO secrets (name, value) VALUES (?, ?)")
            .bind(name)
            .bind(&fresh[..])
            .execute(&self.pool)
            .await?;
        let row = sqlx::query("SELECT value FROM secrets WHERE name = ?")
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        let value: Vec<u8> = row.try_get(0)?;
        value.try_into().map_err(|v: Vec<u8>| StoreError::Corrupt {
            column: "secrets.value",
            value: format!("{} bytes", v.len()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_secret_is_made_once_and_kept() {
        let dir = std::env::temp_dir().join(format!("holdfast-store-secret-{}", std::process::id()));
        let store = Store::open(&dir.join("db")).await.unwrap();
        let first = store.secret("route", [1; 32]).await.unwrap();
        assert_eq!(first, [1; 32]);
        assert_eq!(store.secret("route", [2; 32]).await.unwrap(), [1; 32]);
        assert_eq!(store.secret("other", [3; 32]).await.unwrap(), [3; 32]);
        store.close().await;
        let again = Store::open(&dir.join("db")).await.unwrap();
        assert_eq!(again.secret("route", [4; 32]).await.unwrap(), [1; 32]);
        again.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
