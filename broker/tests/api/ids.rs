//! Ids from the URL are checked before anything else sees them: a control character (a
//! percent-encoded line break or NUL) or an id over the documented length is a 400 naming the
//! rule, nothing is stored, and no forged line reaches the log.

use crate::helpers::{
    bind_body, free_address, provision_body, spawn_app, spawn_services, Answer, SERVICE_ID,
};
use crate::process::instance_rows;
use common::ids::MAX_ID_LEN;
use serde_json::json;

#[tokio::test]
async fn ids_with_control_characters_or_over_the_length_limit_are_refused_with_a_400_naming_the_rule(
) {
    let app = spawn_app().await;
    let cases = [
        ("x%0AINFO%20forged", "control character (U+000A)"),
        ("x%0D", "control character (U+000D)"),
        ("x%00y", "control character (U+0000)"),
        ("x%1B%5B31m", "control character (U+001B)"),
        ("x%E2%80%A8", "control character (U+2028)"),
    ];
    for (id, rule) in cases {
        let answer = app.provision(id, &provision_body(json!({})), true).await;
        assert_eq!(answer.status, 400, "{id}: {answer:?}");
        let description = answer.body["description"].as_str().unwrap();
        assert!(description.starts_with("instance_id "), "{description}");
        assert!(description.contains(rule), "{id}: {description}");
        assert_eq!(answer.body["error"], "BadRequest");
        let answer = app.bind("good-instance", id, &bind_body()).await;
        assert_eq!(answer.status, 400, "{id}: {answer:?}");
        assert!(
            answer.body["description"]
                .as_str()
                .unwrap()
                .starts_with("binding_id "),
            "{answer:?}"
        );
    }
    let rotation = json!({"predecessor_binding_id": "old\nbinding"});
    let answer = app.bind("good-instance", "new-binding", &rotation).await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(
        answer.body["description"]
            .as_str()
            .unwrap()
            .starts_with("predecessor_binding_id contains a control character"),
        "{answer:?}"
    );
    for len in [MAX_ID_LEN + 1, 10_000] {
        let id = "a".repeat(len);
        let answer = app.provision(&id, &provision_body(json!({})), true).await;
        assert_eq!(answer.status, 400, "{len}: {answer:?}");
        let description = answer.body["description"].as_str().unwrap();
        assert!(
            description.contains(&format!("the longest id accepted is {MAX_ID_LEN} bytes")),
            "{description}"
        );
        let answer = app
            .get(&format!("/v2/service_instances/{id}/last_operation"))
            .await;
        assert_eq!(answer.status, 400, "{answer:?}");
    }
    // The longest id allowed is an ordinary unknown id.
    let longest = "a".repeat(MAX_ID_LEN);
    let answer = app.get(&format!("/v2/service_instances/{longest}")).await;
    assert_eq!(answer.status, 404, "{answer:?}");
    assert!(
        instance_rows(&app.database_path()).is_empty(),
        "a refused id was stored"
    );
    app.stop_all().await;
}

#[tokio::test]
async fn a_line_break_in_an_id_or_an_identity_writes_no_forged_line_to_the_broker_log() {
    let mut app = spawn_services(false).await;
    let mut settings = app.broker_settings();
    settings.listen = free_address();
    app.start_broker_process(&settings).await;

    let answer = app
        .provision(
            "victim%0AERROR%20FORGED-ID-LINE",
            &provision_body(json!({})),
            true,
        )
        .await;
    assert_eq!(answer.status, 400, "{answer:?}");
    // An originating identity is logged with the request; its user name is the caller's text.
    let identity = base64_json(&json!({"user_id": "u\nERROR FORGED-IDENTITY-LINE"}));
    let resp = app
        .request(
            reqwest::Method::DELETE,
            &format!("/v2/service_instances/unknown?service_id={SERVICE_ID}&plan_id=p"),
        )
        .header(
            "X-Broker-API-Originating-Identity",
            format!("cloudfoundry {identity}"),
        )
        .send()
        .await
        .unwrap();
    let answer = Answer::from(resp).await;
    assert_eq!(answer.status, 410, "{answer:?}");
    app.kill_broker_process().await;

    let log = std::fs::read_to_string(app.log_path()).unwrap();
    assert!(
        log.contains("FORGED-IDENTITY-LINE"),
        "the identity is logged (escaped): {log}"
    );
    for line in log.lines() {
        assert!(
            !line.starts_with("ERROR FORGED"),
            "a forged log line: {line:?}\n{log}"
        );
        assert!(!line.contains('\0'), "a NUL byte in the log: {line:?}");
    }
    app.stop_all().await;
}

fn base64_json(value: &serde_json::Value) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(value.to_string())
}
