//! The data migration that fills `organization_guid` / `space_guid` from the context.

use super::super::models::InstanceRow;
use super::super::tests::store;
use super::super::Store;
use super::*;
use diesel::connection::SimpleConnection;

const SQLITE: &str = include_str!("../../../migrations/sqlite/2026-12-05-000000_placement/up.sql");
const POSTGRES: &str =
    include_str!("../../../migrations/postgres/2026-12-05-000000_placement/up.sql");

async fn fills_the_placement_from_the_context(store: Store, sql: &'static str) {
    let rows = [
        (
            "k8s",
            Some(r#"{"platform":"kubernetes","clusterid":"c-1","namespace":"ns"}"#),
            None,
        ),
        (
            "cf",
            Some(r#"{"organization_guid":"o-1","space_guid":"s-1"}"#),
            Some("o-1"),
        ),
        ("plain", None, Some("o-2")),
        (
            "odd",
            Some(r#"{"organization_guid":7,"namespace":""}"#),
            Some("o-3"),
        ),
    ];
    for (id, context, org) in rows {
        let row = InstanceRow {
            context: context.map(str::to_string),
            organization_guid: org.map(str::to_string),
            space_guid: org.map(|o| format!("space-of-{o}")),
            ..InstanceRow::bare(id, "svc", "small", InstanceState::Ready, 1)
        };
        let op = super::super::tests::operation(&format!("op-{id}"), id, "provision", None);
        store.create_instance(row, op).await.unwrap();
    }
    store
        .write(move |conn| Ok(conn.batch_execute(sql)?))
        .await
        .unwrap();
    let placement = |id: &'static str| {
        let store = store.clone();
        async move {
            let row = store.instance(id).await.unwrap().unwrap().0;
            (row.organization_guid, row.space_guid)
        }
    };
    let some = |a: &str, b: &str| (Some(a.to_string()), Some(b.to_string()));
    assert_eq!(placement("k8s").await, some("c-1", "ns"));
    assert_eq!(placement("cf").await, some("o-1", "s-1"));
    assert_eq!(placement("plain").await, some("o-2", "space-of-o-2"));
    assert_eq!(placement("odd").await, some("o-3", "space-of-o-3"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fills_the_placement_from_the_context_on_sqlite() {
    let (_dir, store) = store().await;
    fills_the_placement_from_the_context(store, SQLITE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fills_the_placement_from_the_context_on_postgres() {
    let pg = testkit::TestPostgres::start().await.unwrap();
    let store = Store::connect(&pg.create_database().await.unwrap())
        .await
        .unwrap();
    fills_the_placement_from_the_context(store, POSTGRES).await;
}
