//! A bind overtaken by an unbind of the same binding, or by a deprovision of its instance: the
//! unbind or deprovision cancels the bind and deletes whatever it created; the bind answers a
//! spec answer (201, 200 or 422 ConcurrencyError), never a 500 (which would start the
//! platform's orphan mitigation).

use crate::helpers::{bind_body, new_id, spawn_app, Answer, TestApp};
use std::time::{Duration, Instant};

/// Tries; the unbind follows its bind after a delay spread over the time a bind takes.
const TRIES: usize = 40;

#[tokio::test]
async fn a_bind_cancelled_by_a_concurrent_unbind_answers_422_concurrency_error_never_500() {
    let app = spawn_app().await;
    let id = app.provisioned().await;

    // How long one bind takes here, to spread the unbinds over it.
    let probe = new_id();
    let started = Instant::now();
    assert_eq!(app.bind(&id, &probe, &bind_body()).await.status, 201);
    let bind_ms = (started.elapsed().as_millis() as u64).clamp(5, 200);
    assert_eq!(app.unbind(&id, &probe).await.status, 200);

    let body = bind_body();
    let mut overtaken = 0;
    for n in 0..TRIES {
        let binding = new_id();
        let delay = Duration::from_millis(bind_ms * n as u64 / TRIES as u64);
        let (bound, unbound) = tokio::join!(app.bind(&id, &binding, &body), async {
            tokio::time::sleep(delay).await;
            app.unbind(&id, &binding).await
        });
        let what = format!("try {n} (unbind after {delay:?}): bind {bound:?}, unbind {unbound:?}");
        assert!(
            [200, 201, 422].contains(&bound.status),
            "bind answered outside the spec: {what}"
        );
        if bound.status == 422 {
            assert_eq!(bound.body["error"], "ConcurrencyError", "{what}");
            overtaken += 1;
        }
        assert!(
            [200, 410, 422].contains(&unbound.status),
            "unbind answered outside the spec: {what}"
        );
        settle(&app, &id, &binding, &bound, &unbound, &what).await;
    }
    println!("{overtaken} of {TRIES} binds were overtaken by their unbind");
    app.stop_all().await;
}

/// Instances for the deprovision race (each try uses one up).
const DEPROVISION_TRIES: usize = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bind_cancelled_by_a_deprovision_of_its_instance_answers_422_concurrency_error_never_500()
{
    let app = spawn_app().await;
    let instances =
        futures_util::future::join_all((0..=DEPROVISION_TRIES).map(|_| app.provisioned())).await;

    // How long one bind takes here, to spread the deprovisions over it.
    let probe = new_id();
    let started = Instant::now();
    assert_eq!(
        app.bind(&instances[0], &probe, &bind_body()).await.status,
        201
    );
    let bind_ms = (started.elapsed().as_millis() as u64).clamp(5, 200);

    let body = bind_body();
    let mut overtaken = 0;
    for (n, id) in instances[1..].iter().enumerate() {
        let binding = new_id();
        let delay = Duration::from_millis(bind_ms * n as u64 / DEPROVISION_TRIES as u64);
        let (bound, deprovisioned) = tokio::join!(app.bind(id, &binding, &body), async {
            tokio::time::sleep(delay).await;
            app.deprovision(id).await
        });
        let what = format!(
            "try {n} (deprovision after {delay:?}): bind {bound:?}, deprovision {deprovisioned:?}"
        );
        assert!(
            [200, 201, 422].contains(&bound.status),
            "bind answered outside the spec: {what}"
        );
        if bound.status == 422 {
            assert_eq!(bound.body["error"], "ConcurrencyError", "{what}");
            overtaken += 1;
        }
        assert!(
            [202, 422].contains(&deprovisioned.status),
            "deprovision answered outside the spec: {what}"
        );
    }
    println!("{overtaken} of {DEPROVISION_TRIES} binds were overtaken by a deprovision");
    app.stop_all().await;
}

/// Checks the binding ended as the two answers say, and removes a binding that remained.
async fn settle(
    app: &TestApp,
    id: &str,
    binding: &str,
    bound: &Answer,
    unbound: &Answer,
    what: &str,
) {
    let path = format!("/v2/service_instances/{id}/service_bindings/{binding}");
    match (bound.status, unbound.status) {
        // The unbind came first (nothing to delete) or was itself refused: the binding lives.
        (200 | 201, 410 | 422) => {
            assert_eq!(app.get(&path).await.status, 200, "{what}");
            assert_eq!(app.unbind(id, binding).await.status, 200, "{what}");
        }
        // Deleted, or cancelled and deleted: no binding remains.
        (_, 200) => assert_eq!(app.get(&path).await.status, 404, "{what}"),
        // The bind was cancelled while its unbind is refused: the unbind that cancelled it
        // was this one, so this cannot happen.
        _ => panic!("inconsistent answers: {what}"),
    }
}
