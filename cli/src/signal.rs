//! The stop signals: SIGINT (Ctrl-C) and SIGTERM (what docker, systemd and Kubernetes send)
//! both mean "stop cleanly".

#[cfg(unix)]
use tokio::signal::unix::{Signal, SignalKind, signal};

/// SIGINT and SIGTERM handlers, installed when this is made: from then on neither signal
/// ends the process; [`StopSignals::recv`] reports them instead.
pub(crate) struct StopSignals {
    #[cfg(unix)]
    int: Option<Signal>,
    #[cfg(unix)]
    term: Option<Signal>,
}

#[cfg(unix)]
async fn next(s: &mut Option<Signal>) {
    match s {
        Some(s) => {
            s.recv().await;
        }
        // Not installed: the signal keeps its default action (the process ends).
        None => std::future::pending().await,
    }
}

impl StopSignals {
    /// Installs the handlers. One that cannot be installed leaves its signal with the
    /// default action; the other one still works.
    pub(crate) fn install() -> Self {
        #[cfg(unix)]
        return StopSignals {
            int: signal(SignalKind::interrupt()).ok(),
            term: signal(SignalKind::terminate()).ok(),
        };
        #[cfg(not(unix))]
        StopSignals {}
    }

    /// Resolves at the next SIGINT or SIGTERM.
    pub(crate) async fn recv(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = next(&mut self.int) => {}
            _ = next(&mut self.term) => {}
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await
        }
    }
}
