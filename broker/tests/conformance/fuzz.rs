//! Seeded random and malformed requests to every endpoint: never a 5xx, every 4xx an OSB
//! error body, and no state change after any 4xx. The seed is printed on failure; set
//! `FUZZ_SEED` to replay one.

use crate::helpers::{
    bind_body, new_id, provision_body, spawn_app, Answer, TestApp, PASSWORD, PLAN_SMALL,
    SERVICE_ID, USERNAME,
};
use crate::support::{assert_error_body, provisioned};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom as _;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{json, Value};

/// Requests sent per run.
const CASES: usize = 300;

/// What a platform can observe of the target instance and binding.
async fn snapshot(app: &TestApp, instance: &str, binding: &str) -> Vec<(u16, Value)> {
    let i = format!("/v2/service_instances/{instance}");
    let b = format!("{i}/service_bindings/{binding}");
    let mut out = vec![];
    for path in [
        i.clone(),
        format!("{i}/last_operation"),
        b.clone(),
        format!("{b}/last_operation"),
    ] {
        let answer = app.get(&path).await;
        out.push((answer.status, answer.body));
    }
    out
}

fn random_string(rng: &mut StdRng) -> String {
    match rng.random_range(0..7) {
        0 => String::new(),
        1 => new_id(),
        2 => "x".repeat(rng.random_range(1..3000)),
        3 => "ünïcödé-☃".into(),
        4 => "a b/c?d#e%".into(),
        5 => (0..rng.random_range(1..20))
            .map(|_| char::from(rng.random_range(0x20u8..0x7f)))
            .collect(),
        _ => "\u{0}\u{1}".into(),
    }
}

fn random_json(rng: &mut StdRng, depth: u32) -> Value {
    match rng.random_range(0..if depth > 2 { 5 } else { 7 }) {
        0 => Value::Null,
        1 => json!(rng.random::<bool>()),
        2 => json!(rng.random::<i64>()),
        3 => json!(rng.random::<f64>()),
        4 => json!(random_string(rng)),
        5 => Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| random_json(rng, depth + 1))
                .collect(),
        ),
        _ => {
            let mut o = serde_json::Map::new();
            for _ in 0..rng.random_range(0..4) {
                o.insert(random_string(rng), random_json(rng, depth + 1));
            }
            Value::Object(o)
        }
    }
}

/// A percent-encoded path segment.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A defect that makes a mutating request certainly refused (4xx), so a run never
/// provisions or deletes anything by chance.
#[derive(Debug, Clone, Copy)]
enum Defect {
    NoAuth,
    WrongPassword,
    BadVersion,
    BadIdentity,
    BodyNotJson,
    BodyNotObject,
    ServiceIdWrongType,
    ServiceIdMissing,
    PlanIdUnknown,
    DeleteQueryIncomplete,
}

const DEFECTS: &[Defect] = &[
    Defect::NoAuth,
    Defect::WrongPassword,
    Defect::BadVersion,
    Defect::BadIdentity,
    Defect::BodyNotJson,
    Defect::BodyNotObject,
    Defect::ServiceIdWrongType,
    Defect::ServiceIdMissing,
    Defect::PlanIdUnknown,
    Defect::DeleteQueryIncomplete,
];

struct Case {
    method: Method,
    path: String,
    headers: Vec<(String, String)>,
    auth: Option<(String, String)>,
    body: Option<Vec<u8>>,
    defect: Option<Defect>,
}

