//! The catalog from independent SPIs, refreshed while the broker runs: an SPI that is down at
//! start, one that speaks another contract version, and an upgrade that would drop a plan with
//! live instances, and SPIs added to and removed from the settings file while the broker runs.
//! Real SPIs over mTLS; where an SPI of another build is needed, a small server
//! over the same mTLS serves the fragment it would serve.

use crate::helpers::{
    new_id, provision_body, spawn_app_with, spawn_services, TestApp, PLAN_SMALL, SERVICE_ID,
};
use crate::process::config_toml;
use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpResponse, HttpServer};
use broker::config::{Settings, SpiSettings};
use common::client::{CallContext, InternalClient};
use common::spi::SpiClient;
use serde_json::{json, Value};
use std::future::Future;
use std::net::TcpListener;
use std::time::{Duration, Instant};

const KV_SERVICE: &str = spi_keyvalue::offering::SERVICE_ID;
const KV_PLAN_SMALL: &str = spi_keyvalue::offering::PLAN_SMALL_ID;
/// How long a test waits for a catalog refresh (every second here) to show.
const REFRESH_WAIT: Duration = Duration::from_secs(20);

/// A loopback port nobody listens on: the kernel picks it, the test binds it later.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

/// Broker settings: refresh every second, spi-keyvalue expected on `kv_port`.
fn with_keyvalue_on(kv_port: u16) -> impl FnOnce(&mut Settings) {
    move |s| {
        s.catalog_refresh_secs = 1;
        s.spis.push(SpiSettings {
            name: "spi-keyvalue".into(),
            url: format!("https://localhost:{kv_port}"),
        });
    }
}

/// The real spi-keyvalue on `port`.
async fn start_keyvalue(app: &TestApp, port: u16) -> ServerHandle {
    let settings = spi_keyvalue::config::Settings {
        listen: format!("127.0.0.1:{port}"),
        tls: app.env.tls("spi-keyvalue"),
        ..Default::default()
    };
    let spi = spi_keyvalue::startup::Application::build(settings)
        .await
        .unwrap();
    let handle = spi.server_handle();
    tokio::spawn(spi.run_until_stopped());
    handle
}

/// The catalog fragment an SPI serves, fetched with the broker's certificate.
async fn fragment_of(app: &TestApp, url: &str) -> Value {
    let client = InternalClient::new(url, &app.env.tls("broker"), Duration::from_secs(10)).unwrap();
    let fragment = SpiClient::new(client)
        .catalog(&CallContext::default())
        .await
        .unwrap();
    serde_json::to_value(fragment).unwrap()
}

