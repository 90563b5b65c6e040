//! Users: HA1 round trip, never a password on disk.
mod common;

use common::TempDir;
use holdfast_store::{HashAlgorithm, Secret, Store, StoreError, UserName};
use sqlx::Row;

const PASSWORD: &str = "correct-horse-battery-staple";

#[tokio::test]
async fn users_round_trip_with_their_ha1s() {
    let dir = TempDir::new("users");
    let store = Store::open(&dir.path().join("db")).await.unwrap();
    store
        .add_user("alice", "branch.example.org", PASSWORD)
        .await
        .unwrap();
    store
        .add_user("bob", "branch.example.org", "builder")
        .await
        .unwrap();
    store
        .add_user("alice", "other.example.org", "x")
        .await
        .unwrap();

    let err = store
        .add_user("alice", "branch.example.org", "again")
        .await
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::UserExists { .. }), "{err:?}");

    assert_eq!(
        store.list_users().await.unwrap(),
        [
            UserName {
                name: "alice".into(),
                domain: "branch.example.org".into()
            },
            UserName {
                name: "bob".into(),
                domain: "branch.example.org".into()
            },
            UserName {
                name: "alice".into(),
                domain: "other.example.org".into()
            },
        ]
    );

    // HA1 = H(user:realm:password) with realm = domain (values from md5sum/sha256sum).
    let md5 = store
        .user_ha1("bob", "branch.example.org", HashAlgorithm::Md5)
        .await
        .unwrap();
    let sha = store
        .user_ha1("bob", "branch.example.org", HashAlgorithm::Sha256)
        .await
        .unwrap();
    assert_eq!(
        md5.as_deref(),
        Some(hex_md5("bob:branch.example.org:builder").as_str())
    );
    assert_eq!(
        sha.as_deref(),
        Some(hex_sha256("bob:branch.example.org:builder").as_str())
    );
    assert_eq!(
        store
            .user_ha1("carol", "branch.example.org", HashAlgorithm::Md5)
            .await
            .unwrap(),
        None
    );

    let all = store.load_users().await.unwrap();
    assert_eq!(all.len(), 3);
    let bob = all.iter().find(|u| u.name == "bob").unwrap();
    assert_eq!(bob.ha1(HashAlgorithm::Md5), md5.as_deref());
    assert_eq!(bob.ha1(HashAlgorithm::Sha256), sha.as_deref());

    assert!(store
        .remove_user("alice", "other.example.org")
        .await
        .unwrap());
    assert!(!store
        .remove_user("alice", "other.example.org")
        .await
        .unwrap());
    assert_eq!(store.load_users().await.unwrap().len(), 2);
    store.close().await;
}

#[tokio::test]
async fn no_password_column_and_no_password_bytes_on_disk() {
    let dir = TempDir::new("nopass");
    let path = dir.path().join("db");
    let store = Store::open(&path).await.unwrap();
    store
        .add_user("alice", "branch.example.org", PASSWORD)
        .await
        .unwrap();

    let mut conn = store_conn(&path).await;
    let tables: Vec<String> = sqlx::query("SELECT name FROM sqlite_master WHERE type = 'table'")
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for table in tables {
        let columns = sqlx::query(&format!("PRAGMA table_info({table})"))
            .fetch_all(&mut conn)
            .await
            .unwrap();
        for column in columns {
            let name: String = column.get("name");
            assert!(!name.to_lowercase().contains("pass"), "{table}.{name}");
        }
    }
    drop(conn);
    store.close().await;

    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes
            .windows(PASSWORD.len())
            .any(|w| w == PASSWORD.as_bytes()));
    }
}

async fn store_conn(path: &std::path::Path) -> sqlx::SqliteConnection {
    use sqlx::ConnectOptions;
    sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .connect()
        .await
        .unwrap()
}

fn hex_md5(s: &str) -> String {
    command_digest("md5sum", s)
}

fn hex_sha256(s: &str) -> String {
    command_digest("sha256sum", s)
}

/// Digests from coreutils, independent of the code under test.
fn command_digest(tool: &str, input: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new(tool)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_user_imported_by_md5_ha1_has_no_sha256_ha1() {
    let dir = TempDir::new("ha1-import");
    let store = Store::open(&dir.path().join("db")).await.unwrap();
    let md5 = hex_md5("dan:branch.example.org:from-kamailio");
    let users = [("dan".to_string(), Secret::Ha1Md5(md5.to_ascii_uppercase()))];
    store.add_users("branch.example.org", &users).await.unwrap();
    let dan = store.load_users().await.unwrap().pop().unwrap();
    assert_eq!(dan.ha1(HashAlgorithm::Md5), Some(md5.as_str()), "stored lower-case");
    assert_eq!(dan.ha1(HashAlgorithm::Sha256), None, "an empty HA1 is none, never a digest of nothing");
    assert_eq!(store.user_ha1("dan", "branch.example.org", HashAlgorithm::Sha256).await.unwrap(), None);
    store.close().await;
}
