//! A deployment name belongs to the instance that created it: a spec or a delete for another
//! instance is refused with 409 and the deployment is left as it was.

use crate::helpers::*;
use common::client::ClientError;
use common::deployer::{DeploymentSpec, DeploymentState, Engine, OWNER_LABEL};

fn owned_by(mut spec: DeploymentSpec, owner: &str) -> DeploymentSpec {
    spec.labels
        .insert(OWNER_LABEL.to_string(), owner.to_string());
    spec
}

fn expect_conflict(result: Result<common::deployer::Task, ClientError>) -> String {
    match result {
        Err(ClientError::Status {
            status, envelope, ..
        }) => {
            assert_eq!(status, 409, "{envelope:?}");
            assert_eq!(envelope.error, "Conflict");
            assert!(envelope.request_id.is_some());
            envelope.description
        }
        other => panic!("expected 409, got {other:?}"),
    }
}

#[tokio::test]
async fn a_name_owned_by_one_instance_is_never_applied_or_deleted_for_another() {
    let app = spawn_app().await;
    let name = unique_name("kv");
    let password = password();
    let victim = owned_by(spec(Engine::Redis, &name, &password, &[]), "Victim-1");
    apply_ok(&app.client, &victim).await;
    let before = app.client.get_deployment(&name, &ctx()).await.unwrap();
    let pid = pid_from(&deployment_dir(app.env.data_dir(), &name).join("redis.pid"));

    // Another instance's spec under the same name (other settings, other admin password).
    let attacker = owned_by(
        spec(
            Engine::Redis,
            &name,
            &crate::helpers::password(),
            &[("maxclients", "7")],
        ),
        "another-instance",
    );
    let description = expect_conflict(app.client.put_deployment(&attacker, &ctx()).await);
    assert!(description.contains(&name), "{description}");
    assert!(description.contains("another instance"), "{description}");
    // A spec without an owner cannot take it either.
    let mut anonymous = attacker.clone();
    anonymous.labels.remove(OWNER_LABEL);
    expect_conflict(app.client.put_deployment(&anonymous, &ctx()).await);
    // Nor can a delete for another instance.
    expect_conflict(
        app.client
            .delete_owned_deployment(&name, "another-instance", &ctx())
            .await,
    );

    let after = app.client.get_deployment(&name, &ctx()).await.unwrap();
    assert_eq!(after.state, DeploymentState::Running);
    assert_eq!(after.labels, before.labels);
    assert_eq!(after.endpoints, before.endpoints);
    assert!(process_exists(pid), "the victim's server was stopped");
    assert_eq!(
        pid_from(&deployment_dir(app.env.data_dir(), &name).join("redis.pid")),
        pid,
        "the victim's server was restarted"
    );

    // Its owner still updates and deletes it.
    apply_ok(&app.client, &victim).await;
    let task = app
        .client
        .delete_owned_deployment(&name, "Victim-1", &ctx())
        .await
        .unwrap();
    let done = wait_for_task(&app.client, &task.id).await;
    assert_eq!(
        done.state,
        common::deployer::TaskState::Succeeded,
        "{done:?}"
    );
    wait_until_gone(pid).await;
}
