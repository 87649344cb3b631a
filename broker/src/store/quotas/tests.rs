//! The quota rules on both databases: what a scope counts, that a refusal writes nothing,
//! plan changes, and concurrent provisions of two stores.

use super::super::columns::OperationStateColumn;
use super::super::models::{InstanceRow, OperationRow};
use super::super::schema::operations;
use super::super::tests::{operation, store};
use super::super::{Outcome, Store};
use super::*;
use common::osb::OperationState;

/// A provisioning instance of `plan` in `space` of `org-1`.
fn row(id: &str, plan: &str, space: &str) -> InstanceRow {
    InstanceRow {
        organization_guid: Some("org-1".into()),
        space_guid: Some(space.into()),
        ..InstanceRow::bare(id, "svc", plan, InstanceState::Provisioning, 1)
    }
}

fn limit(scope: Scope, max: u64) -> Limit {
    Limit {
        scope,
        max,
        label: "the limit".into(),
    }
}

fn small_plan(max: u64) -> Limit {
    limit(
        Scope::Plan {
            service_id: "svc".into(),
            plan_id: "small".into(),
        },
        max,
    )
}

async fn create(
    store: &Store,
    id: &str,
    plan: &str,
    limits: &[Limit],
) -> Result<Outcome, StoreError> {
    let op_id = format!("op-{id}-{}", uuid::Uuid::new_v4());
    let op = operation(&op_id, id, "provision", None);
    store
        .create_instance_within(row(id, plan, "space-1"), op, limits.to_vec())
        .await
}