fn generate(rng: &mut StdRng, instance: &str, binding: &str) -> Case {
    let ids = [instance.to_string(), new_id(), encode(&random_string(rng))];
    let i = ids.choose(rng).unwrap().clone();
    let b = [binding.to_string(), new_id(), encode(&random_string(rng))]
        .choose(rng)
        .unwrap()
        .clone();
    let inst = format!("/v2/service_instances/{i}");
    let bind = format!("{inst}/service_bindings/{b}");
    let (method, path, template) = match rng.random_range(0..10) {
        0 => (Method::GET, "/v2/catalog".to_string(), None),
        1 => (Method::PUT, inst, Some(provision_body(json!({})))),
        2 => (Method::GET, inst, None),
        3 => (
            Method::PATCH,
            inst,
            Some(json!({"service_id": SERVICE_ID, "plan_id": PLAN_SMALL})),
        ),
        4 => (Method::DELETE, inst, None),
        5 => (Method::GET, format!("{inst}/last_operation"), None),
        6 => (Method::PUT, bind, Some(bind_body())),
        7 => (Method::GET, bind, None),
        8 => (Method::DELETE, bind, None),
        _ => (Method::GET, format!("{bind}/last_operation"), None),
    };
    let mutating = method != Method::GET;
    let defect = mutating.then(|| {
        let mut d = *DEFECTS.choose(rng).unwrap();
        // Body defects only apply to requests with a body, query defects to DELETEs.
        if method == Method::DELETE
            && matches!(
                d,
                Defect::BodyNotJson
                    | Defect::BodyNotObject
                    | Defect::ServiceIdWrongType
                    | Defect::ServiceIdMissing
                    | Defect::PlanIdUnknown
            )
        {
            d = Defect::DeleteQueryIncomplete;
        }
        if method != Method::DELETE && matches!(d, Defect::DeleteQueryIncomplete) {
            d = Defect::ServiceIdMissing;
        }
        d
    });

    // The query: random known and unknown parameters, sometimes garbage.
    let mut query: Vec<String> = vec![];
    for key in ["accepts_incomplete", "service_id", "plan_id", "operation"] {
        match rng.random_range(0..4) {
            0 => {}
            1 => query.push(format!("{key}={}", encode(&random_string(rng)))),
            _ => query.push(format!(
                "{key}={}",
                match key {
                    "accepts_incomplete" => "true",
                    "service_id" => SERVICE_ID,
                    "plan_id" => PLAN_SMALL,
                    _ => "op",
                }
            )),
        }
    }
    if matches!(defect, Some(Defect::DeleteQueryIncomplete)) {
        query.retain(|q| !q.starts_with("service_id=") && !q.starts_with("plan_id="));
        if rng.random() {
            query.push("service_id=".into());
        }
    }
    if rng.random_range(0..4) == 0 {
        query.push(format!(
            "{}={}",
            encode(&random_string(rng)),
            encode(&random_string(rng))
        ));
    }
    if rng.random_range(0..10) == 0 {
        query.push("%zz&&==&;".into());
    }
    let path = if query.is_empty() {
        path
    } else {
        format!("{path}?{}", query.join("&"))
    };

    // The body.
    let mut body = template.map(|mut t| {
        if rng.random() {
            t[random_string(rng)] = random_json(rng, 0);
        }
        if rng.random_range(0..3) == 0 {
            t["parameters"] = random_json(rng, 0);
        }
        serde_json::to_vec(&t).unwrap()
    });
    if !mutating && rng.random_range(0..4) == 0 {
        body = Some(serde_json::to_vec(&random_json(rng, 0)).unwrap());
    }
    if let Some(template) = body
        .as_ref()
        .and_then(|b| serde_json::from_slice::<Value>(b).ok())
    {
        let mut t = template;
        match defect {
            Some(Defect::BodyNotJson) => {
                let mut raw = serde_json::to_vec(&t).unwrap();
                raw.truncate(rng.random_range(0..raw.len()));
                raw.push(b'{');
                body = Some(raw);
            }
            Some(Defect::BodyNotObject) => {
                body = Some(serde_json::to_vec(&json!([t])).unwrap());
            }
            Some(Defect::ServiceIdWrongType) => {
                t["service_id"] = json!([1, 2]);
                body = Some(serde_json::to_vec(&t).unwrap());
            }
            Some(Defect::ServiceIdMissing) => {
                t.as_object_mut().map(|o| o.remove("service_id"));
                body = Some(serde_json::to_vec(&t).unwrap());
            }
            Some(Defect::PlanIdUnknown) => {
                t["plan_id"] = json!(format!("unknown-{}", random_string(rng)));
                body = Some(serde_json::to_vec(&t).unwrap());
            }
            _ => {}
        }
    }

    let mut headers = vec![];
    if !matches!(defect, Some(Defect::BadVersion)) {
        headers.push((
            "X-Broker-API-Version".into(),
            ["2.17", "2.13", "2.0"].choose(rng).unwrap().to_string(),
        ));
    } else if rng.random() {
        headers.push((
            "X-Broker-API-Version".into(),
            random_string(rng)
                .chars()
                .filter(|c| !c.is_control())
                .collect(),
        ));
    }
    if matches!(defect, Some(Defect::BadIdentity)) {
        headers.push((
            "X-Broker-API-Originating-Identity".into(),
            [
                "cloudfoundry",
                "cloudfoundry e30=",
                "kubernetes eyJ1c2VybmFtZSI6ImEifQ==",
                "x !!!",
            ]
            .choose(rng)
            .unwrap()
            .to_string(),
        ));
    }
    if rng.random() {
        headers.push((
            "X-Broker-API-Request-Identity".into(),
            random_string(rng)
                .chars()
                .filter(|c| !c.is_control() && c.is_ascii())
                .collect(),
        ));
    }
    if rng.random_range(0..4) == 0 {
        headers.push((
            "Content-Type".into(),
            ["text/plain", "application/xml", "garbage"]
                .choose(rng)
                .unwrap()
                .to_string(),
        ));
    }
    let auth = match defect {
        Some(Defect::NoAuth) => None,
        Some(Defect::WrongPassword) => Some((USERNAME.to_string(), random_string(rng))),
        _ => Some((USERNAME.to_string(), PASSWORD.to_string())),
    };
    Case {
        method,
        path,
        headers,
        auth,
        body,
        defect,
    }
}

