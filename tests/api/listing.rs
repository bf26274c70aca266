//! The list's query string, as the document states it: filters (`status`, `q`), order (`sort`)
//! and pages (`limit`, `offset`) that do what they say on both engines, `Link`s that never point
//! past either end, and every parameter nobody documented refused with a 400 naming it.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

/// GET `path` as the article's client; the status, the `Link` and `X-Total-Count` headers, and
/// the body.
async fn get(app: &TestApp, path: &str) -> (u16, Option<String>, Option<String>, Value) {
    let res = app
        .article_request(Method::GET, path, ORIGIN)
        .send()
        .await
        .expect("sent");
    let status = res.status().as_u16();
    let link = header(res.headers(), "link").map(str::to_owned);
    let total = header(res.headers(), "x-total-count").map(str::to_owned);
    (status, link, total, json(res).await)
}

fn references(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("an array")
        .iter()
        .map(|d| d["reference"].as_str().expect("reference"))
        .collect()
}

#[tokio::test]
async fn a_query_parameter_no_operation_documents_is_a_400_naming_it_and_changes_nothing() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    let body = json!({"reference": "Q-1", "recipient": "A", "address": "B", "status": "pending"});
    let cases = [
        (Method::GET, "/delivery/all?stauts=pending", "stauts"),
        (Method::GET, "/delivery/all?limit=2&page=3", "page"),
        (Method::GET, "/delivery/1?fields=id", "fields"),
        (Method::HEAD, "/delivery/1?fields=id", ""),
        (Method::POST, "/delivery?dry_run=1", "dry_run"),
        (Method::PUT, "/delivery/1?force", "force"),
        (Method::DELETE, "/delivery/2?soft=true", "soft"),
        (Method::GET, "/health?verbose=1", "verbose"),
        (Method::GET, "/openapi.json?format=yaml", "format"),
    ];
    for (method, path, name) in cases {
        let mut req = app.article_request(method.clone(), path, ORIGIN);
        if method == Method::POST || method == Method::PUT {
            req = req.body(body.to_string());
        }
        let res = req.send().await.expect("sent");
        assert_readable_by_origin(&res, path);
        if method == Method::HEAD {
            assert_eq!(res.status(), 400, "{method} {path}");
            continue;
        }
        let detail = assert_problem(res, 400, &format!("{method} {path}")).await;
        assert!(
            detail.contains(&format!("`{name}`")),
            "{method} {path}: {detail}"
        );
    }
    assert_eq!(app.snapshot().await, before, "nothing was written");
}

#[tokio::test]
async fn a_filter_returns_only_what_matches_and_counts_it() {
    let app = spawn_app().await;

    let (status, _, total, list) =
        get(&app, "/delivery/all?status=in_transit&status=cancelled").await;

    assert_eq!(status, 200);
    let expected: i64 = app
        .scalar("SELECT count(*) FROM deliveries WHERE status IN ('in_transit', 'cancelled')")
        .await;
    let items = list.as_array().expect("array");
    assert_eq!(items.len() as i64, expected);
    assert_eq!(
        total,
        Some(expected.to_string()),
        "X-Total-Count counts the matches"
    );
    assert!(
        items
            .iter()
            .all(|d| d["status"] == "in_transit" || d["status"] == "cancelled"),
        "{list}"
    );

    // One value, not a comma list: a 400 that says to repeat the parameter.
    let res = app
        .article_request(
            Method::GET,
            "/delivery/all?status=pending,delivered",
            ORIGIN,
        )
        .send()
        .await
        .expect("sent");
    let detail = assert_problem(res, 400, "a comma list").await;
    assert!(
        detail.contains("`status`") && detail.contains("repeat"),
        "{detail}"
    );
}

