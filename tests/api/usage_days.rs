//! Usage past its hourly retention: hours rolled up into days, counted in
//! exactly one of the two, and read back per day over the API and from
//! `tenant-plane usage`.

use reqwest::Method;
use serde_json::{json, Value};
use tenant_plane::auth::Role;

use crate::helpers::spawn_app_with;
use crate::kit::cli::cli;
use crate::kit::{call, id, ok_json};

#[tokio::test]
async fn hours_past_retention_roll_up_into_days_that_the_api_and_the_cli_report() {
    let app = spawn_app_with(|s| s.usage.flush_secs = 3600).await;
    let tenant = app.create_tenant("rolled", json!({})).await;
    let admin = app.token(Role::TenantAdmin, Some(id(&tenant)), None);
    for _ in 0..4 {
        let answer = call(&app, Method::GET, "/v1/agents", &admin, None, None).await;
        assert_eq!(answer.status(), 200);
    }
    let state = app.state().await;
    let services = state.services();
    services.usage.flush().await;
    // The hour, as if it were 40 days old.
    let catalog = app.catalog_db().await;
    catalog
        .execute(
            "UPDATE usage_hourly SET hour = hour - interval '40 days' WHERE tenant_id = $1",
            &[&id(&tenant).as_uuid()],
        )
        .await
        .unwrap();
    let moved = services.catalog.roll_up_usage(35).await.unwrap();
    assert_eq!(moved, 1, "the old hour became its day");
    let (hours, days, in_days): (i64, i64, i64) = {
        let row = catalog
            .query_one(
                "SELECT (SELECT count(*) FROM usage_hourly WHERE tenant_id = $1),
                        (SELECT count(*) FROM usage_daily WHERE tenant_id = $1),
                        (SELECT coalesce(sum(requests_data), 0)::int8 FROM usage_daily WHERE tenant_id = $1)",
                &[&id(&tenant).as_uuid()],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1), row.get(2))
    };
    assert_eq!((hours, days, in_days), (0, 1, 4), "in one table only");
    // A second roll-up finds nothing more.
    assert_eq!(services.catalog.roll_up_usage(35).await.unwrap(), 0);

    let from = (chrono::Utc::now() - chrono::Duration::days(50))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let path = format!(
        "/v1/tenants/{}/usage?granularity=day&from={from}",
        id(&tenant)
    );
    let report = ok_json(app.admin(Method::GET, &path, None).await, 200).await;
    let points = report["points"].as_array().unwrap();
    assert_eq!(points.len(), 1, "{report}");
    assert_eq!(points[0]["requests_data"], 4, "{report}");

    let tenant_id = id(&tenant).to_string();
    let (code, out, err) = cli(
        &app,
        &[
            "usage", "--tenant", &tenant_id, "--daily", "--from", &from, "--json",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed[0]["requests_data"], 4, "{out}");
    // The fleet's top tenants over the same range, from the CLI.
    let (code, out, err) = cli(
        &app,
        &["usage", "--metric", "requests", "--from", &from, "--json"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let top: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(top[0]["tenant_id"], tenant_id, "{out}");
}