async fn send(app: &TestApp, case: &Case) -> Answer {
    let mut req = app
        .http
        .request(case.method.clone(), format!("{}{}", app.address, case.path));
    if let Some((user, password)) = &case.auth {
        req = req.basic_auth(user, Some(password));
    }
    for (name, value) in &case.headers {
        req = req.header(name, value);
    }
    if let Some(body) = &case.body {
        req = req.body(body.clone());
        if !case.headers.iter().any(|(n, _)| n == "Content-Type") {
            req = req.header("Content-Type", "application/json");
        }
    }
    Answer::from(req.send().await.unwrap()).await
}

#[tokio::test]
async fn random_and_malformed_requests_never_get_a_5xx_and_every_4xx_is_an_osb_error_that_changes_nothing(
) {
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("fuzz seed: {seed} (replay with FUZZ_SEED={seed})");
    let app = spawn_app().await;
    let instance = provisioned(&app, json!({})).await;
    let binding = new_id();
    assert_eq!(
        app.bind(&instance, &binding, &bind_body()).await.status,
        201
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let mut before = snapshot(&app, &instance, &binding).await;
    for n in 0..CASES {
        let case = generate(&mut rng, &instance, &binding);
        let answer = send(&app, &case).await;
        let what = format!(
            "seed {seed}, case {n}: {} {} (defect {:?}) -> {answer:?}",
            case.method,
            case.path.chars().take(300).collect::<String>(),
            case.defect
        );
        assert!(answer.status < 500, "{what}");
        if (400..500).contains(&answer.status) {
            assert_error_body(&answer);
            assert_eq!(
                answer.content_type.as_deref(),
                Some("application/json"),
                "{what}"
            );
            let after = snapshot(&app, &instance, &binding).await;
            assert_eq!(after, before, "state changed after a 4xx: {what}");
        } else {
            assert!(
                case.defect.is_none(),
                "a defective request succeeded: {what}"
            );
            before = snapshot(&app, &instance, &binding).await;
        }
    }
    app.stop_all().await;
}
