//! SIP users, stored as their HA1 digests for MD5 and SHA-256 with realm = domain.

use sqlx::Row;

use crate::error::StoreError;
use crate::ha1::{ha1, HashAlgorithm};
use crate::store::Store;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserName {
    pub name: String,
    pub domain: String,
}

/// What the registrar needs to verify a user's digest: never the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub name: String,
    pub domain: String,
    pub ha1_md5: String,
    pub ha1_sha256: String,
}

impl UserRecord {
    /// None when the user was imported without this algorithm's HA1.
    pub fn ha1(&self, alg: HashAlgorithm) -> Option<&str> {
        let ha1 = match alg {
            HashAlgorithm::Md5 => &self.ha1_md5,
            HashAlgorithm::Sha256 => &self.ha1_sha256,
        };
        Some(ha1.as_str()).filter(|h| !h.is_empty())
    }
}

/// What a new user is known by: a password (both HA1s computed from it), or an MD5 HA1 taken
/// from another registrar (Kamailio's `subscriber.ha1`) whose realm is this domain. Such a user
/// has no SHA-256 HA1 (stored empty, which `UserRecord::ha1` reports as none).
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    Password(String),
    Ha1Md5(String),
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Secret::Password(_) => "Password(..)",
            Secret::Ha1Md5(_) => "Ha1Md5(..)",
        })
    }
}

impl Store {
    /// Adds a user; the password only passes through to compute the HA1s.
    pub async fn add_user(
        &self,
        name: &str,
        domain: &str,
        password: &str,
    ) -> Result<(), StoreError> {
        self.add_users(domain, &[(name.to_owned(), Secret::Password(password.to_owned()))])
            .await
    }

    /// Removes a user; `false` if there was none.
    pub async fn remove_user(&self, name: &str, domain: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM users WHERE name = ? AND domain = ?")
            .bind(name)
            .bind(domain)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn list_users(&self) -> Result<Vec<UserName>, StoreError> {
        let rows = sqlx::query("SELECT name, domain FROM users ORDER BY domain, name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(UserName {
                    name: row.try_get("name")?,
                    domain: row.try_get("domain")?,
                })
            })
            .collect()
    }

    pub async fn user_ha1(
        &self,
        name: &str,
        domain: &str,
        alg: HashAlgorithm,
    ) -> Result<Option<String>, StoreError> {
        let sql = match alg {
            HashAlgorithm::Md5 => "SELECT ha1_md5 FROM users WHERE name = ? AND domain = ?",
            HashAlgorithm::Sha256 => "SELECT ha1_sha256 FROM users WHERE name = ? AND domain = ?",
        };
        let row = sqlx::query(sql)
            .bind(name)
            .bind(domain)
            .fetch_optional(&self.pool)
            .await?;
        let ha1: Option<String> = row.map(|r| r.try_get(0)).transpose()?;
        Ok(ha1.filter(|h| !h.is_empty()))
    }

    /// Every user with both HA1s, for the registrar to hold in memory.
    pub async fn load_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let rows = sqlx::query("SELECT name, domain, ha1_md5, ha1_sha256 FROM users")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(UserRecord {
                    name: row.try_get("name")?,
                    domain: row.try_get("domain")?,
                    ha1_md5: row.try_get("ha1_md5")?,
                    ha1_sha256: row.try_get("ha1_sha256")?,
                })
            })
            .collect()
    }

    /// Changes whenever a user is added, removed or changed.
    pub async fn users_version(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT version FROM users_version WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Adds many users of one domain in one transaction (provisioning a branch); all or none.
    pub async fn add_users(
        &self,
        domain: &str,
        users: &[(String, Secret)],
    ) -> Result<(), StoreError> {
        let created_at = holdfast_runtime::unix_secs();
        let mut tx = self.pool.begin().await?;
        for (name, secret) in users {
            let (md5, sha256) = match secret {
                Secret::Password(password) => (
                    ha1(HashAlgorithm::Md5, name, domain, password),
                    ha1(HashAlgorithm::Sha256, name, domain, password),
                ),
                Secret::Ha1Md5(md5) => (md5.to_ascii_lowercase(), String::new()),
            };
            let result = sqlx::query(
                "INSERT INTO users (name, domain, ha1_md5, ha1_sha256, created_at) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(name)
            .bind(domain)
            .bind(md5)
            .bind(sha256)
            .bind(created_at)
            .execute(&mut *tx)
            .await;
            match result {
                Ok(_) => {}
                Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                    return Err(StoreError::UserExists {
                        name: name.clone(),
                        domain: domain.to_owned(),
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
        tx.commit().await?;
        Ok(())
    }
}
