//! Opening the database: migrations, durability pragmas, clear errors for bad locations.
mod common;

use common::TempDir;
use holdfast_store::{Secret, Store, StoreError};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, Row};

#[tokio::test]
async fn creates_parent_dirs_and_applies_migrations() {
    let dir = TempDir::new("open");
    let path = dir.path().join("var/lib/holdfast/registrar.db");
    let store = Store::open(&path).await.unwrap();
    assert!(path.exists());
    assert!(store.list_users().await.unwrap().is_empty());
    assert!(store.list_bindings().await.unwrap().is_empty());
    store.close().await;
    // Opening again does not re-run or fail on the applied migrations.
    let store = Store::open(&path).await.unwrap();
    store.close().await;

    let mut conn = SqliteConnectOptions::new()
        .filename(&path)
        .connect()
        .await
        .unwrap();
    let tables: Vec<String> = sqlx::query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect();
    assert_eq!(
        tables,
        ["_sqlx_migrations", "admin_password", "bindings", "cdrs", "secrets", "users", "users_version"]
    );
    let mode: String = sqlx::query("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!(mode, "wal");
    conn.close().await.unwrap();
}

#[tokio::test]
async fn directory_under_a_file_is_a_clear_error() {
    let dir = TempDir::new("notdir");
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let err = Store::open(&file.join("sub/registrar.db"))
        .await
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::CreateDir { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("cannot create database directory") && msg.contains("plain-file"),
        "{msg}"
    );
}

#[tokio::test]
async fn read_only_location_is_a_clear_error() {
    // /proc refuses new files even to root, unlike a chmod'ed directory.
    let err = Store::open(std::path::Path::new("/proc/holdfast/registrar.db"))
        .await
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::CreateDir { .. }), "{err:?}");
    let err = Store::open(std::path::Path::new("/proc/registrar.db"))
        .await
        .err()
        .unwrap();
    // The lock file beside the database is the first thing created there.
    assert!(matches!(err, StoreError::Lock { .. }), "{err:?}");
    assert!(err.to_string().contains("/proc/registrar.db"), "{err}");
}

#[tokio::test]
async fn a_directory_in_place_of_the_database_is_a_clear_error() {
    let dir = TempDir::new("dirdb");
    let err = Store::open(dir.path()).await.err().unwrap();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
}

#[tokio::test]
async fn users_version_moves_with_every_change() {
    let dir = TempDir::new("version");
    let store = Store::open(&dir.path().join("v.db")).await.unwrap();
    let v0 = store.users_version().await.unwrap();
    store.add_user("a", "d", "pw").await.unwrap();
    let v1 = store.users_version().await.unwrap();
    assert!(v1 > v0);
    store
        .add_users("d", &[("b".into(), Secret::Password("x".into())), ("c".into(), Secret::Password("y".into()))])
        .await
        .unwrap();
    let v2 = store.users_version().await.unwrap();
    assert!(v2 > v1);
    assert!(store
        .add_users("d", &[("e".into(), Secret::Password("x".into())), ("a".into(), Secret::Password("y".into()))])
        .await
        .is_err());
    assert_eq!(
        store.list_users().await.unwrap().len(),
        3,
        "a failed batch adds nobody"
    );
    store.remove_user("b", "d").await.unwrap();
    assert!(store.users_version().await.unwrap() > v2);
}

/// Four "services" (threads with runtimes of their own, as separate processes would be) open a
/// new database at once: each must find it migrated exactly once.
#[test]
fn services_opening_a_new_database_together_migrate_it_once() {
    let dir = TempDir::new("together");
    let path = dir.path().join("shared.db");
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(async { Store::open(&path).await.map(|_| ()).map_err(|e| e.to_string()) })
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap().unwrap_or_else(|e| panic!("{e}"));
    }
}
