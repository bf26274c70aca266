//! Password guessing is limited per client IP and per user name: 429 + Retry-After that the page
//! can read, before any hashing; preflights, /health and signed-in users are unaffected.

use std::num::NonZeroU32;

use crate::helpers::*;

const ATTACKER: [u8; 4] = [127, 0, 0, 2];

#[tokio::test]
async fn a_guessing_ip_gets_429_with_retry_after_while_other_clients_log_in() {
    let app =
        spawn_app_with(|args| args.auth.login_attempts_per_ip = NonZeroU32::new(3).expect("3"))
            .await;
    let attacker = app.as_client(ATTACKER);
    // Signed in before the attack (cached): never limited.
    assert_eq!(attacker.get_all_as(USER, PASSWORD).await.status(), 200);

    for _ in 0..2 {
        assert_eq!(attacker.get_all_as(USER, "guess").await.status(), 401);
    }
    let verified = app.authenticator.verifications_run();
    let res = attacker.get_all_as(USER, "guess").await;

    assert_readable_by_origin(&res, "429");
    let retry: u64 = header(res.headers(), "retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    assert_problem(res, 429, "429").await;
    assert_eq!(
        app.authenticator.verifications_run(),
        verified,
        "no argon2 past the limit"
    );

    // The cached login still works from that IP; a fresh login from another IP works too.
    assert_eq!(attacker.get_all_as(USER, PASSWORD).await.status(), 200);
    let other = app.as_client([127, 0, 0, 3]);
    assert_eq!(
        other.get_all_as("nobody", "whatever").await.status(),
        401,
        "not 429"
    );

    // Preflights and /health are never limited.
    let preflight = attacker.preflight("/delivery/all", "GET", ORIGIN).await;
    assert_eq!(preflight.status(), 200);
    let health = attacker.get_without_credentials("/health").await;
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn guesses_at_one_user_name_from_many_ips_are_limited_too() {
    let app =
        spawn_app_with(|args| args.auth.login_attempts_per_user = NonZeroU32::new(3).expect("3"))
            .await;
    for last in 2..5 {
        let client = app.as_client([127, 0, 0, last]);
        assert_eq!(client.get_all_as(USER, "guess").await.status(), 401);
    }
    let fresh = app.as_client([127, 0, 0, 9]);
    let res = fresh.get_all_as(USER, "guess").await;
    assert_eq!(res.status(), 429);
    // Other user names are not affected.
    assert_eq!(fresh.get_all_as("alice", "guess").await.status(), 401);
}

#[tokio::test]
async fn guessing_from_many_addresses_locks_out_neither_a_client_that_logged_in_before_nor_its_network()
 {
    // No remembered logins (TTL 0), so every request needs a password check and meets the limits.
    let app = spawn_app_with(|args| {
        args.auth.login_attempts_per_user = NonZeroU32::new(3).expect("3");
        args.auth.auth_cache_ttl = 0;
    })
    .await;
    let real = app.as_client([127, 0, 0, 20]);
    assert_eq!(real.get_all_as(USER, PASSWORD).await.status(), 200);

    // Four attackers, each from its own network, spend the user name's shared budget.
    let mut statuses = Vec::new();
    for network in 21..25 {
        let attacker = app.as_client([127, 0, network, 1]);
        statuses.push(attacker.get_all_as(USER, "guess").await.status().as_u16());
    }
    assert_eq!(
        statuses,
        [401, 401, 429, 429],
        "the user name is over its budget"
    );

    // A source in a network the user never logged in from is throttled, even with the right
    // password (telling it from the guessers would take checking the password)...
    let stranger = app.as_client([127, 0, 30, 25]);
    assert_eq!(stranger.get_all_as(USER, PASSWORD).await.status(), 429);
    // ... but the client that logged in before is not...
    for _ in 0..3 {
        assert_eq!(real.get_all_as(USER, PASSWORD).await.status(), 200);
    }
    // ... nor a new address in its /24 (a renumbered line, the office's other NAT address), which
    // has a budget of its own for this user that the guessers elsewhere cannot drain.
    let renumbered = app.as_client([127, 0, 0, 25]);
    assert_eq!(renumbered.get_all_as(USER, PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn an_unknown_user_name_costs_no_argon2_and_gets_the_same_refusal_as_a_wrong_password() {
    let app = spawn_app().await;
    let client = app.as_client([127, 0, 0, 30]);

    let wrong = client.get_all_as(USER, "wrong-password").await;
    let verified = app.authenticator.verifications_run();
    let unknown = client
        .get_all_as("nobody-by-that-name", "wrong-password")
        .await;

    assert_eq!(
        app.authenticator.verifications_run(),
        verified,
        "no argon2 for a name that does not exist"
    );
    assert_eq!(wrong.status(), unknown.status());
    assert_eq!(
        header(wrong.headers(), "www-authenticate"),
        header(unknown.headers(), "www-authenticate")
    );
    assert_eq!(
        wrong.text().await.expect("body"),
        unknown.text().await.expect("body"),
        "the same words: nothing tells the two apart"
    );
}

#[tokio::test]
async fn a_pages_parallel_first_requests_are_checked_once_and_count_once() {
    let app =
        spawn_app_with(|args| args.auth.login_attempts_per_ip = NonZeroU32::new(2).expect("2"))
            .await;
    let page = app.as_client([127, 0, 0, 31]);

    let requests = (0..8).map(|_| page.get_all_as(USER, PASSWORD));
    let statuses: Vec<u16> = futures_util::future::join_all(requests)
        .await
        .into_iter()
        .map(|r| r.status().as_u16())
        .collect();

    assert_eq!(statuses, [200; 8], "all served, under a limit of 2");
    assert_eq!(app.authenticator.verifications_run(), 1, "one argon2");
}
