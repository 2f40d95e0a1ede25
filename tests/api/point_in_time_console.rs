//! Point-in-time restore in the console, in a real browser, against the
//! real binary with WAL archiving on: the tenant page shows the recovery
//! window, and "restore to a time" as a new tenant brings back exactly the
//! rows written up to that time, the operation followed on the page.

use serde_json::json;

use crate::kit::binary::{open_folder, start_serve, terminate};
use crate::kit::browser::{self, sign_in};
use crate::kit::pitr::{
    archiving_serve, four_markers, markers, pgbackrest_or_skip, post, superuser,
    window_with_a_backup,
};

#[tokio::test]
async fn the_console_shows_a_tenants_recovery_window_and_restores_it_to_a_time_as_a_new_tenant() {
    if !pgbackrest_or_skip() {
        return;
    }
    crate::timing::run_alone();
    let (data_dir, backups, recovery) = (open_folder(), open_folder(), open_folder());
    let (mut first, base, token) = start_serve(data_dir.path()).await;
    let token = token.expect("a first start prints a token");
    let (status, tenant, _) = post(
        &base,
        &token,
        "/v1/tenants",
        json!({ "name": "Console PITR", "slug": "console-pitr" }),
    )
    .await;
    assert_eq!(status, 201, "{tenant}");
    let id = tenant["id"].as_str().unwrap().to_string();
    let db = tenant["database"].as_str().unwrap().to_string();
    terminate(&mut first).await;

    let serving = archiving_serve(data_dir.path(), backups.path(), recovery.path(), None).await;
    let base = serving.base.clone();
    window_with_a_backup(&base, &token, &id).await;
    let client = superuser(data_dir.path(), &db).await;
    let t = four_markers(&client).await;

    let Some(b) = browser::start().await else {
        return;
    };
    sign_in(&b, &format!("{base}/console/"), &token).await;
    b.client
        .goto(&format!("{base}/console/#/tenants/{id}"))
        .await
        .unwrap();
    b.until(
        "the recovery window",
        60,
        "return !!document.querySelector('#recovery-window') && !!document.querySelector('#restore-time')",
    )
    .await;
    let window = b.text("#recovery-window").await;
    assert!(
        window.contains("Earliest") && window.contains("now"),
        "{window}"
    );
    assert!(!window.contains("no base backup yet"), "{window}");

    // The time in the browser's own zone, as the operator would pick it.
    let at = t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    b.eval(&format!(
        "const d = new Date('{at}'); d.setMinutes(d.getMinutes() - d.getTimezoneOffset());
         document.querySelector('#restore-time input[name=at]').value = d.toISOString().slice(0, 23);"
    ))
    .await;
    b.type_into("#restore-time input[name=slug]", "console-pitr-copy")
        .await;
    b.click("#restore-time button[type=submit]").await;
    let ended = "const s = document.querySelector('#restore-time-status'); return !!s && s.textContent !== ''";
    b.until("the restore's start", 20, ended).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(240);
    loop {
        let state = b
            .eval("const s = document.querySelector('#restore-time-status'); return s ? (s.dataset.state || '') : 'gone'")
            .await;
        if state == "succeeded" || state == "failed" {
            break;
        }
        let shown = b
            .eval("return document.querySelector('#tenant-recovery').innerText")
            .await;
        assert!(
            std::time::Instant::now() < deadline,
            "the restore did not end: {state} {shown}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let status = b.text("#restore-time-status").await;
    assert!(status.contains("succeeded"), "{status}");
    b.close().await;

    let copy = reqwest::Client::new()
        .get(format!("{base}/v1/tenants?q=console-pitr-copy"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    let copy_db = copy["tenants"]
        .as_array()
        .and_then(|all| all.iter().find(|x| x["slug"] == "console-pitr-copy"))
        .and_then(|x| x["database"].as_str())
        .unwrap_or_else(|| panic!("the copy is listed: {copy}"))
        .to_string();
    let copied = superuser(data_dir.path(), &copy_db).await;
    assert_eq!(
        markers(&copied).await,
        vec![0, 1],
        "exactly the markers written up to T"
    );
    assert_eq!(
        markers(&client).await,
        vec![0, 1, 2, 3],
        "the original is untouched"
    );
}
