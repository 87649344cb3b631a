//! An instance whose server died: the broker shows it (last_operation, GET instance, metrics)
//! and refuses a bind at once instead of retrying it until the operation's deadline.

use crate::helpers::*;
use common::deployer::Health;
use std::time::{Duration, Instant};

async fn stack() -> TestApp {
    let mut app = spawn_services(true).await;
    let mut settings = app.broker_settings();
    settings.worker.sync_timeout_ms = 5_000;
    app.start_broker(settings).await;
    app
}

/// Waits until the deployer reports the deployment's health as `wanted`.
async fn wait_for_health(app: &TestApp, deployment: &str, wanted: &[Health]) -> Health {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let d = app
            .deployer_client
            .get_deployment(deployment, &ctx())
            .await
            .unwrap();
        if let Some(status) = d.health.as_ref().map(|h| h.status) {
            if wanted.contains(&status) {
                return status;
            }
        }
        assert!(
            Instant::now() < deadline,
            "health never became {wanted:?}: {d:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ctx() -> common::client::CallContext {
    common::client::CallContext::with_request_id(common::new_request_id())
}

/// `GET /metrics` as text.
async fn metrics(app: &TestApp, authenticated: bool) -> (u16, String) {
    let mut request = reqwest::Client::new().get(format!("{}/metrics", app.address));
    if authenticated {
        request = request.basic_auth(USERNAME, Some(PASSWORD));
    }
    let resp = request.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test]
async fn an_instance_whose_server_died_is_reported_and_a_bind_to_it_fails_at_once_saying_why() {
    let mut app = stack().await;
    let id = app.provision_keyvalue().await;
    let deployment = app.deployment_of(&id);
    let (status, text) = metrics(&app, true).await;
    assert_eq!(status, 200, "{text}");
    assert!(
        text.contains("osb_broker_instances{state=\"ready\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("osb_broker_ready_instances_by_health{health=\"healthy\"} 1"),
        "{text}"
    );
    let fetched = app.get(&format!("/v2/service_instances/{id}")).await;
    assert_eq!(
        fetched.body["metadata"]["attributes"]["server_health"], "healthy",
        "{fetched:?}"
    );

    // Its Redis now dies at every start: killed, then refusing its config.
    let config = app.deployment_dir(&deployment).join("redis.conf");
    let good_config = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{good_config}no-such-directive yes\n")).unwrap();
    app.kill_redis_of(&deployment);
    wait_for_health(&app, &deployment, &[Health::Restarting, Health::Down]).await;

    let binding = new_id();
    let refused = app
        .bind_incomplete(&id, &binding, &keyvalue_bind_body())
        .await;
    assert_eq!(refused.status, 422, "{refused:?}");
    let description = refused.body["description"].as_str().unwrap();
    assert!(
        description.contains("the service instance's server is down"),
        "{description}"
    );
    let no_binding = app
        .get(&format!(
            "/v2/service_instances/{id}/service_bindings/{binding}"
        ))
        .await;
    assert_eq!(no_binding.status, 404, "no trace of it: {no_binding:?}");

    let last = app
        .get(&format!("/v2/service_instances/{id}/last_operation"))
        .await;
    assert_eq!(last.body["state"], "succeeded", "{last:?}");
    let description = last.body["description"].as_str().unwrap();
    assert!(
        description.contains("the service instance's server is down"),
        "{description}"
    );
    let fetched = app.get(&format!("/v2/service_instances/{id}")).await;
    let attributes = &fetched.body["metadata"]["attributes"];
    assert!(
        ["restarting", "down"].contains(&attributes["server_health"].as_str().unwrap()),
        "{fetched:?}"
    );
    assert!(
        attributes["server_health_description"].is_string(),
        "{fetched:?}"
    );

    let (status, text) = metrics(&app, true).await;
    assert_eq!(status, 200, "{text}");
    assert!(
        text.contains(&format!(
            "osb_broker_instance_server_unhealthy{{instance_id=\"{id}\","
        )),
        "{text}"
    );
    assert!(
        text.contains("osb_broker_ready_instances_by_health{health=\"healthy\"} 0"),
        "{text}"
    );
    assert!(text.contains("osb_broker_deployer_up 1"), "{text}");
    let (status, _) = metrics(&app, false).await;
    assert_eq!(status, 401, "metrics need the broker's credentials");

    // Its config repaired, a deployer restart brings the server back, and binds work again.
    std::fs::write(&config, good_config).unwrap();
    app.stop_deployer().await;
    app.restart_deployer().await;
    wait_for_health(&app, &deployment, &[Health::Healthy]).await;
    let bound = app.bind(&id, &new_id(), &keyvalue_bind_body()).await;
    assert_eq!(bound.status, 201, "{bound:?}");
    let last = app
        .get(&format!("/v2/service_instances/{id}/last_operation"))
        .await;
    assert_eq!(last.body["state"], "succeeded", "{last:?}");
    assert!(
        !last.body["description"]
            .as_str()
            .unwrap()
            .contains("server is down"),
        "{last:?}"
    );
    app.stop_all().await;
}
