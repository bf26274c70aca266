//! The signals that stop the server: all of them gracefully, and all of its servers at once (the
//! API, the demo page, the metrics), so that `--ephemeral`'s directory and the ready file are
//! removed whichever one arrives. (SIGKILL cannot be caught: nothing can clean up after it.)

use std::future::Future;

/// Registered as soon as it is made: a signal from then on is ours, not the default action
/// (which would end the process without its clean-up).
pub struct Signals {
    #[cfg(unix)]
    each: Vec<(&'static str, tokio::signal::unix::Signal)>,
}

impl Signals {
    /// SIGINT (Ctrl-C), SIGTERM (`kill`, service managers), SIGHUP (the terminal went away),
    /// SIGQUIT, SIGUSR1 and SIGUSR2: every signal whose default action ends the process and that
    /// a process may catch. And SIGXFSZ is ignored (below).
    pub fn listen() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let kinds = [
                ("SIGINT", SignalKind::interrupt()),
                ("SIGTERM", SignalKind::terminate()),
                ("SIGHUP", SignalKind::hangup()),
                ("SIGQUIT", SignalKind::quit()),
                ("SIGUSR1", SignalKind::user_defined1()),
                ("SIGUSR2", SignalKind::user_defined2()),
            ];
            let mut each = Vec::with_capacity(kinds.len());
            for (name, kind) in kinds {
                each.push((name, signal(kind)?));
            }
            // A write past the file-size limit (`ulimit -f`, a service manager's LimitFSIZE)
            // would otherwise end the process on the spot, as SIGXFSZ's default action. Ignored,
            // the write fails with EFBIG and is answered like a full disk, 507 or 503, with
            // nothing acknowledged that was not stored (PostgreSQL ignores it for that reason).
            // SAFETY: setting a signal's disposition to SIG_IGN runs no code of ours.
            unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
            Ok(Self { each })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// On the first signal: `stop` (stop accepting, give in-flight requests the grace period).
    pub async fn stop<F: Future<Output = ()>>(mut self, grace: u64, stop: impl FnOnce() -> F) {
        #[cfg(unix)]
        let name = {
            let waits = self.each.iter_mut().map(|(name, signal)| {
                Box::pin(async move {
                    signal.recv().await;
                    *name
                })
            });
            futures_util::future::select_all(waits).await.0
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
        stop().await;
    }
}
