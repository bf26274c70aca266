//! Several instances started at once from one new folder (a test harness, `scripts` starting two
//! servers) generate the dev certificates once: every one of them serves a certificate that the
//! shared `certs/dev-ca.crt` verifies, round after round.

use crate::helpers::*;

#[tokio::test]
async fn instances_started_together_in_a_new_folder_all_serve_what_the_shared_ca_verifies() {
    const ROUNDS: usize = 10;
    const INSTANCES: usize = 4;
    for round in 0..ROUNDS {
        let cwd = tempfile::tempdir().expect("tempdir");
        let starts = (0..INSTANCES).map(|i| {
            let cwd = cwd.path().to_owned();
            async move {
                let database = format!("sqlite://db{i}.db");
                let (child, ready) =
                    serve_in(&cwd, &["--no-demo-page", "--database-url", &database]).await;
                (child, Api::from_ready_line(&ready))
            }
        });
        let servers = futures_util::future::join_all(starts).await;

        let ca = cwd.path().join("certs").join("dev-ca.crt");
        for (i, (_, api)) in servers.iter().enumerate() {
            assert_eq!(api.ca, ca, "round {round}, instance {i}: the shared CA");
            let health = api
                .client
                .get(api.url("/health"))
                .send()
                .await
                .unwrap_or_else(|e| {
                    panic!("round {round}, instance {i}: its certificate does not verify: {e:?}")
                });
            assert_eq!(health.status(), 200, "round {round}, instance {i}");
        }
    }
}
