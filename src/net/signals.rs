//! SIGINT and SIGTERM: a graceful stop.

/// SIGINT and SIGTERM (Ctrl-C on other systems): both stop the server gracefully.
pub(super) struct Signals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    pub(super) fn listen() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                int: signal(SignalKind::interrupt())?,
                term: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// On the first signal: stop accepting, give in-flight requests the grace period, stop.
    pub(super) async fn stop(mut self, server: actix_server::ServerHandle, grace: u64) {
        #[cfg(unix)]
        let name = tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
        };
        #[cfg(not(unix))]
        let name = match tokio::signal::ctrl_c().await {
            Ok(()) => "Ctrl-C",
            Err(_) => return,
        };
        tracing::info!(
            "{name} received: no new connections; in-flight requests get up to {grace} s, then \
             the server stops"
        );
        server.stop(true).await;
    }
}
