//! Connection slots under a distributed slow-client attack: clients from many addresses that
//! connect and then send nothing cannot hold every slot. Near its cap a worker closes the
//! connection that has been silent longest to let a new one in, so a normal client is served at
//! once instead of waiting in the listen queue until the attackers' deadlines run out.

use std::time::Duration;

use crate::helpers::*;

#[tokio::test]
async fn silent_clients_from_many_addresses_cannot_keep_a_normal_client_out() {
    // One worker with 32 slots, and deadlines long enough that, without shedding, nothing would
    // free a slot during this test: only the shedding can let the normal client in.
    let app = spawn_app_with(|args| {
        args.workers = Some(1);
        args.connections.max_connections = 32;
        args.connections.tls_first_byte_timeout = 600;
        args.connections.tls_handshake_timeout = 600;
        args.connections.request_timeout = 600;
        args.connections.keep_alive = 600;
    })
    .await;

    // 48 silent connections, one from each of 48 loopback addresses (no per-address cap applies).
    let mut attackers = Vec::new();
    for i in 0..48u8 {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(([127, 0, 1, i + 1], 0).into())
            .expect("bind a loopback address");
        attackers.push(socket.connect(app.addr).await.expect("connect"));
    }

    // A normal client, on a new connection, is served.
    let served = tokio::time::timeout(
        Duration::from_secs(60),
        app.get_without_credentials("/health"),
    )
    .await
    .expect("a normal client gets in while 48 silent clients hold connections");
    assert_eq!(served.status(), 200);

    // And it was the silent ones that made room: some of them have been closed.
    let closed = futures_util::future::select_all(
        attackers
            .iter()
            .map(|tcp| Box::pin(async move { tcp.readable().await })),
    );
    let _ = closed.await;
    let closed = attackers
        .iter()
        .filter(|tcp| {
            let mut byte = [0u8; 1];
            matches!(tcp.try_read(&mut byte), Ok(0) | Err(_))
                && !matches!(
                    tcp.try_read(&mut byte),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
                )
        })
        .count();
    eprintln!("{closed} of 48 silent connections were closed to make room");
    assert!(closed >= 1);
}
