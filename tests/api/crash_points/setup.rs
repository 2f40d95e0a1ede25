//! Each family's scenario up to the operation, and the operation's start.

use super::*;
use crate::kit::drain::set_state;

/// What a scenario set up before the operation: the tenant it acts on,
/// where it may go, and the agents acknowledged so far.
pub(super) struct Setup {
    pub(super) tenant: Option<TenantId>,
    pub(super) second: String,
    pub(super) catalog_server: String,
    pub(super) archive: Option<std::path::PathBuf>,
    pub(super) acknowledged: BTreeMap<TenantId, i64>,
}

pub(super) async fn set_up(
    rig: &Rig,
    family: Family,
    round: usize,
    dir: &std::path::Path,
) -> Setup {
    let replica = rig.replica(None).await;
    let second = match rig
        .admin(&replica, Method::GET, "/v1/servers", None)
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap()["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "second")
    {
        Some(s) => s["id"].as_str().unwrap().to_string(),
        None => rig.register_second(&replica).await,
    };
    let catalog_server = rig.catalog_server(&replica).await;
    let mut setup = Setup {
        tenant: None,
        second,
        catalog_server,
        archive: None,
        acknowledged: BTreeMap::new(),
    };
    // New tenants go to the catalog's server; the second one only receives moves.
    set_state(rig, &replica, &setup.second, "draining").await;
    set_state(rig, &replica, &setup.catalog_server, "active").await;
    if family != Family::Create {
        let id = rig
            .tenant_with_agents(&replica, &format!("{family:?}-{round}").to_lowercase(), 3)
            .await;
        setup.acknowledged.insert(id, 3);
        setup.tenant = Some(id);
    }
    match family {
        Family::Purge => {
            let id = setup.tenant.unwrap();
            rig.ok(
                &replica,
                Method::DELETE,
                &format!("/v1/tenants/{id}"),
                None,
                200,
            )
            .await;
        }
        Family::Restore => {
            let id = setup.tenant.unwrap();
            let archive = dir.join(format!("round-{round}.tpbackup"));
            let out = rig
                .cli(
                    &[
                        "backup",
                        "--tenant",
                        &id.to_string(),
                        "--out",
                        archive.to_str().unwrap(),
                    ],
                    None,
                )
                .await;
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            // Changed after the backup: a restore that finishes brings the
            // archive's settings back (with its records), one undone keeps these.
            rig.ok(
                &replica,
                Method::PATCH,
                &format!("/v1/tenants/{id}"),
                Some(json!({ "settings": { "branding": { "primaryColor": CHANGED } } })),
                200,
            )
            .await;
            rig.ok(
                &replica,
                Method::POST,
                &format!("/v1/tenants/{id}/suspend"),
                None,
                200,
            )
            .await;
            setup.archive = Some(archive);
        }
        Family::Drain => {
            let other = rig
                .tenant_with_agents(&replica, &format!("drain-{round}-b"), 2)
                .await;
            setup.acknowledged.insert(other, 2);
            // The drain moves them to the second server.
            rig.ok(
                &replica,
                Method::PATCH,
                &format!("/v1/servers/{}", setup.second),
                Some(json!({ "state": "active" })),
                200,
            )
            .await;
        }
        Family::Create | Family::Move => {}
    }
    if family == Family::Move {
        rig.ok(
            &replica,
            Method::PATCH,
            &format!("/v1/servers/{}", setup.second),
            Some(json!({ "state": "active" })),
            200,
        )
        .await;
    }
    replica.stop().await;
    setup
}

/// Starts the operation (all but a restore, which is the CLI's) on
/// `replica`; returns the task that waits for its answer, which may never
/// come: the process dies or stops at its failpoint.
pub(super) fn start_operation(
    rig: &Rig,
    family: Family,
    round: usize,
    setup: &Setup,
    replica: &Replica,
) -> tokio::task::JoinHandle<()> {
    let (client, base) = (rig.client.clone(), replica.base.clone());
    let token = crate::rig::admin_token();
    let (method, path, body) = match family {
        Family::Create => (
            Method::POST,
            "/v1/tenants".to_string(),
            Some(json!({ "name": "made", "slug": format!("made-{round}") })),
        ),
        Family::Purge => (
            Method::DELETE,
            format!("/v1/tenants/{}?purge=true", setup.tenant.unwrap()),
            None,
        ),
        Family::Move => (
            Method::POST,
            format!("/v1/tenants/{}/move", setup.tenant.unwrap()),
            Some(json!({ "server": setup.second })),
        ),
        Family::Drain => (
            Method::POST,
            format!("/v1/servers/{}/drain", setup.catalog_server),
            None,
        ),
        Family::Restore => unreachable!("a restore runs in the CLI"),
    };
    tokio::spawn(async move {
        let mut req = client
            .request(method, format!("{base}{path}"))
            .bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let _ = req.send().await;
    })
}

pub(super) fn restore_args(setup: &Setup) -> Vec<String> {
    vec![
        "restore".into(),
        "--file".into(),
        setup.archive.as_ref().unwrap().display().to_string(),
    ]
}
