//! The delivery resource over HTTPS: create, read, replace, delete (checked in the database and
//! across a restart), pages, ETags, ids never reused, and reads never older than any writer's write.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn create_read_replace_delete_round_trip_survives_a_restart() {
    let app = spawn_app().await;

    // Create: 201, Location, the stored row.
    let res = app
        .create(&json!({"reference": "DLV-T-1", "recipient": "Ada", "address": "1 Loop Road"}))
        .await;
    assert_eq!(res.status(), 201);
    assert_readable_by_origin(&res, "201");
    let location = header(res.headers(), "location")
        .expect("Location")
        .to_owned();
    let created = json(res).await;
    assert_eq!(location, format!("/delivery/{}", created["id"]));
    assert_eq!(created["status"], "pending", "status defaults to pending");
    assert_eq!(app.count_deliveries().await, SEEDED as i64 + 1);

    // The server is restarted on the same database file: nothing is lost.
    let app = app.restart(|_| {}).await;
    let res = app
        .article_request(Method::GET, &location, ORIGIN)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    assert_eq!(json(res).await, created);

    // Replace.
    let res = app
        .article_request(Method::PUT, &location, ORIGIN)
        .body(json!({"reference": "DLV-T-1", "recipient": "Ada L.", "address": "2 Loop Road", "status": "in_transit"}).to_string())
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    let replaced = json(res).await;
    assert_eq!(replaced["status"], "in_transit");
    assert_eq!(replaced["recipient"], "Ada L.");
    assert_eq!(replaced["created_at"], created["created_at"]);
    let status: String = on_db!(&app.db, |pool| sqlx::query_scalar(
        "SELECT status FROM deliveries WHERE reference = 'DLV-T-1'"
    )
    .fetch_one(pool)
    .await)
    .expect("row");
    assert_eq!(status, "in_transit");

    // Delete: 204, then 404.
    let res = app
        .article_request(Method::DELETE, &location, ORIGIN)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 204);
    assert_readable_by_origin(&res, "204");
    assert_eq!(app.count_deliveries().await, SEEDED as i64);
    let res = app
        .article_request(Method::GET, &location, ORIGIN)
        .send()
        .await
        .expect("sent");
    assert_problem(res, 404, "deleted").await;
}

#[tokio::test]
async fn the_list_is_ordered_by_id_and_head_answers_like_get() {
    let app = spawn_app().await;
    let body = json(app.get_all().await).await;
    let ids: Vec<i64> = body
        .as_array()
        .expect("array")
        .iter()
        .map(|d| d["id"].as_i64().expect("id"))
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);

    let head = app
        .article_request(Method::HEAD, "/delivery/all", ORIGIN)
        .send()
        .await
        .expect("sent");
    assert_eq!(head.status(), 200);
    assert_readable_by_origin(&head, "HEAD");
    assert_eq!(head.bytes().await.expect("body").len(), 0);
}

#[tokio::test]
async fn pages_follow_their_link_headers_and_a_bare_list_is_unchanged() {
    let app = spawn_app().await;
    let all = json(app.get_all().await).await;
    let mut seen = Vec::new();
    let mut next = Some("/delivery/all?limit=5".to_owned());
    while let Some(path) = next.take() {
        let res = app
            .article_request(Method::GET, &path, ORIGIN)
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), 200, "{path}");
        assert_readable_by_origin(&res, &path);
        let link = header(res.headers(), "link").unwrap_or_default().to_owned();
        next = link
            .split(", ")
            .find(|l| l.ends_with("rel=\"next\""))
            .map(|l| {
                l.trim_start_matches('<')
                    .split('>')
                    .next()
                    .expect("uri")
                    .to_owned()
            });
        seen.extend(json(res).await.as_array().expect("array").clone());
    }
    assert_eq!(
        serde_json::Value::Array(seen),
        all,
        "the pages add up to the bare list"
    );

    for bad in ["limit=0", "limit=1001", "limit=x", "offset=-1"] {
        let res = app
            .article_request(Method::GET, &format!("/delivery/all?{bad}"), ORIGIN)
            .send()
            .await
            .expect("sent");
        assert_problem(res, 400, bad).await;
    }
}

