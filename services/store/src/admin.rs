//! The web admin's password (`sbactl admin passwd`, checked by sba-web's login): stored as an
//! Argon2id hash with its own salt, never the password.
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::error::StoreError;
use crate::store::Store;

impl Store {
    /// Replaces the admin password (Argon2id, the crate's default cost: 19 MiB, 2 passes).
    pub async fn set_admin_password(&self, password: &str) -> Result<(), StoreError> {
        let salt = SaltString::generate(&mut OsRng);
        let phc = Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| StoreError::Hash(e.to_string()))?
            .to_string();
        let now = holdfast_runtime::unix_now().as_secs();
        sqlx::query("INSERT OR REPLACE INTO admin_password (id, phc, updated_at) VALUES (1, ?, ?)")
            .bind(phc)
            .bind(i64::try_from(now).unwrap_or(i64::MAX))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The stored hash, None before `sbactl admin passwd` was run.
    pub async fn admin_password_hash(&self) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT phc FROM admin_password WHERE id = 1").fetch_optional(&self.pool).await?)
    }
}

/// Whether `password` matches `phc`. Takes tens of milliseconds of CPU by design: call it off
/// the event loop.
pub fn verify_admin_password(phc: &str, password: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_password_is_stored_hashed_and_verifies() {
        let dir = std::env::temp_dir().join(format!("holdfast-store-admin-{}", std::process::id()));
        let store = Store::open(&dir.join("db")).await.unwrap();
        assert_eq!(store.admin_password_hash().await.unwrap(), None);
        store.set_admin_password("correct horse").await.unwrap();
        let phc = store.admin_password_hash().await.unwrap().unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(!phc.contains("correct horse"));
        assert!(verify_admin_password(&phc, "correct horse"));
        assert!(!verify_admin_password(&phc, "correct horsE"));
        assert!(!verify_admin_password("garbage", "correct horse"));
        // A reader (sba-web) sees it through a read-only connection, and cannot write.
        let ro = Store::open_read_only(&dir.join("db")).await.unwrap();
        assert_eq!(ro.admin_password_hash().await.unwrap(), Some(phc));
        assert!(ro.set_admin_password("x").await.is_err());
        ro.close().await;
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
