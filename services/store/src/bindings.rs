//! Registrar bindings: one row per AOR and contact.
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use crate::error::StoreError;
use crate::store::Store;

/// Where a binding was learnt: from a REGISTER handled here, or copied from the central
/// registrar while the WAN was up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Local,
    Central,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Local => "local",
            Origin::Central => "central",
        }
    }

    fn parse(s: &str) -> Result<Origin, StoreError> {
        match s {
            "local" => Ok(Origin::Local),
            "central" => Ok(Origin::Central),
            other => Err(StoreError::Corrupt {
                column: "origin",
                value: other.to_owned(),
            }),
        }
    }
}

/// One change to the bindings table.
#[derive(Debug, Clone, PartialEq)]
pub enum BindingOp {
    Upsert(Binding),
    Delete {
        aor: String,
        contact: String,
    },
    DeleteAor {
        aor: String,
    },
    /// Deletes every binding with `expires_at <= now` (unix seconds).
    Expire {
        now: i64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// `sip:user@domain`
    pub aor: String,
    /// The Contact URI.
    pub contact: String,
    /// `+sip.instance` (RFC 5626).
    pub instance: Option<String>,
    pub reg_id: Option<u32>,
    pub call_id: String,
    pub cseq: u32,
    pub q: Option<f32>,
    /// Unix seconds.
    pub expires_at: i64,
    /// Path header URIs (RFC 3327), in order.
    pub path: Vec<String>,
    /// Source address of the REGISTER, `ip:port`.
    pub source: String,
    pub transport: String,
    pub user_agent: Option<String>,
    /// Unix seconds.
    pub updated_at: i64,
    pub origin: Origin,
}

macro_rules! columns {
    () => {
        "aor, contact, instance, reg_id, call_id, cseq, q, expires_at, path, source, transport, \
         user_agent, updated_at, origin"
    };
}

// Path entries are URIs, which cannot hold a raw line break.
pub(crate) const PATH_SEPARATOR: &str = "\n";

fn from_row(row: &SqliteRow) -> Result<Binding, StoreError> {
    let path: String = row.try_get("path")?;
    let origin: String = row.try_get("origin")?;
    Ok(Binding {
        aor: row.try_get("aor")?,
        contact: row.try_get("contact")?,
        instance: row.try_get("instance")?,
        reg_id: row.try_get("reg_id")?,
        call_id: row.try_get("call_id")?,
        cseq: row.try_get("cseq")?,
        q: row.try_get("q")?,
        expires_at: row.try_get("expires_at")?,
        path: path
            .split(PATH_SEPARATOR)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect(),
        source: row.try_get("source")?,
        transport: row.try_get("transport")?,
        user_agent: row.try_get("user_agent")?,
        updated_at: row.try_get("updated_at")?,
        origin: Origin::parse(&origin)?,
    })
}

impl Store {
    /// The bindings still valid at `now` (unix seconds); expired ones are deleted on the way.
    pub async fn load_bindings(&self, now: i64) -> Result<Vec<Binding>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let dropped = sqlx::query("DELETE FROM bindings WHERE expires_at <= ?")
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let rows = sqlx::query(concat!("SELECT ", columns!(), " FROM bindings"))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        if dropped > 0 {
            log::info!("dropped {dropped} expired bindings at load");
        }
        rows.iter().map(from_row).collect()
    }

    /// How many bindings are still valid at `now` (unix seconds), counted in SQLite: a
    /// /metrics scrape must not read every row of a large branch.
    pub async fn count_bindings(&self, now: i64) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM bindings WHERE expires_at > ?")
            .bind(now)
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Every stored binding, expired or not, ordered by AOR and contact.
    pub async fn list_bindings(&self) -> Result<Vec<Binding>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM bindings ORDER BY aor, contact"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }
}
