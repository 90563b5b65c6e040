//! Bindings through the writer: upsert, delete, load with expiry.
mod common;

use common::{binding, TempDir};
use holdfast_store::{BindingOp, Origin, Store};

const NOW: i64 = 1_800_000_000;

#[tokio::test]
async fn upsert_update_delete_and_list() {
    let dir = TempDir::new("bindings");
    let store = Store::open(&dir.path().join("db")).await.unwrap();
    let writer = store.binding_writer().await.unwrap();

    let a1 = binding("alice", 5060, NOW + 3600);
    let a2 = binding("alice", 5062, NOW + 60);
    let mut b1 = binding("bob", 5070, NOW + 600);
    b1.instance = None;
    b1.reg_id = None;
    b1.q = None;
    b1.path.clear();
    b1.user_agent = None;
    b1.origin = Origin::Central;
    writer
        .apply(vec![
            BindingOp::Upsert(a1.clone()),
            BindingOp::Upsert(a2.clone()),
            BindingOp::Upsert(b1.clone()),
        ])
        .await
        .unwrap();
    assert_eq!(
        store.list_bindings().await.unwrap(),
        [a1.clone(), a2.clone(), b1.clone()]
    );

    // A refresh replaces the row of the same AOR and contact.
    let mut a1_refresh = a1.clone();
    a1_refresh.cseq = 2;
    a1_refresh.expires_at = NOW + 7200;
    a1_refresh.source = "198.51.100.4:40000".into();
    writer
        .apply(vec![BindingOp::Upsert(a1_refresh.clone())])
        .await
        .unwrap();
    assert_eq!(
        store.list_bindings().await.unwrap(),
        [a1_refresh.clone(), a2.clone(), b1.clone()]
    );

    writer
        .apply(vec![BindingOp::Delete {
            aor: a2.aor.clone(),
            contact: a2.contact.clone(),
        }])
        .await
        .unwrap();
    assert_eq!(
        store.list_bindings().await.unwrap(),
        [a1_refresh.clone(), b1.clone()]
    );

    // Ops apply in order: wildcard removal, then a new contact.
    let a3 = binding("alice", 5064, NOW + 300);
    writer
        .apply(vec![
            BindingOp::DeleteAor {
                aor: a1.aor.clone(),
            },
            BindingOp::Upsert(a3.clone()),
        ])
        .await
        .unwrap();
    assert_eq!(
        store.list_bindings().await.unwrap(),
        [a3.clone(), b1.clone()]
    );
    store.close().await;
}

#[tokio::test]
async fn operations_within_one_request_apply_in_order() {
    let dir = TempDir::new("order");
    let store = Store::open(&dir.path().join("db")).await.unwrap();
    let writer = store.binding_writer().await.unwrap();
    let first = binding("alice", 5060, NOW + 60);
    let mut second = first.clone();
    second.cseq = 2;
    second.expires_at = NOW + 120;
    let gone = binding("bob", 5060, NOW + 60);
    let back = binding("carol", 5060, NOW + 60);
    writer
        .apply(vec![
            BindingOp::Upsert(first),
            BindingOp::Upsert(second.clone()),
            BindingOp::Upsert(gone.clone()),
            BindingOp::Delete {
                aor: gone.aor.clone(),
                contact: gone.contact.clone(),
            },
            BindingOp::Upsert(back.clone()),
            BindingOp::DeleteAor {
                aor: back.aor.clone(),
            },
            BindingOp::Upsert(back.clone()),
        ])
        .await
        .unwrap();
    assert_eq!(store.list_bindings().await.unwrap(), [second, back]);
    store.close().await;
}