/// Serves `fragment` at `GET /spi/v1/catalog` over mTLS with the certificate of `cert`: an SPI
/// of another build than the one in this workspace, seen the way the broker sees it.
fn serve_fragment(app: &TestApp, cert: &str, port: u16, fragment: &Value) -> ServerHandle {
    let tls = app.env.tls(cert).server_config().unwrap();
    let body = web::Bytes::from(serde_json::to_vec(fragment).unwrap());
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let server = HttpServer::new(move || {
        let body = body.clone();
        App::new().route(
            &format!("{}/catalog", common::spi::PREFIX),
            web::get().to(move || {
                let body = body.clone();
                async move {
                    HttpResponse::Ok()
                        .content_type("application/json")
                        .body(body)
                }
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .listen_rustls_0_23(listener, tls)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    handle
}

/// The offerings of `GET /v2/catalog`: id → plan ids.
async fn offerings(app: &TestApp) -> Vec<(String, Vec<String>)> {
    let answer = app.get("/v2/catalog").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    answer.body["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let plans = s["plans"].as_array().unwrap();
            (
                s["id"].as_str().unwrap().to_string(),
                plans
                    .iter()
                    .map(|p| p["id"].as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect()
}

async fn offering_ids(app: &TestApp) -> Vec<String> {
    offerings(app).await.into_iter().map(|(id, _)| id).collect()
}

fn problem(app: &TestApp, spi: &str) -> Option<String> {
    app.catalog.as_ref().unwrap().problem(spi)
}

/// Waits until `check` holds, at most [`REFRESH_WAIT`].
async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + REFRESH_WAIT;
    while !check().await {
        assert!(Instant::now() < deadline, "still not the case: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn keyvalue_provision_body() -> Value {
    json!({
        "service_id": KV_SERVICE, "plan_id": KV_PLAN_SMALL,
        "organization_guid": "org-1", "space_guid": "space-1",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_spi_down_at_broker_start_is_left_out_and_its_offering_appears_once_it_is_up() {
    let kv_port = free_port();
    let app = spawn_app_with(with_keyvalue_on(kv_port)).await;

    assert_eq!(offering_ids(&app).await, [SERVICE_ID], "only PostgreSQL");
    let down = problem(&app, "spi-keyvalue").expect("the SPI that is down is reported");
    assert!(
        down.contains("SPI spi-keyvalue catalog unavailable"),
        "{down}"
    );
    assert_eq!(problem(&app, "spi-postgres"), None);
    let refused = app
        .provision(&new_id(), &keyvalue_provision_body(), true)
        .await;
    assert_eq!(refused.status, 400, "{refused:?}");

    let kv = start_keyvalue(&app, kv_port).await;
    wait_until("the key-value offering is in the catalog", || async {
        offering_ids(&app).await.len() == 2
    })
    .await;
    assert_eq!(offering_ids(&app).await, [SERVICE_ID, KV_SERVICE]);
    assert_eq!(problem(&app, "spi-keyvalue"), None);
    kv.stop(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_spi_speaking_another_contract_version_is_refused_and_the_others_are_served() {
    let kv_port = free_port();
    let app = spawn_app_with(with_keyvalue_on(kv_port)).await;

    // What spi-keyvalue serves, as a build speaking contract version 2 would serve it.
    let scratch = free_port();
    let real = start_keyvalue(&app, scratch).await;
    let mut v2 = fragment_of(&app, &format!("https://localhost:{scratch}")).await;
    real.stop(false).await;
    v2["contract_version"] = json!(2);
    v2["spi"]["version"] = json!("2.0.0");
    let other_version = serve_fragment(&app, "spi-keyvalue", kv_port, &v2);

    wait_until("the refresh refused the version 2 SPI", || async {
        problem(&app, "spi-keyvalue").is_some_and(|p| p.contains("contract version 2"))
    })
    .await;
    assert_eq!(
        problem(&app, "spi-keyvalue").unwrap(),
        "SPI spi-keyvalue speaks SPI contract version 2, this broker speaks version 1: its fragment is refused and its offerings are left out of the catalog"
    );
    assert_eq!(
        offering_ids(&app).await,
        [SERVICE_ID],
        "PostgreSQL is served"
    );
    let refused = app
        .provision(&new_id(), &keyvalue_provision_body(), true)
        .await;
    assert_eq!(refused.status, 400, "{refused:?}");
    assert!(
        refused.body["description"]
            .as_str()
            .unwrap()
            .contains(KV_SERVICE),
        "{refused:?}"
    );

    // Back to a version 1 build at the same address: it is taken on the next refresh.
    other_version.stop(false).await;
    let kv = start_keyvalue(&app, kv_port).await;
    wait_until("the version 1 SPI is in the catalog", || async {
        offering_ids(&app).await.len() == 2
    })
    .await;
    kv.stop(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_spi_upgrade_that_would_remove_a_plan_with_live_instances_is_refused_until_they_are_gone(
) {
    let mut app = spawn_app_with(|s| s.catalog_refresh_secs = 1).await;
    let spi_url = app.spi_url().to_string();
    let served = fragment_of(&app, &spi_url).await;

    let instance = new_id();
    let a = app
        .provision(&instance, &provision_body(json!({})), true)
        .await;
    assert_eq!(a.status, 202, "{a:?}");
    let (done, seen) = app.wait_for_instance(&instance, &a.operation()).await;
    assert_eq!(done["state"], "succeeded", "{seen:?}");

    // The upgraded SPI no longer offers the small plan, which the instance uses.
    let mut upgraded = served.clone();
    upgraded["spi"]["version"] = json!("2.0.0");
    upgraded["services"][0]["plans"]
        .as_array_mut()
        .unwrap()
        .retain(|p| p["id"] != PLAN_SMALL);
    app.stop_spi().await;
    let upgrade = serve_fragment(&app, "spi-postgres", port_of(&spi_url), &upgraded);

    wait_until("the refresh refused the fragment", || async {
        problem(&app, "spi-postgres").is_some_and(|p| p.contains("refused"))
    })
    .await;
    let refusal = problem(&app, "spi-postgres").unwrap();
    assert!(
        refusal.starts_with(
            "new catalog fragment of SPI spi-postgres refused: it removes a plan with 1 live instance (postgresql/small (plan id "
        ),
        "{refusal}"
    );
    let catalog = offerings(&app).await;
    assert!(
        catalog[0].1.iter().any(|p| p == PLAN_SMALL),
        "the small plan is still offered: {catalog:?}"
    );

    // Without live instances on it, the plan may go: the next refresh takes the new fragment.
    let d = app.deprovision(&instance).await;
    assert_eq!(d.status, 202, "{d:?}");
    let (done, seen) = app.wait_for_instance(&instance, &d.operation()).await;
    assert_eq!(done["state"], "succeeded", "{seen:?}");
    wait_until("the small plan left the catalog", || async {
        let catalog = offerings(&app).await;
        !catalog[0].1.iter().any(|p| p == PLAN_SMALL)
    })
    .await;
    assert_eq!(problem(&app, "spi-postgres"), None);
    upgrade.stop(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_spi_added_to_the_settings_file_is_served_and_its_removal_waits_for_its_instances() {
    let mut app = spawn_services(false).await;
    let mut started = app.broker_settings();
    started.catalog_refresh_secs = 1;
    let file = app.env.state.path().join("broker-catalog.toml");
    std::fs::write(&file, config_toml(&started)).unwrap();
    let settings = Settings::load(Some(&file)).unwrap();
    assert_eq!(settings.spis.len(), 1, "only spi-postgres in the file");
    app.start_broker(settings).await;
    assert_eq!(offering_ids(&app).await, [SERVICE_ID]);

    // spi-keyvalue comes up and is appended to the file: the next refresh serves it.
    let kv_port = free_port();
    let kv = start_keyvalue(&app, kv_port).await;
    let mut with_kv = started.clone();
    with_kv.spis.push(SpiSettings {
        name: "spi-keyvalue".into(),
        url: format!("https://localhost:{kv_port}"),
    });
    std::fs::write(&file, config_toml(&with_kv)).unwrap();
    wait_until("the key-value offering is in the catalog", || async {
        offering_ids(&app).await.len() == 2
    })
    .await;
    assert_eq!(offering_ids(&app).await, [SERVICE_ID, KV_SERVICE]);
    assert_eq!(problem(&app, "spi-keyvalue"), None);
    let instance = app.provision_keyvalue().await;

    // Removed from the file while its instance lives: refused, the offering stays (and routes).
    std::fs::write(&file, config_toml(&started)).unwrap();
    wait_until("the refresh refused the removal", || async {
        problem(&app, "spi-keyvalue").is_some_and(|p| p.contains("refused"))
    })
    .await;
    let refusal = problem(&app, "spi-keyvalue").unwrap();
    assert!(
        refusal.starts_with(
            "removal of SPI spi-keyvalue from the settings refused: its offerings have 1 live instance (keyvalue/small (plan id "
        ),
        "{refusal}"
    );
    assert_eq!(offering_ids(&app).await, [SERVICE_ID, KV_SERVICE]);
    assert_eq!(problem(&app, "spi-postgres"), None);

    // Once the instance is deprovisioned (through the kept SPI), the next refresh drops it.
    let d = app.delete_keyvalue(&instance, None).await;
    assert_eq!(d.status, 202, "{d:?}");
    let (done, seen) = app.wait_for_instance(&instance, &d.operation()).await;
    assert_eq!(done["state"], "succeeded", "{seen:?}");
    wait_until("the key-value offering left the catalog", || async {
        offering_ids(&app).await == [SERVICE_ID]
    })
    .await;
    assert_eq!(problem(&app, "spi-keyvalue"), None, "no longer listed");
    let gone = app
        .provision(&new_id(), &keyvalue_provision_body(), true)
        .await;
    assert_eq!(gone.status, 400, "{gone:?}");
    kv.stop(false).await;
}
