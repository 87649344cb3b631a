//! A webhook receiver for the tests: a real HTTP server on a loopback port (kept across a stop
//! and a restart) that records every POST with its headers, and answers 200, 500, or holds
//! the request unanswered, or redirects it, as the test says.

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use broker::webhooks::sign::{verify, EVENT_ID_HEADER, EVENT_KIND_HEADER, SIGNATURE_HEADER};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 200.
    Accept,
    /// 500.
    Fail,
    /// Never answers (until the mode changes).
    Hold,
    /// 302 to `/moved`, which answers 200 to any method.
    Redirect,
}

/// One POST as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub event_id: String,
    pub kind_header: String,
    pub signature: String,
    pub body: String,
    pub json: Value,
}

impl Received {
    /// The event kind from the body.
    pub fn kind(&self) -> &str {
        self.json["kind"].as_str().unwrap_or_default()
    }
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    mode: Mutex<Option<Mode>>,
    moved: Mutex<usize>,
}

/// The receiver; stopped when dropped.
pub struct Receiver {
    shared: Arc<Shared>,
    address: String,
    server: Option<ServerHandle>,
}

fn header(req: &HttpRequest, name: &str) -> String {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

async fn hook(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let body = String::from_utf8_lossy(&body).into_owned();
    let received = Received {
        event_id: header(&req, EVENT_ID_HEADER),
        kind_header: header(&req, EVENT_KIND_HEADER),
        signature: header(&req, SIGNATURE_HEADER),
        json: serde_json::from_str(&body).unwrap_or(Value::Null),
        body,
    };
    shared.received.lock().unwrap().push(received);
    loop {
        let mode = shared.mode.lock().unwrap().unwrap_or(Mode::Accept);
        match mode {
            Mode::Accept => return HttpResponse::Ok().finish(),
            Mode::Fail => return HttpResponse::InternalServerError().body("receiver failing"),
            Mode::Hold => tokio::time::sleep(Duration::from_millis(20)).await,
            Mode::Redirect => {
                return HttpResponse::Found()
                    .insert_header(("Location", "/moved"))
                    .finish()
            }
        }
    }
}

async fn moved(shared: web::Data<Shared>) -> HttpResponse {
    *shared.moved.lock().unwrap() += 1;
    HttpResponse::Ok().finish()
}

impl Receiver {
    /// Starts on a free loopback port.
    pub fn start() -> Self {
        let address = crate::helpers::free_address();
        let mut receiver = Self {
            shared: Arc::new(Shared::default()),
            address,
            server: None,
        };
        receiver.resume();
        receiver
    }

    /// The URL to configure.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.address)
    }

    /// Sets how it answers.
    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = Some(mode);
    }

    /// Stops listening (connections are refused).
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop(false).await;
        }
    }

    /// Listens again on the same port.
    pub fn resume(&mut self) {
        let data = web::Data::from(Arc::clone(&self.shared));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/hook", web::post().to(hook))
                .route("/moved", web::to(moved))
        })
        .workers(1)
        .disable_signals()
        .bind(&self.address)
        .unwrap()
        .run();
        self.server = Some(server.handle());
        tokio::spawn(server);
    }

    /// How many requests followed a redirect to `/moved`.
    pub fn moved(&self) -> usize {
        *self.shared.moved.lock().unwrap()
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Waits until `done` holds for what was received (panics after `timeout`).
    pub async fn wait_until(
        &self,
        timeout: Duration,
        what: &str,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let received = self.received();
            if done(&received) {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not received in time; got {:?}",
                received.iter().map(Received::kind).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            drop(server.stop(false));
        }
    }
}

/// The distinct events in the order of their first arrival, each checked: its signature
/// verifies under `secret`, its id header matches the body, and every copy of an id carries
/// the same body.
pub fn distinct_checked(received: &[Received], secret: &str) -> Vec<Received> {
    let mut distinct: Vec<Received> = Vec::new();
    for r in received {
        assert!(
            verify(secret.as_bytes(), r.body.as_bytes(), &r.signature),
            "bad signature on {}",
            r.body
        );
        assert_eq!(
            r.json["id"],
            r.event_id.as_str(),
            "id header and body agree"
        );
        assert_eq!(r.kind_header, r.kind());
        match distinct.iter().find(|d| d.event_id == r.event_id) {
            Some(first) => assert_eq!(first.body, r.body, "a redelivery carries the same body"),
            None => distinct.push(r.clone()),
        }
    }
    distinct
}

/// The kinds of `events`, in order.
pub fn kinds(events: &[Received]) -> Vec<&str> {
    events.iter().map(Received::kind).collect()
}
