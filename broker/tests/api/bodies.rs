//! Request bodies are read strictly: `Content-Type: application/json` is required, a key given
//! twice is refused, a body that does not arrive within the body timeout gets 408 and its
//! connection closed, and one client cannot hold more connections than its limit.

use crate::helpers::{
    bind_body, new_id, provision_body, spawn_app, spawn_app_with, Answer, PASSWORD, USERNAME,
};
use crate::process::instance_rows;
use base64::Engine as _;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

#[tokio::test]
async fn a_body_without_content_type_application_json_is_refused_with_a_400_and_nothing_is_stored()
{
    let app = spawn_app().await;
    let id = new_id();
    let body = provision_body(json!({})).to_string();
    let put = |content_type: Option<&'static str>| {
        let mut req = app
            .request(
                reqwest::Method::PUT,
                &format!("/v2/service_instances/{id}?accepts_incomplete=true"),
            )
            .body(body.clone());
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        req
    };
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let answer = Answer::from(put(content_type).send().await.unwrap()).await;
        assert_eq!(answer.status, 400, "{content_type:?}: {answer:?}");
        assert_eq!(answer.body["error"], "BadRequest");
        let description = answer.body["description"].as_str().unwrap();
        assert!(
            description.starts_with("Content-Type must be application/json"),
            "{description}"
        );
    }
    let update = app
        .request(
            reqwest::Method::PATCH,
            &format!("/v2/service_instances/{id}"),
        )
        .body(json!({"service_id": "s"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(Answer::from(update).await.status, 400);
    let bind = app
        .request(
            reqwest::Method::PUT,
            &format!("/v2/service_instances/{id}/service_bindings/{}", new_id()),
        )
        .body(bind_body().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(Answer::from(bind).await.status, 400);
    assert!(instance_rows(&app.database_path()).is_empty());

    // With the right type (and a charset parameter) the same body is served.
    let answer = Answer::from(
        put(Some("application/json; charset=utf-8"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 202, "{answer:?}");
    app.stop_all().await;
}

#[tokio::test]
async fn a_body_with_a_duplicate_key_is_refused_with_a_400_naming_the_key() {
    let app = spawn_app().await;
    let id = new_id();
    let body = provision_body(json!({})).to_string();
    // The same plan_id key twice, the second a plan that does not exist.
    let duplicated = body.replacen("\"plan_id\":", "\"plan_id\":\"other\",\"plan_id\":", 1);
    assert_ne!(duplicated, body);
    let answer = Answer::from(
        app.request(
            reqwest::Method::PUT,
            &format!("/v2/service_instances/{id}?accepts_incomplete=true"),
        )
        .header("Content-Type", "application/json")
        .body(duplicated)
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 400, "{answer:?}");
    let description = answer.body["description"].as_str().unwrap();
    assert!(
        description.contains("duplicate key \"plan_id\""),
        "{description}"
    );
    // Inside the parameters too.
    let nested = r#"{"service_id":"s","parameters":{"a":1,"a":2}}"#;
    let answer = Answer::from(
        app.request(
            reqwest::Method::PATCH,
            &format!("/v2/service_instances/{id}"),
        )
        .header("Content-Type", "application/json")
        .body(nested)
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(
        answer.body["description"]
            .as_str()
            .unwrap()
            .contains("duplicate key \"a\""),
        "{answer:?}"
    );
    assert!(instance_rows(&app.database_path()).is_empty());
    app.stop_all().await;
}

/// The request head of an authenticated PUT whose body is `length` bytes long.
fn head(path: &str, length: usize) -> String {
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{USERNAME}:{PASSWORD}"));
    format!(
        "PUT {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic {credentials}\r\n\
         X-Broker-API-Version: 2.17\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\n\r\n"
    )
}

/// Opens a connection and sends the head of a provision and half its body.
async fn half_a_body(address: &str, id: &str) -> TcpStream {
    let body = provision_body(json!({})).to_string();
    let mut stream = TcpStream::connect(address.trim_start_matches("http://"))
        .await
        .unwrap();
    let request = head(
        &format!("/v2/service_instances/{id}?accepts_incomplete=true"),
        body.len(),
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    stream
        .write_all(&body.as_bytes()[..body.len() / 2])
        .await
        .unwrap();
    stream.flush().await.unwrap();
    stream
}

/// Whether the broker wrote to or closed a connection that is waiting in the middle of its body.
fn answered_or_closed(stream: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    !matches!(stream.try_read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

#[tokio::test]
async fn a_client_that_sends_headers_and_half_a_body_is_answered_408_and_cut_off_after_the_body_timeout(
) {
    let app = spawn_app_with(|s| s.http.body_timeout_ms = 1_000).await;
    let id = new_id();
    let mut stream = half_a_body(&app.address, &id).await;
    let mut answer = Vec::new();
    // read_to_end returns only once the broker closed the connection.
    tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut answer))
        .await
        .expect("the broker closes the connection")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"error\":\"RequestTimeout\""), "{answer}");
    assert!(answer.contains("did not arrive within 1000 ms"), "{answer}");
    assert!(instance_rows(&app.database_path()).is_empty());
    app.stop_all().await;
}

#[tokio::test]
async fn connections_beyond_the_per_client_limit_are_answered_429_and_closed_until_one_ends() {
    const LIMIT: usize = 3;
    let app = spawn_app_with(|s| {
        s.http.max_connections_per_client = LIMIT;
        s.http.body_timeout_ms = 120_000;
    })
    .await;
    // Every slot taken by a connection stuck in a slow body.
    let mut slow = Vec::new();
    for _ in 0..LIMIT {
        slow.push(half_a_body(&app.address, &new_id()).await);
    }
    // A client of its own that keeps no connection open between requests.
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let catalog = || {
        fresh
            .get(format!("{}/v2/catalog", app.address))
            .basic_auth(USERNAME, Some(PASSWORD))
            .header("X-Broker-API-Version", "2.17")
            .send()
    };
    // The server takes the slow connections in asynchronously: until it has, a request may
    // still get one of the slots, and a slow connection that came second is then the one
    // refused (answered and closed). Such a one is replaced until all the slots hold slow ones.
    let deadline = Instant::now() + Duration::from_secs(30);
    let refused = loop {
        let answer = Answer::from(catalog().await.unwrap()).await;
        if answer.status != 200 {
            break answer;
        }
        assert!(Instant::now() < deadline, "the limit never applied");
        for stream in &mut slow {
            if answered_or_closed(stream) {
                *stream = half_a_body(&app.address, &new_id()).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(refused.status, 429, "{refused:?}");
    assert_eq!(refused.body["error"], "TooManyRequests");
    assert!(
        refused.body["description"]
            .as_str()
            .unwrap()
            .contains(&format!("the limit is {LIMIT}")),
        "{refused:?}"
    );

    // Once the slow connections are gone, the client is served again.
    drop(slow);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = catalog().await.unwrap().status().as_u16();
        if status == 200 {
            break;
        }
        assert_eq!(status, 429);
        assert!(Instant::now() < deadline, "the slots were never freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(instance_rows(&app.database_path()).is_empty());
    app.stop_all().await;
}
