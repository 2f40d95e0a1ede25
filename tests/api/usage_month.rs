//! A month's request total, the number a monthly quota weighs: it rides on
//! the hours (each hour carries its month's total so far), so metering adds
//! one row per tenant and hour and no other, and the total stays exact
//! through late flushes, several hours in one flush, a month's edge and
//! hours rolled up into days.

use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use serde_json::json;
use tenant_plane::catalog::RequestCounts;
use tenant_plane::domain::TenantId;
use uuid::Uuid;

use crate::helpers::spawn_app_with;
use crate::kit::id;

fn counts(tenant: TenantId, hour: DateTime<Utc>, data: i64, control: i64) -> RequestCounts {
    RequestCounts {
        tenant,
        hour,
        data,
        control,
    }
}

#[tokio::test]
async fn the_months_request_total_counts_late_flushes_and_rolled_up_days_with_one_row_per_tenant_and_hour(
) {
    let app = spawn_app_with(|s| s.usage.flush_secs = 3600).await;
    let tenant = id(&app.create_tenant("monthly", json!({})).await);
    let state = app.state().await;
    let catalog = &state.services().catalog;
    let now = Utc::now();
    let month = Utc
        .with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .unwrap();
    let hour = |n: i64| month + Duration::hours(n);
    let writer = Uuid::new_v4();
    let total = || async { catalog.quota_use(tenant).await.unwrap().1 };
    let flush = |seq: i64, rows: Vec<RequestCounts>| async move {
        let months = catalog
            .flush_usage_segment(writer, seq, &rows)
            .await
            .unwrap()
            .expect("a new segment");
        months.into_iter().find(|m| m.0 == tenant).unwrap().1
    };

    assert_eq!(flush(1, vec![counts(tenant, hour(1), 3, 0)]).await, 3);
    assert_eq!(flush(2, vec![counts(tenant, hour(2), 4, 1)]).await, 8);
    // A replica that flushes hour 1 late: hour 2's total grows with it.
    assert_eq!(flush(3, vec![counts(tenant, hour(1), 2, 0)]).await, 10);
    // Two new hours in one flush.
    let both = vec![counts(tenant, hour(3), 1, 0), counts(tenant, hour(4), 0, 1)];
    assert_eq!(flush(4, both).await, 12);
    // The month before counts for its own month only.
    assert_eq!(flush(5, vec![counts(tenant, hour(-1), 100, 0)]).await, 12);
    assert_eq!(total().await, 12);
    // A segment added before adds nothing.
    let again = catalog
        .flush_usage_segment(writer, 5, &[counts(tenant, hour(1), 50, 0)])
        .await
        .unwrap();
    assert!(again.is_none());

    let db = app.catalog_db().await;
    let per_hour: Vec<(DateTime<Utc>, i64)> = db
        .query(
            "SELECT hour, month_requests FROM usage_hourly WHERE tenant_id = $1 ORDER BY hour",
            &[&tenant.as_uuid()],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let expected = [(-1, 100), (1, 5), (2, 10), (3, 11), (4, 12)];
    let expected: Vec<_> = expected.iter().map(|&(h, n)| (hour(h), n)).collect();
    assert_eq!(per_hour, expected, "one row per hour, each with its total");

    // The month's hours rolled up into its first day: the total holds, and
    // the next hour starts from it.
    db.execute(
        "INSERT INTO usage_daily (tenant_id, day, requests_data, requests_control)
         VALUES ($1, $2, 10, 2)",
        &[&tenant.as_uuid(), &month.date_naive()],
    )
    .await
    .unwrap();
    db.execute(
        "DELETE FROM usage_hourly WHERE tenant_id = $1 AND hour >= $2",
        &[&tenant.as_uuid(), &month],
    )
    .await
    .unwrap();
    assert_eq!(total().await, 12, "from the month's days");
    assert_eq!(flush(6, vec![counts(tenant, hour(30), 1, 0)]).await, 13);
    assert_eq!(total().await, 13);
}