#[tokio::test]
async fn q_finds_text_in_reference_recipient_or_address_ascii_letters_in_either_case() {
    let app = spawn_app().await;
    for (q, expected) in [
        ("berlin", vec!["DLV-2026-0002"]), // address, another case
        ("JONAS", vec!["DLV-2026-0002"]),  // recipient
        (
            "dlv-2026-001",
            vec!["DLV-2026-0010", "DLV-2026-0011", "DLV-2026-0012"],
        ),
        ("chloé", vec!["DLV-2026-0004"]), // as stored
        ("CHLOé", vec!["DLV-2026-0004"]), // ASCII letters in either case
        ("CHLOÉ", vec![]),                // other letters as sent, on both engines
        ("%", vec![]),                    // no wildcards
        ("_", vec![]),
    ] {
        let path = format!(
            "/delivery/all?{}",
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("q", q)
                .finish()
        );
        let (status, _, total, list) = get(&app, &path).await;
        assert_eq!(status, 200, "{q}");
        assert_eq!(references(&list), expected, "q={q}");
        assert_eq!(total, Some(expected.len().to_string()), "q={q}");
    }
}

#[tokio::test]
async fn sort_orders_the_list_and_ties_go_by_id() {
    let app = spawn_app().await;
    let all = json(app.get_all().await).await;
    let mut ids: Vec<i64> = all
        .as_array()
        .expect("array")
        .iter()
        .map(|d| d["id"].as_i64().expect("id"))
        .collect();

    let (_, _, _, newest_first) = get(&app, "/delivery/all?sort=-created_at").await;
    ids.reverse();
    let got: Vec<i64> = newest_first
        .as_array()
        .expect("array")
        .iter()
        .map(|d| d["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(got, ids, "the seed was created in id order");

    // Change the oldest one: it is now the most recently updated.
    let res = app
        .article_request(Method::PUT, "/delivery/1", ORIGIN)
        .body(
            json!({"reference": "DLV-2026-0001", "recipient": "Ana", "address": "Rua 1",
                   "status": "delivered"})
            .to_string(),
        )
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    let (_, _, _, recent) = get(&app, "/delivery/all?sort=-updated_at&limit=1").await;
    assert_eq!(recent[0]["id"], 1);

    let res = app
        .article_request(Method::GET, "/delivery/all?sort=name", ORIGIN)
        .send()
        .await
        .expect("sent");
    let detail = assert_problem(res, 400, "an unknown order").await;
    assert!(detail.contains("`sort`"), "{detail}");
}

#[tokio::test]
async fn links_never_point_past_either_end_and_past_the_end_is_an_empty_page() {
    let app = spawn_app().await; // 12 deliveries

    // The last full page: no `next` to an empty page.
    let (_, link, total, list) = get(&app, "/delivery/all?limit=6&offset=6").await;
    assert_eq!(list.as_array().map(Vec::len), Some(6));
    assert_eq!(total.as_deref(), Some("12"));
    assert_eq!(
        link.as_deref(),
        Some("</delivery/all?limit=6&offset=0>; rel=\"prev\"")
    );

    // Past the end: 200, [], and `prev` leads back to the last deliveries (not to offset 98).
    let (status, link, total, list) = get(&app, "/delivery/all?limit=2&offset=100").await;
    assert_eq!((status, list), (200, json!([])));
    assert_eq!(total.as_deref(), Some("12"));
    assert_eq!(
        link.as_deref(),
        Some("</delivery/all?limit=2&offset=10>; rel=\"prev\"")
    );

    // `offset` without `limit`: everything from there on, no pages.
    let (status, link, _, list) = get(&app, "/delivery/all?offset=9").await;
    assert_eq!(status, 200);
    assert_eq!(
        references(&list),
        ["DLV-2026-0010", "DLV-2026-0011", "DLV-2026-0012"]
    );
    assert_eq!(link, None);

    // The links keep the filters and the order.
    let (_, link, total, _) = get(&app, "/delivery/all?limit=1&status=pending&sort=-id").await;
    assert_eq!(total.as_deref(), Some("4"));
    assert_eq!(
        link.as_deref(),
        Some("</delivery/all?limit=1&offset=1&status=pending&sort=-id>; rel=\"next\"")
    );
}

#[tokio::test]
async fn the_bare_list_is_still_the_whole_array_with_its_etag() {
    let app = spawn_app().await;
    for path in ["/delivery/all", "/delivery/all?"] {
        let res = app
            .article_request(Method::GET, path, ORIGIN)
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), 200);
        assert!(header(res.headers(), "etag").is_some(), "{path}");
        assert_eq!(header(res.headers(), "link"), None, "{path}");
        assert_eq!(json(res).await.as_array().map(Vec::len), Some(SEEDED));
    }
}