#[tokio::test]
async fn load_returns_live_bindings_and_drops_expired_ones() {
    let dir = TempDir::new("load");
    let path = dir.path().join("db");
    let store = Store::open(&path).await.unwrap();
    let writer = store.binding_writer().await.unwrap();
    let live = binding("alice", 5060, NOW + 1);
    let expired = binding("bob", 5060, NOW);
    let long_gone = binding("carol", 5060, NOW - 86_400);
    writer
        .apply(vec![
            BindingOp::Upsert(live.clone()),
            BindingOp::Upsert(expired),
            BindingOp::Upsert(long_gone),
        ])
        .await
        .unwrap();
    assert_eq!(store.count_bindings(NOW).await.unwrap(), 1);
    drop(writer);
    store.close().await;

    let store = Store::open(&path).await.unwrap();
    assert_eq!(
        store.load_bindings(NOW).await.unwrap(),
        std::slice::from_ref(&live)
    );
    // The expired rows are gone from the table, not just filtered.
    assert_eq!(store.list_bindings().await.unwrap(), [live]);
    store.close().await;
}

#[tokio::test]
async fn expire_deletes_what_is_due_through_the_writer() {
    let dir = TempDir::new("expire");
    let store = Store::open(&dir.path().join("db")).await.unwrap();
    let writer = store.binding_writer().await.unwrap();
    let due = binding("alice", 5060, NOW);
    let later = binding("bob", 5060, NOW + 1);
    writer
        .apply(vec![
            BindingOp::Upsert(due),
            BindingOp::Upsert(later.clone()),
        ])
        .await
        .unwrap();
    writer
        .apply(vec![BindingOp::Expire { now: NOW }])
        .await
        .unwrap();
    assert_eq!(
        store.list_bindings().await.unwrap(),
        std::slice::from_ref(&later)
    );
    store.close().await;
}

#[tokio::test]
async fn concurrent_callers_share_commits() {
    let dir = TempDir::new("group");
    let store = Store::open(&dir.path().join("db")).await.unwrap();
    let writer = store.binding_writer().await.unwrap();
    let mut tasks = Vec::new();
    for caller in 0..50u16 {
        let writer = writer.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10u16 {
                let b = binding(&format!("user{caller}"), 5000 + i, NOW + 3600);
                writer.apply(vec![BindingOp::Upsert(b)]).await.unwrap();
            }
        }));
    }
    for task in tasks {
        tokio::time::timeout(std::time::Duration::from_secs(60), task)
            .await
            .unwrap()
            .unwrap();
    }
    let stats = writer.stats();
    assert_eq!((stats.requests, stats.ops), (500, 500));
    assert!(stats.commits < stats.requests, "{stats:?}");
    assert_eq!(store.load_bindings(NOW).await.unwrap().len(), 500);
    store.close().await;
}

#[tokio::test]
async fn a_failing_request_gets_its_error_and_does_not_sink_the_others() {
    let dir = TempDir::new("isolate");
    let path = dir.path().join("db");
    let store = Store::open(&path).await.unwrap();
    let writer = store.binding_writer().await.unwrap();
    // A trigger stands in for a write that fails inside the transaction (as disk full would).
    sqlx::query(
        "CREATE TRIGGER refuse_mallory BEFORE INSERT ON bindings \
         WHEN NEW.aor LIKE 'sip:mallory@%' BEGIN SELECT RAISE(ABORT, 'refused'); END",
    )
    .execute(&mut open_raw(&path).await)
    .await
    .unwrap();

    let mut tasks = Vec::new();
    for caller in 0..40u16 {
        let writer = writer.clone();
        let user = if caller == 20 {
            "mallory".to_owned()
        } else {
            format!("user{caller}")
        };
        tasks.push(tokio::spawn(async move {
            let result = writer
                .apply(vec![BindingOp::Upsert(binding(&user, 5060, NOW + 60))])
                .await;
            (user, result)
        }));
    }
    for task in tasks {
        let (user, result) = task.await.unwrap();
        match result {
            Err(e) => {
                assert_eq!(user, "mallory");
                assert!(e.to_string().contains("refused"), "{e}");
            }
            Ok(()) => assert_ne!(user, "mallory"),
        }
    }
    let stored = store.list_bindings().await.unwrap();
    assert_eq!(stored.len(), 39);
    assert!(stored.iter().all(|b| !b.aor.contains("mallory")));
    store.close().await;
}

async fn open_raw(path: &std::path::Path) -> sqlx::SqliteConnection {
    use sqlx::ConnectOptions;
    sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .connect()
        .await
        .unwrap()
}
