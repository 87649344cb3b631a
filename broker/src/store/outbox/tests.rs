//! The outbox on SQLite and PostgreSQL: events written with their state change, the
//! dispatcher lease, and the delivery bookkeeping.

use super::*;
use crate::store::models::OperationChanges;
use crate::store::tests::{instance, operation};
use crate::store::Outcome;
use common::osb::OperationState;

async fn outbox_rows(store: &Store) -> Vec<OutboxRow> {
    store
        .run(|conn| {
            Ok(outbox::table
                .order(outbox::seq.asc())
                .select(OutboxRow::as_select())
                .load(conn)?)
        })
        .await
        .unwrap()
}

fn ended(state: OperationState) -> OperationChanges {
    OperationChanges {
        state: Some(state.into()),
        lease_owner: Some(None),
        ..Default::default()
    }
}

/// Events are written with the state change that causes them, for the endpoints that
/// want them, and not at all when the change is not written.
async fn events_follow_the_state_changes(store: Store) {
    store
        .register_webhook_endpoints(vec![
            ("all".into(), vec!["*".into()]),
            ("failures".into(), vec!["*.failed".into()]),
        ])
        .await
        .unwrap();
    let mut row = instance("i1");
    row.parameters = r#"{"secret":"p4ss"}"#.into();
    let mut op = operation("op1", "i1", "provision", Some("a"));
    op.payload = r#"{"tracing_id":"t-1"}"#.into();
    assert_eq!(store.create_instance(row, op).await.unwrap(), Outcome::Done);
    // A second provision of the same instance is refused: no event.
    let again = operation("op2", "i1", "provision", Some("a"));
    assert_eq!(
        store.create_instance(instance("i1"), again).await.unwrap(),
        Outcome::Exists
    );
    // A transaction that recorded an event and then failed leaves no event: the cancel of op1
    // is rolled back with the deprovision of an instance that does not exist.
    let stray = operation("op-x", "missing", "deprovision", Some("a"));
    assert!(matches!(
        store.begin_deprovision(stray, Some("op1".into())).await,
        Ok(Outcome::Busy(_))
    ));
    let op1 = store.operation("op1").await.unwrap().unwrap();
    assert_eq!(op1.state, OperationState::InProgress);
    // A worker that lost its lease writes nothing, so no event either.
    assert!(!store
        .advance("op1", "other", ended(OperationState::Succeeded), vec![])
        .await
        .unwrap());
    assert!(store
        .advance("op1", "a", ended(OperationState::Failed), vec![])
        .await
        .unwrap());
    let dep = operation("op3", "i1", "deprovision", Some("a"));
    assert_eq!(
        store.begin_deprovision(dep, None).await.unwrap(),
        Outcome::Done
    );
    let rows = outbox_rows(&store).await;
    let seen: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.endpoint.as_str(), r.kind.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("all", "provision.started"),
            ("all", "provision.failed"),
            ("failures", "provision.failed"),
            ("all", "deprovision.started"),
        ]
    );
    assert_eq!(
        rows[1].event_id, rows[2].event_id,
        "one event, two endpoints"
    );
    assert!(rows
        .iter()
        .all(|r| r.state == "pending" && !r.body.contains("p4ss")));
    let body: serde_json::Value = serde_json::from_str(&rows[1].body).unwrap();
    assert_eq!(body["tracing_id"], "t-1");
    assert_eq!(body["state"], "failed");
    // Unregistering stops the recording.
    store.register_webhook_endpoints(vec![]).await.unwrap();
    assert!(store
        .advance("op3", "a", ended(OperationState::Succeeded), vec![])
        .await
        .unwrap());
    assert_eq!(outbox_rows(&store).await.len(), 4);
}

