use crate::helpers::spawn_app;

#[tokio::test]
async fn healthz_and_readyz_answer_200_with_a_request_id() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz"] {
        let response = app.get(path, None).await;
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let id = response
            .headers()
            .get("x-request-id")
            .expect("x-request-id");
        assert!(uuid::Uuid::parse_str(id.to_str().unwrap()).is_ok());
    }
}

#[tokio::test]
async fn each_response_gets_its_own_request_id() {
    let app = spawn_app().await;
    let a = app.get("/healthz", None).await;
    let b = app.get("/nope", None).await;
    assert_ne!(a.headers()["x-request-id"], b.headers()["x-request-id"]);
}

#[tokio::test]
async fn readyz_answers_503_in_the_envelope_when_the_catalog_is_gone() {
    let app = spawn_app().await;
    let admin = app.server.connect("postgres").await;
    // Cut the app off from its catalog: refuse new connections, then end
    // the open ones until none is left. A session that was starting while
    // connections were refused may still arrive, and a terminated backend
    // exits a moment after the call returns: until then it still answers.
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS false",
            app.catalog_db
        ))
        .await
        .unwrap();
    for _ in 0..200 {
        let left: i64 = admin
            .query_one(
                "SELECT count(*) FILTER (WHERE NOT pg_terminate_backend(pid)) + count(*)
                   FROM pg_stat_activity WHERE datname = $1",
                &[&app.catalog_db],
            )
            .await
            .unwrap()
            .get(0);
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let response = app.get("/readyz", None).await;
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string()),
        Some("1".into()),
        "status {}",
        response.status()
    );
    let (status, code, _) = crate::helpers::envelope(response).await;
    assert_eq!((status, code.as_str()), (503, "not_ready"));
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS true",
            app.catalog_db
        ))
        .await
        .unwrap();
    assert_eq!(app.get("/readyz", None).await.status().as_u16(), 200);
}
