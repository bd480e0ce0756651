//! Silence and maintenance window handler tests: create, list with filters, expire, CRUD,
//! and their shared ids (harness in `notify/harness.rs`).

#![allow(clippy::unwrap_used, reason = "tests")]

#[path = "notify/harness.rs"]
mod harness;

use axum::http::{Method, StatusCode, header};
use rdkafka::mocking::MockCluster;
use serde_json::json;
use vigil_schema::Timestamp;

use harness::{EDITOR, VIEWER, call, error_fields, harness, ids};

fn at(s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(s).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silences_are_created_listed_and_expired() {
    let cluster = MockCluster::new(1).unwrap();
    let h = harness(&cluster).await;
    use Method as M;

    let before = Timestamp::now();
    let (status, headers, now) = call(
        &h,
        M::POST,
        "/api/v1/silences",
        Some(EDITOR),
        Some(json!({"matchers": ["monitor=checkout"], "duration": "2h", "comment": "deploy"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{now}");
    let id = now["id"].as_str().unwrap().to_owned();
    assert_eq!(headers[header::LOCATION], format!("/api/v1/silences/{id}"));
    assert_eq!(
        (
            now["author"].as_str(),
            now["state"].as_str(),
            now["comment"].as_str()
        ),
        (Some("ops"), Some("active"), Some("deploy")),
        "the author is the key's name"
    );
    assert_eq!(now["matchers"], json!(["monitor=checkout"]));
    let starts = at(now["starts_at"].as_str().unwrap());
    assert!(starts >= before);
    assert_eq!(
        at(now["ends_at"].as_str().unwrap()),
        starts.saturating_add_millis(7_200_000)
    );
    let later_start = Timestamp::now()
        .saturating_add_millis(3_600_000)
        .to_string();
    let (status, _, later) = call(
        &h,
        M::POST,
        "/api/v1/silences",
        Some(EDITOR),
        Some(
            json!({"id": "night", "matchers": ["region=~eu-.*", "severity!=critical"],
                    "starts_at": later_start, "duration": "1h"}),
        ),
    )
    .await;
    assert_eq!(
        (status, later["state"].as_str()),
        (StatusCode::CREATED, Some("pending"))
    );

    // 422s name fields; an author cannot be given; 409 on a taken id; 403 for viewers.
    for (body, fields) in [
        (
            json!({"matchers": ["monitor=~(x"], "duration": "1h"}),
            vec!["matchers[0]"],
        ),
        (
            json!({"matchers": [], "ends_at": "2020-01-01T00:00:00Z"}),
            vec!["matchers", "ends_at"],
        ),
        (json!({"matchers": ["a=b"]}), vec!["ends_at"]),
    ] {
        let (status, _, problem) = call(
            &h,
            M::POST,
            "/api/v1/silences",
            Some(EDITOR),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(error_fields(&problem), fields, "{body}: {problem}");
    }
    let body = json!({"matchers": ["a=b"], "duration": "1h", "author": "mallory"});
    let (status, _, problem) =
        call(&h, M::POST, "/api/v1/silences", Some(EDITOR), Some(body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("unknown field `author`"),
        "{problem}"
    );
    let (status, _, _) = call(
        &h,
        M::POST,
        "/api/v1/silences",
        Some(EDITOR),
        Some(json!({"id": "night", "matchers": ["a=b"], "duration": "1h"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _, _) = call(
        &h,
        M::POST,
        "/api/v1/silences",
        Some(VIEWER),
        Some(json!({"matchers": ["a=b"], "duration": "1h"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Filters.
    for (query, expected) in [
        ("state=active", vec![id.as_str()]),
        ("state=pending", vec!["night"]),
        ("state=expired", vec![]),
        ("matcher=monitor%3Dcheckout", vec![id.as_str()]),
        ("author=ops&state=pending", vec!["night"]),
    ] {
        let (status, _, page) = call(
            &h,
            M::GET,
            &format!("/api/v1/silences?{query}"),
            Some(VIEWER),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{query}");
        assert_eq!(ids(&page), expected, "{query}");
    }
    let (status, _, body) = call(
        &h,
        M::GET,
        "/api/v1/silences?state=gone",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(
        (status, body["parameter"].as_str()),
        (StatusCode::BAD_REQUEST, Some("state"))
    );

    // Expire: POST …/expire answers the silence; DELETE expires too; both keep it.
    let (status, _, _) = call(
        &h,
        M::POST,
        &format!("/api/v1/silences/{id}/expire"),
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, expired) = call(
        &h,
        M::POST,
        &format!("/api/v1/silences/{id}/expire"),
        Some(EDITOR),
        None,
    )
    .await;
    assert_eq!(
        (status, expired["state"].as_str()),
        (StatusCode::OK, Some("expired"))
    );
    assert!(at(expired["ends_at"].as_str().unwrap()) <= Timestamp::now());
    assert_eq!(expired["starts_at"], now["starts_at"]);
    let (status, _, again) = call(
        &h,
        M::POST,
        &format!("/api/v1/silences/{id}/expire"),
        Some(EDITOR),
        None,
    )
    .await;
    assert_eq!(
        (status, &again),
        (StatusCode::OK, &expired),
        "expiring twice changes nothing"
    );
    let (status, _, _) = call(&h, M::DELETE, "/api/v1/silences/night", Some(EDITOR), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, _, night) = call(&h, M::GET, "/api/v1/silences/night", Some(VIEWER), None).await;
    assert_eq!(night["state"], "expired");
    let (start, end) = (
        at(night["starts_at"].as_str().unwrap()),
        at(night["ends_at"].as_str().unwrap()),
    );
    assert!(start < end && end <= Timestamp::now(), "{night}");
    let (_, _, page) = call(
        &h,
        M::GET,
        "/api/v1/silences?state=expired",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    for (method, uri) in [
        (M::POST, "/api/v1/silences/nope/expire"),
        (M::DELETE, "/api/v1/silences/nope"),
        (M::GET, "/api/v1/silences/nope"),
    ] {
        let (status, _, _) = call(&h, method, uri, Some(EDITOR), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_windows_crud_and_shared_ids() {
    let cluster = MockCluster::new(1).unwrap();
    let h = harness(&cluster).await;
    use Method as M;

    let weekly = json!({"id": "db-weekly", "name": "DB patching", "matchers": ["monitor=~db-.*"],
        "schedule": {"recurring": {"cron": "0 2 * * SUN", "duration": "2h",
                                   "time_zone": "Europe/Berlin"}}});
    let (status, headers, body) = call(
        &h,
        M::POST,
        "/api/v1/maintenance",
        Some(EDITOR),
        Some(weekly.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(headers[header::LOCATION], "/api/v1/maintenance/db-weekly");
    assert!(body["active"].is_boolean());
    let mut expected = weekly.clone();
    expected["active"] = body["active"].clone();
    assert_eq!(body, expected);
    let now = Timestamp::now();
    let one_off = json!({"id": "dc-move", "matchers": ["region=eu-west"],
        "schedule": {"one_off": {"starts_at": now.saturating_add_millis(-60_000).to_string(),
                                 "ends_at": now.saturating_add_millis(3_600_000).to_string()}}});
    let (status, _, body) = call(
        &h,
        M::POST,
        "/api/v1/maintenance",
        Some(EDITOR),
        Some(one_off),
    )
    .await;
    assert_eq!(
        (status, body["active"].as_bool()),
        (StatusCode::CREATED, Some(true))
    );
    let (_, _, page) = call(
        &h,
        M::GET,
        "/api/v1/maintenance?active=true",
        Some(VIEWER),
        None,
    )
    .await;
    assert!(ids(&page).contains(&"dc-move"), "{page}");
    let (status, _, body) = call(
        &h,
        M::GET,
        "/api/v1/maintenance?active=yes",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(
        (status, body["parameter"].as_str()),
        (StatusCode::BAD_REQUEST, Some("active"))
    );

    // 422 naming fields, 409 on ids held by either kind.
    let bad = json!({"id": "m", "matchers": ["monitor=db"],
        "schedule": {"recurring": {"cron": "0 25 * * *", "duration": "8d", "time_zone": "Mars/Base"}}});
    let (status, _, body) = call(&h, M::POST, "/api/v1/maintenance", Some(EDITOR), Some(bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        error_fields(&body),
        ["schedule.recurring.duration"],
        "structure first"
    );
    let bad = json!({"id": "m", "matchers": ["monitor=db"],
        "schedule": {"recurring": {"cron": "0 25 * * *", "duration": "1h", "time_zone": "Mars/Base"}}});
    let (_, _, body) = call(&h, M::POST, "/api/v1/maintenance", Some(EDITOR), Some(bad)).await;
    assert_eq!(
        error_fields(&body),
        ["schedule.recurring.cron", "schedule.recurring.time_zone"]
    );
    let (status, _, _) = call(
        &h,
        M::POST,
        "/api/v1/maintenance",
        Some(EDITOR),
        Some(weekly.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _, body) = call(
        &h,
        M::POST,
        "/api/v1/silences",
        Some(EDITOR),
        Some(json!({"id": "db-weekly", "matchers": ["a=b"], "duration": "1h"})),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a silence may not take a window's id: {body}"
    );

    // Update: a read-only `active` sent back is ignored; 404; 422 on another id; delete.
    let (_, _, mut got) = call(
        &h,
        M::GET,
        "/api/v1/maintenance/db-weekly",
        Some(VIEWER),
        None,
    )
    .await;
    got["schedule"]["recurring"]["duration"] = json!("3h");
    let (status, _, body) = call(
        &h,
        M::PUT,
        "/api/v1/maintenance/db-weekly",
        Some(EDITOR),
        Some(got),
    )
    .await;
    assert_eq!(
        (status, &body["schedule"]["recurring"]["duration"]),
        (StatusCode::OK, &json!("3h"))
    );
    let (status, _, _) = call(
        &h,
        M::PUT,
        "/api/v1/maintenance/nope",
        Some(EDITOR),
        Some(weekly.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, body) = call(
        &h,
        M::PUT,
        "/api/v1/maintenance/dc-move",
        Some(EDITOR),
        Some(weekly),
    )
    .await;
    assert_eq!(
        (status, error_fields(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["id"])
    );
    let (status, _, _) = call(
        &h,
        M::DELETE,
        "/api/v1/maintenance/db-weekly",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = call(
        &h,
        M::DELETE,
        "/api/v1/maintenance/db-weekly",
        Some(EDITOR),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = call(
        &h,
        M::GET,
        "/api/v1/maintenance/db-weekly",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, _, page) = call(&h, M::GET, "/api/v1/maintenance", Some(VIEWER), None).await;
    assert_eq!(ids(&page), ["dc-move"]);
}