/// One dispatcher lease: one claimant wins, the holder renews, another takes an expired
/// one, and a released lease is free at once.
async fn one_dispatcher_holds_the_lease(a: Store, b: Store) {
    let now = now_ms();
    let (x, y) = tokio::join!(
        a.claim_dispatcher("a", now, now + 1_000),
        b.claim_dispatcher("b", now, now + 1_000)
    );
    let a_won = x.unwrap();
    assert!(a_won ^ y.unwrap(), "exactly one claimant wins");
    let (holder, other, other_name) = if a_won { (&a, &b, "b") } else { (&b, &a, "a") };
    let holder_name = if a_won { "a" } else { "b" };
    assert!(holder
        .claim_dispatcher(holder_name, now + 500, now + 1_500)
        .await
        .unwrap());
    assert!(!other
        .claim_dispatcher(other_name, now + 1_000, now + 2_000)
        .await
        .unwrap());
    assert!(other
        .claim_dispatcher(other_name, now + 1_600, now + 2_600)
        .await
        .unwrap());
    other.release_dispatcher(other_name).await.unwrap();
    assert!(holder
        .claim_dispatcher(holder_name, now + 1_700, now + 2_700)
        .await
        .unwrap());
}

/// Delivered, retried and dead rows, the counts, and redelivery of dead letters.
async fn attempts_are_recorded_and_dead_letters_redelivered(store: Store) {
    store
        .register_webhook_endpoints(vec![("all".into(), vec!["*".into()])])
        .await
        .unwrap();
    for n in 1..=3 {
        let id = format!("i{n}");
        let op = operation(&format!("op{n}"), &id, "provision", Some("a"));
        store.create_instance(instance(&id), op).await.unwrap();
    }
    let pending = store.due_deliveries("all", now_ms(), 10).await.unwrap();
    assert_eq!(pending.len(), 3);
    store
        .record_attempt(pending[0].seq, Attempted::Delivered)
        .await
        .unwrap();
    let retry = Attempted::Retry {
        next_attempt_ms: 42,
        error: "503".into(),
    };
    store.record_attempt(pending[1].seq, retry).await.unwrap();
    let dead = Attempted::Dead {
        error: "answered 500".into(),
    };
    store.record_attempt(pending[2].seq, dead).await.unwrap();
    // A late write on a row that is no longer pending changes nothing.
    store
        .record_attempt(pending[0].seq, Attempted::Dead { error: "x".into() })
        .await
        .unwrap();
    let counts = store.outbox_counts().await.unwrap();
    let expected = [
        ("all", "dead", 1),
        ("all", "delivered", 1),
        ("all", "pending", 1),
    ];
    let counts: Vec<(&str, &str, i64)> = counts
        .iter()
        .map(|(e, s, n)| (e.as_str(), s.as_str(), *n))
        .collect();
    assert_eq!(counts, expected);
    let still = store.due_deliveries("all", now_ms(), 10).await.unwrap();
    assert_eq!(
        (still.len(), still[0].attempts, still[0].next_attempt_ms),
        (1, 1, 42)
    );
    let letters = store.dead_letters(10).await.unwrap();
    assert_eq!(letters[0].last_error.as_deref(), Some("answered 500"));
    assert_eq!(store.redeliver_dead_letters().await.unwrap(), 1);
    let again = store.due_deliveries("all", now_ms(), 10).await.unwrap();
    assert_eq!(again.len(), 2);
    assert_eq!(store.prune_delivered(now_ms() + 1).await.unwrap(), 1);
    // The endpoint leaves the settings: its two pending events become dead letters, which a
    // redelivery leaves alone while it stays unconfigured.
    let other = vec![("other".into(), vec!["*".into()])];
    assert_eq!(store.register_webhook_endpoints(other).await.unwrap(), 2);
    assert!(store
        .due_deliveries("all", now_ms(), 10)
        .await
        .unwrap()
        .is_empty());
    let letters = store.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 2);
    assert!(letters
        .iter()
        .all(|l| l.last_error.as_deref() == Some(REMOVED_ENDPOINT)));
    assert_eq!(store.redeliver_dead_letters().await.unwrap(), 0);
    // Configured again, they can be sent.
    let all = vec![("all".into(), vec!["*".into()])];
    assert_eq!(store.register_webhook_endpoints(all).await.unwrap(), 0);
    assert_eq!(store.redeliver_dead_letters().await.unwrap(), 2);
    assert_eq!(
        store
            .due_deliveries("all", now_ms(), 10)
            .await
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn only_the_oldest_pending_event_of_each_instance_goes_and_only_when_due() {
    let rows: Vec<(i64, String, i64)> = [(1, "i1", 50), (2, "i1", 0), (3, "i2", 0)]
        .into_iter()
        .chain([(4, "i2", 0), (5, "i3", 200), (6, "i4", 0)])
        .map(|(seq, instance, next)| (seq, instance.to_string(), next))
        .collect();
    assert_eq!(due_heads(&rows, 100, 10), [1, 3, 6]);
    assert_eq!(
        due_heads(&rows, 10, 10),
        [3, 6],
        "i1 waits for its retry, and holds its newer event back"
    );
    assert_eq!(due_heads(&rows, 100, 2), [1, 3]);
}

/// An instance whose oldest event waits for its retry holds back its own newer events only,
/// however many: the due events of other instances go meanwhile.
async fn a_held_back_instance_delays_no_other(store: Store) {
    store
        .register_webhook_endpoints(vec![("all".into(), vec!["*".into()])])
        .await
        .unwrap();
    let op = operation("op1", "i1", "provision", Some("a"));
    store.create_instance(instance("i1"), op).await.unwrap();
    assert!(store
        .advance("op1", "a", ended(OperationState::Succeeded), vec![])
        .await
        .unwrap());
    let op = operation("op2", "i2", "provision", Some("a"));
    store.create_instance(instance("i2"), op).await.unwrap();
    let now = now_ms();
    let first = store.due_deliveries("all", now, 10).await.unwrap();
    let heads: Vec<(&str, &str)> = first
        .iter()
        .map(|r| (r.instance_id.as_str(), r.kind.as_str()))
        .collect();
    assert_eq!(
        heads,
        [("i1", "provision.started"), ("i2", "provision.started")]
    );
    let retry = Attempted::Retry {
        next_attempt_ms: now + 60_000,
        error: "answered 503".into(),
    };
    store.record_attempt(first[0].seq, retry).await.unwrap();
    let due = store.due_deliveries("all", now, 1).await.unwrap();
    assert_eq!(
        (due.len(), due[0].instance_id.as_str()),
        (1, "i2"),
        "{due:?}"
    );
}

async fn sqlite_store(dir: &tempfile::TempDir) -> Store {
    let path = dir.path().join(format!("{}.sqlite", uuid::Uuid::new_v4()));
    Store::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_outbox() {
    let dir = tempfile::tempdir().unwrap();
    events_follow_the_state_changes(sqlite_store(&dir).await).await;
    attempts_are_recorded_and_dead_letters_redelivered(sqlite_store(&dir).await).await;
    a_held_back_instance_delays_no_other(sqlite_store(&dir).await).await;
    let path = dir.path().join("shared.sqlite");
    let url = format!("sqlite://{}", path.display());
    let (a, b) = (
        Store::connect(&url).await.unwrap(),
        Store::connect(&url).await.unwrap(),
    );
    one_dispatcher_holds_the_lease(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outbox() {
    let pg = testkit::TestPostgres::start().await.unwrap();
    let store = Store::connect(&pg.create_database().await.unwrap())
        .await
        .unwrap();
    events_follow_the_state_changes(store).await;
    let store = Store::connect(&pg.create_database().await.unwrap())
        .await
        .unwrap();
    attempts_are_recorded_and_dead_letters_redelivered(store).await;
    let store = Store::connect(&pg.create_database().await.unwrap())
        .await
        .unwrap();
    a_held_back_instance_delays_no_other(store).await;
    let url = pg.create_database().await.unwrap();
    let (a, b) = (
        Store::connect(&url).await.unwrap(),
        Store::connect(&url).await.unwrap(),
    );
    one_dispatcher_holds_the_lease(a, b).await;
}