/// Ends every operation of instance `id` (succeeded) and puts the instance in `state`.
async fn set_state(store: &Store, id: &str, state: InstanceState) {
    let id = id.to_string();
    store
        .write(move |conn| {
            diesel::update(operations::table.filter(operations::instance_id.eq(&id)))
                .set(operations::state.eq(OperationStateColumn(OperationState::Succeeded)))
                .execute(conn)?;
            diesel::update(service_instances::table.find(id))
                .set(service_instances::state.eq(state))
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
}

/// The refusal, or a panic naming what happened instead.
fn refusal(result: Result<Outcome, StoreError>) -> String {
    match result {
        Err(StoreError::QuotaExceeded(e)) => e.to_string(),
        other => panic!("not refused: {other:?}"),
    }
}

async fn a_full_scope_refuses_and_writes_nothing(store: Store) {
    let limits = [small_plan(2)];
    assert_eq!(
        create(&store, "i1", "small", &limits).await.unwrap(),
        Outcome::Done
    );
    assert_eq!(
        create(&store, "i2", "small", &limits).await.unwrap(),
        Outcome::Done
    );
    // An instance of another plan: not counted by the small plan's limit (2 exist, not 3).
    assert_eq!(
        create(&store, "m1", "medium", &[]).await.unwrap(),
        Outcome::Done
    );
    let refused = refusal(create(&store, "i3", "small", &limits).await);
    assert_eq!(
        refused,
        "plan quota exceeded: the limit allows 2 instances, 2 exist"
    );
    assert!(store.instance("i3").await.unwrap().is_none(), "no row");
    let operation = store.latest_operation("i3", None, None).await.unwrap();
    assert!(operation.is_none(), "no operation");
    // A repeat of an existing instance is not refused: it exists.
    assert_eq!(
        create(&store, "i1", "small", &limits).await.unwrap(),
        Outcome::Exists
    );
    // A failed instance still counts; a deleted one does not (its id may come back).
    set_state(&store, "i1", InstanceState::Failed).await;
    refusal(create(&store, "i3", "small", &limits).await);
    set_state(&store, "i1", InstanceState::Deleted).await;
    assert_eq!(
        create(&store, "i3", "small", &limits).await.unwrap(),
        Outcome::Done
    );
    set_state(&store, "i3", InstanceState::Deleted).await;
    assert_eq!(
        create(&store, "i1", "small", &limits).await.unwrap(),
        Outcome::Done
    );
}

async fn each_scope_counts_its_own_instances(store: Store) {
    create(&store, "a", "small", &[]).await.unwrap();
    create(&store, "b", "medium", &[]).await.unwrap();
    let other_space = operation("op-c", "c", "provision", None);
    store
        .create_instance_within(row("c", "small", "space-2"), other_space, Vec::new())
        .await
        .unwrap();
    let space = |organization: Option<&str>, space: &str| Scope::Space {
        organization: organization.map(str::to_string),
        space: space.into(),
    };
    let cases = [
        (Scope::All, 3),
        (
            Scope::Service {
                service_id: "svc".into(),
            },
            3,
        ),
        (
            Scope::Service {
                service_id: "other".into(),
            },
            0,
        ),
        (small_plan(0).scope, 2),
        (
            Scope::Organization {
                organization: "org-1".into(),
            },
            3,
        ),
        (
            Scope::Organization {
                organization: "org-2".into(),
            },
            0,
        ),
        (space(Some("org-1"), "space-1"), 2),
        (space(None, "space-2"), 1),
        (space(Some("org-2"), "space-1"), 0),
        // GUIDs compare without regard to case, as the settings' keys do.
        (
            Scope::Organization {
                organization: "ORG-1".into(),
            },
            3,
        ),
        (space(Some("Org-1"), "SPACE-1"), 2),
    ];
    for (scope, expected) in cases {
        let limits = [limit(scope.clone(), expected)];
        let refused = refusal(create(&store, "x", "small", &limits).await);
        let s = if expected == 1 { "" } else { "s" };
        let verb = if expected == 1 { "exists" } else { "exist" };
        assert!(
            refused.ends_with(&format!("allows {expected} instance{s}, {expected} {verb}")),
            "{scope:?}: {refused}"
        );
        let limits = [limit(scope.clone(), expected + 1)];
        let id = format!("fits-{}", expected);
        let fits = create(&store, &id, "small", &limits).await.unwrap();
        assert_eq!(fits, Outcome::Done, "{scope:?}");
        set_state(&store, &id, InstanceState::Deleted).await;
    }
}

async fn a_plan_change_into_a_full_plan_is_refused(store: Store) {
    create(&store, "s1", "small", &[]).await.unwrap();
    create(&store, "m1", "medium", &[]).await.unwrap();
    set_state(&store, "s1", InstanceState::Ready).await;
    let medium = limit(
        Scope::Plan {
            service_id: "svc".into(),
            plan_id: "medium".into(),
        },
        1,
    );
    let update = operation("up1", "s1", "update", None);
    let refused = match store
        .begin_update_within(update, vec![medium.clone()])
        .await
    {
        Err(StoreError::QuotaExceeded(e)) => e.to_string(),
        other => panic!("not refused: {other:?}"),
    };
    assert_eq!(
        refused,
        "plan quota exceeded: the limit allows 1 instance, 1 exists"
    );
    assert!(store.operation("up1").await.unwrap().is_none());
    set_state(&store, "m1", InstanceState::Deleted).await;
    let update = operation("up2", "s1", "update", None);
    let started = store.begin_update_within(update, vec![medium]).await;
    assert_eq!(started.unwrap(), Outcome::Done);
}

/// An update of `instance` into plan `plan` (its payload names the target plan).
fn plan_change(id: &str, instance: &str, plan: &str) -> OperationRow {
    OperationRow {
        payload: OperationPayload {
            plan_id: Some(plan.into()),
            ..Default::default()
        }
        .encode(),
        ..operation(id, instance, "update", None)
    }
}

/// A plan change that runs holds a place in its target plan (and keeps the one in its current
/// plan) until it ends: a second change or a provision into the last place is refused.
async fn a_running_plan_change_holds_a_place_in_its_target_plan(store: Store) {
    for id in ["s1", "s2"] {
        create(&store, id, "small", &[]).await.unwrap();
        set_state(&store, id, InstanceState::Ready).await;
    }
    let medium = |max| {
        limit(
            Scope::Plan {
                service_id: "svc".into(),
                plan_id: "medium".into(),
            },
            max,
        )
    };
    let first = store.begin_update_within(plan_change("up1", "s1", "medium"), vec![medium(1)]);
    assert_eq!(first.await.unwrap(), Outcome::Done);
    let second = store.begin_update_within(plan_change("up2", "s2", "medium"), vec![medium(1)]);
    let refused = refusal(second.await);
    assert_eq!(
        refused,
        "plan quota exceeded: the limit allows 1 instance, 1 exists"
    );
    assert!(store.operation("up2").await.unwrap().is_none(), "no update");
    refusal(create(&store, "m1", "medium", &[medium(1)]).await);
    // Until it ends, s1 still counts in its current plan too.
    refusal(create(&store, "s3", "small", &[small_plan(2)]).await);
    // An update that stays on its plan holds no other place.
    let stays = store.begin_update_within(plan_change("up3", "s2", "small"), vec![medium(2)]);
    assert_eq!(stays.await.unwrap(), Outcome::Done);
    assert_eq!(
        create(&store, "m1", "medium", &[medium(2)]).await.unwrap(),
        Outcome::Done
    );
    // Ended (s1 now on medium): counted once there, and no more in small.
    let s1 = "s1".to_string();
    store
        .write(move |conn| {
            diesel::update(service_instances::table.find(s1))
                .set(service_instances::plan_id.eq("medium"))
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
    set_state(&store, "s1", InstanceState::Ready).await;
    set_state(&store, "s2", InstanceState::Ready).await;
    refusal(create(&store, "m2", "medium", &[medium(2)]).await);
    let fits = create(&store, "m2", "medium", &[medium(3)]).await.unwrap();
    assert_eq!(fits, Outcome::Done);
    let fits = create(&store, "s3", "small", &[small_plan(2)])
        .await
        .unwrap();
    assert_eq!(fits, Outcome::Done);
}

async fn concurrent_provisions_of_two_stores_end_at_the_limit(stores: [Store; 2]) {
    let limits = [small_plan(5)];
    let attempts = (0..30).map(|n| {
        let store = stores[n % 2].clone();
        let limits = limits.clone();
        async move { create(&store, &format!("c{n}"), "small", &limits).await }
    });
    let results = futures_util::future::join_all(attempts).await;
    let done = results
        .iter()
        .filter(|r| matches!(r, Ok(Outcome::Done)))
        .count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::QuotaExceeded(_))))
        .count();
    assert_eq!((done, refused), (5, 25), "{results:?}");
    let live = stores[1].live_instances_per_plan().await.unwrap();
    assert_eq!(live, [("svc".to_string(), "small".to_string(), 5)]);
}

mod sqlite {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_scope_refuses_and_writes_nothing() {
        let (_dir, store) = store().await;
        super::a_full_scope_refuses_and_writes_nothing(store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_scope_counts_its_own_instances() {
        let (_dir, store) = store().await;
        super::each_scope_counts_its_own_instances(store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_plan_change_into_a_full_plan_is_refused() {
        let (_dir, store) = store().await;
        super::a_plan_change_into_a_full_plan_is_refused(store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_running_plan_change_holds_a_place_in_its_target_plan() {
        let (_dir, store) = store().await;
        super::a_running_plan_change_holds_a_place_in_its_target_plan(store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_provisions_of_two_stores_end_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("q.sqlite").display());
        let stores = [
            Store::connect(&url).await.unwrap(),
            Store::connect(&url).await.unwrap(),
        ];
        super::concurrent_provisions_of_two_stores_end_at_the_limit(stores).await;
    }
}

mod postgres {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_quota_rule_holds_on_postgres() {
        let pg = testkit::TestPostgres::start().await.unwrap();
        let connect = || async {
            Store::connect(&pg.create_database().await.unwrap())
                .await
                .unwrap()
        };
        super::a_full_scope_refuses_and_writes_nothing(connect().await).await;
        super::each_scope_counts_its_own_instances(connect().await).await;
        super::a_plan_change_into_a_full_plan_is_refused(connect().await).await;
        super::a_running_plan_change_holds_a_place_in_its_target_plan(connect().await).await;
        let url = pg.create_database().await.unwrap();
        let stores = [
            Store::connect(&url).await.unwrap(),
            Store::connect(&url).await.unwrap(),
        ];
        super::concurrent_provisions_of_two_stores_end_at_the_limit(stores).await;
    }
}