#[tokio::test]
async fn the_list_has_an_etag_answers_304_and_never_serves_data_older_than_a_write() {
    let app = spawn_app().await;
    let first = app.get_all().await;
    let etag = header(first.headers(), "etag").expect("ETag").to_owned();
    assert_eq!(
        header(first.headers(), "cache-control"),
        Some("private, no-cache")
    );

    // Unchanged: 304, no body, still readable by the page.
    let res = app
        .article_request(Method::GET, "/delivery/all", ORIGIN)
        .header("If-None-Match", &etag)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 304);
    assert_eq!(
        header(res.headers(), "access-control-allow-origin"),
        Some(ORIGIN)
    );
    assert!(res.bytes().await.expect("body").is_empty());

    // A write through the API: the next read has it, with a new ETag.
    assert_eq!(
        app.create(&json!({"reference": "R-API", "recipient": "A", "address": "B"}))
            .await
            .status(),
        201
    );
    let res = app
        .article_request(Method::GET, "/delivery/all", ORIGIN)
        .header("If-None-Match", &etag)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200, "the old ETag no longer matches");
    assert_ne!(header(res.headers(), "etag"), Some(etag.as_str()));
    assert_eq!(json(res).await.as_array().map(Vec::len), Some(SEEDED + 1));

    // A write by another connection (as another process would make): visible on the very next read.
    let other = open_db(&app.db_url).await;
    execute(
        &other,
        "INSERT INTO deliveries (reference, recipient, address) VALUES ('R-OTHER', 'O', 'P')",
    )
    .await;
    let list = json(app.get_all().await).await;
    assert!(
        list.as_array()
            .expect("array")
            .iter()
            .any(|d| d["reference"] == "R-OTHER"),
        "the other writer's row is served at once"
    );
}

/// `GET /delivery/{id}` answers from memory while nothing has changed; any write, through the
/// API or by another process, is in the very next read, and so is a delete.
#[tokio::test]
async fn one_delivery_is_never_older_than_the_last_write_from_any_writer() {
    let app = spawn_app().await;
    let get = |id: i64| {
        app.article_request(Method::GET, &format!("/delivery/{id}"), ORIGIN)
            .send()
    };
    let first = json(get(1).await.expect("sent")).await;
    assert_eq!(
        json(get(1).await.expect("sent")).await,
        first,
        "a repeat read"
    );

    let other = open_db(&app.db_url).await;
    execute(
        &other,
        "UPDATE deliveries SET recipient = 'Changed elsewhere' WHERE id = 1",
    )
    .await;
    let changed = json(get(1).await.expect("sent")).await;
    assert_eq!(
        changed["recipient"], "Changed elsewhere",
        "another process's write"
    );

    let put = app
        .request(Method::PUT, "/delivery/1", ORIGIN)
        .basic_auth(USER, Some(PASSWORD))
        .json(
            &json!({"reference": first["reference"], "recipient": "Put", "address": "A",
                      "status": "delivered"}),
        )
        .send()
        .await
        .expect("sent");
    assert_eq!(put.status(), 200);
    let put = json(get(1).await.expect("sent")).await;
    assert_eq!(
        (put["recipient"].as_str(), put["status"].as_str()),
        (Some("Put"), Some("delivered"))
    );

    execute(&other, "DELETE FROM deliveries WHERE id = 1").await;
    assert_problem(get(1).await.expect("sent"), 404, "deleted elsewhere").await;
    assert_eq!(
        get(2).await.expect("sent").status(),
        200,
        "the others are still there"
    );
}

/// Concurrent creations are committed together (group commit): each 201 names its own row, as
/// stored; a reference sent several times in one burst is created once, the other copies get
/// 409, and so do copies of a reference that already existed.
#[tokio::test]
async fn a_burst_of_creations_is_each_acknowledged_with_its_own_stored_row() {
    let app = spawn_app().await;
    let existing = json!({"reference": "BURST-OLD", "recipient": "Old", "address": "A"});
    assert_eq!(app.create(&existing).await.status(), 201);
    let references: Vec<String> = (0..150)
        .map(|i| match i % 50 {
            7 => "BURST-7".to_owned(),
            13 => "BURST-OLD".to_owned(),
            _ => format!("BURST-{i}"),
        })
        .collect();
    let sends = references.iter().enumerate().map(|(i, reference)| {
        let app = &app;
        async move {
            let body =
                json!({"reference": reference, "recipient": format!("R{i}"), "address": "A"});
            let res = app.create(&body).await;
            let status = res.status().as_u16();
            (status, i, json(res).await)
        }
    });
    let answers = futures_util::future::join_all(sends).await;

    let stored = app.snapshot().await;
    let mut created = 0;
    for (status, i, body) in &answers {
        match status {
            201 => {
                created += 1;
                let id = body["id"].as_i64().expect("id");
                let row = stored
                    .iter()
                    .find(|r| r.0 == id)
                    .expect("the acknowledged row is stored");
                assert_eq!(row.1, references[*i], "id {id} is this request's row");
                assert_eq!(row.2, format!("R{i}"));
            }
            409 => assert!(
                ["BURST-7", "BURST-OLD"].contains(&references[*i].as_str()),
                "only repeated references conflict: {}",
                references[*i]
            ),
            other => panic!("request {i}: {other} {body}"),
        }
    }
    assert_eq!(
        created, 145,
        "145 new distinct references, each created once"
    );
    assert_eq!(stored.len(), SEEDED + 1 + 145);
    let old = stored.iter().find(|r| r.1 == "BURST-OLD").expect("kept");
    assert_eq!(old.2, "Old", "the existing row is untouched");
}

