//! Every response names its request (`X-Request-Id`: the client's own when it is a plausible id),
//! a page can read it across origins, and `--access-log` writes one line per request with it.

use reqwest::Method;

use crate::helpers::*;

fn id_of(res: &reqwest::Response) -> String {
    res.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(String::from)
        .unwrap_or_else(|| panic!("no X-Request-Id on {res:?}"))
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_a_plausible_client_id_comes_back() {
    let app = spawn_app().await;

    // Generated when the client sends none: one per request.
    let first = id_of(&app.get_without_credentials("/health").await);
    let second = id_of(&app.get_without_credentials("/health").await);
    assert!(!first.is_empty() && first != second, "{first} / {second}");

    // The client's own, echoed: on a 200, a 401 and a preflight alike.
    let ok = app
        .article_request(Method::GET, "/delivery/all", ORIGIN)
        .header("X-Request-Id", "checkout-step-2")
        .send()
        .await
        .expect("request");
    assert_eq!(ok.status(), 200);
    assert_eq!(id_of(&ok), "checkout-step-2");
    let exposed = ok
        .headers()
        .get("access-control-expose-headers")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        exposed.split(',').any(|h| h.trim() == "x-request-id"),
        "a page can read it cross-origin: {exposed}"
    );
    let refused = app
        .request(Method::GET, "/delivery/all", ORIGIN)
        .header("X-Request-Id", "wrong-password-1")
        .basic_auth(USER, Some("not-the-password"))
        .send()
        .await
        .expect("request");
    assert_eq!(refused.status(), 401);
    assert_eq!(id_of(&refused), "wrong-password-1");

    // A page may send it: the preflight allows it, and carries an id of its own.
    let preflight = app
        .request(Method::OPTIONS, "/delivery/all", ORIGIN)
        .header("Access-Control-Request-Method", "GET")
        .header(
            "Access-Control-Request-Headers",
            "authorization,x-request-id",
        )
        .send()
        .await
        .expect("preflight");
    assert_eq!(preflight.status(), 200);
    assert!(!id_of(&preflight).is_empty());

    // Anything that could forge log text is replaced, not echoed.
    for forged in ["two words", "a\"quote", &"x".repeat(129)] {
        let res = app
            .request(Method::GET, "/health", ORIGIN)
            .header("X-Request-Id", forged)
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), 200);
        let id = id_of(&res);
        assert!(
            !id.is_empty() && id != forged,
            "{forged:?} came back as {id:?}"
        );
    }
}

#[tokio::test]
async fn the_access_log_has_one_line_per_request_with_its_id_and_the_layer_that_answered() {
    let dir = certs();
    let mut served = serve_binary(dir.path(), "info", &["--access-log"]).await;
    let res = served
        .request(Method::GET, "/delivery/all", ORIGIN)
        .header("X-Request-Id", "e2e-login-7")
        .basic_auth(USER, Some("a-wrong-secret"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 401);
    let line = served
        .wait_for_log_line(|l| l.contains("delivery_api::access") && l.contains("e2e-login-7"))
        .await;
    assert!(line.contains("GET /delivery/all 401"), "{line}");
    assert!(line.contains("answered_by=BasicAuth"), "{line}");
    assert!(!line.contains("a-wrong-secret"), "{line}");

    let ok = served.get_all().await;
    assert_eq!(ok.status(), 200);
    let id = id_of(&ok);
    let line = served
        .wait_for_log_line(|l| l.contains("delivery_api::access") && l.contains(&id))
        .await;
    assert!(line.contains("GET /delivery/all 200"), "{line}");
    assert!(line.contains("answered_by=Handler"), "{line}");
}