/// Writes that change nothing (a PUT or DELETE of an id that does not exist, a POST whose
/// reference exists) leave the list's ETag as it was: the client's copy stays valid (304), and
/// nobody's cache is thrown away for nothing. On both engines.
#[tokio::test]
async fn writes_that_change_nothing_leave_the_etag_alone() {
    let app = spawn_app().await;
    let etag = header(app.get_all().await.headers(), "etag")
        .expect("etag")
        .to_owned();
    let body = json!({"reference": "DLV-2026-0001", "recipient": "R", "address": "A",
                      "status": "pending"});
    for (method, path, status) in [
        (Method::PUT, "/delivery/999999", 404),
        (Method::DELETE, "/delivery/999999", 404),
        (Method::POST, "/delivery", 409),
    ] {
        let res = app
            .article_request(method.clone(), path, ORIGIN)
            .body(body.to_string())
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), status, "{method} {path}");
    }
    let res = app
        .article_request(Method::GET, "/delivery/all", ORIGIN)
        .header("If-None-Match", &etag)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 304, "nothing changed");
}

#[tokio::test]
async fn a_deleted_delivery_id_is_never_handed_out_again() {
    let app = spawn_app().await;
    let body = |r: &str| json!({"reference": r, "recipient": "R", "address": "A"});
    let first: Value = json(app.create(&body("ID-1")).await).await;
    let id = first["id"].as_i64().expect("id");
    let res = app
        .article_request(reqwest::Method::DELETE, &format!("/delivery/{id}"), ORIGIN)
        .send()
        .await
        .expect("DELETE");
    assert_eq!(res.status(), 204);

    let second: Value = json(app.create(&body("ID-2")).await).await;

    assert!(
        second["id"].as_i64().expect("id") > id,
        "the highest id, once deleted, is not reused: {first} then {second}"
    );
}

/// PATCH is a JSON merge patch (RFC 7396): the fields sent change, under the PUT rules; the others
/// stay as stored; nothing can be removed; the media type says it is a merge patch.
#[tokio::test]
async fn a_merge_patch_changes_only_the_fields_it_names() {
    let app = spawn_app().await;
    let before = json(app.get_all().await).await[0].clone();
    let patch = |body: Value, content_type: &'static str| {
        with_content_type(
            app.article_request(Method::PATCH, "/delivery/1", ORIGIN),
            content_type,
        )
        .body(body.to_string())
        .send()
    };

    let res = patch(
        json!({"status": "cancelled", "recipient": "  Ana S.  "}),
        MERGE_PATCH,
    )
    .await
    .expect("sent");

    assert_eq!(res.status(), 200);
    assert_readable_by_origin(&res, "PATCH");
    let after = json(res).await;
    assert_eq!(after["status"], "cancelled");
    assert_eq!(
        after["recipient"], "Ana S.",
        "checked and trimmed as in a PUT"
    );
    for kept in ["id", "reference", "address", "created_at"] {
        assert_eq!(after[kept], before[kept], "{kept} is kept");
    }
    let stored: (String, String, String) = on_db!(&app.db, |pool| sqlx::query_as(
        "SELECT status, recipient, address FROM deliveries WHERE id = 1"
    )
    .fetch_one(pool)
    .await)
    .expect("row");
    assert_eq!(
        stored,
        (
            "cancelled".to_owned(),
            "Ana S.".to_owned(),
            before["address"].as_str().expect("address").to_owned()
        )
    );

    let snapshot = app.snapshot().await;
    for (body, content_type, status, mention) in [
        (json!({"status": null}), MERGE_PATCH, 422, "`status`"),
        (
            json!({"address": "\u{1b}[2J"}),
            MERGE_PATCH,
            422,
            "`address`",
        ),
        (json!({"id": 7}), MERGE_PATCH, 422, "`id`"),
        (
            json!({"reference": "DLV-2026-0002"}),
            MERGE_PATCH,
            409,
            "DLV-2026-0002",
        ),
        (
            json!({"status": "delivered"}),
            CONTENT_TYPE,
            415,
            "merge-patch",
        ),
    ] {
        let res = patch(body.clone(), content_type).await.expect("sent");
        let detail = assert_problem(res, status, &body.to_string()).await;
        assert!(detail.contains(mention), "{body}: {detail}");
    }
    let res = patch(json!({}), MERGE_PATCH).await.expect("sent");
    assert_eq!(res.status(), 200, "an empty patch");
    assert_eq!(json(res).await, after);
    assert_eq!(app.snapshot().await, snapshot, "nothing was written");
}
