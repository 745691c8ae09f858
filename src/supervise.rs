//! Tasks that must run as long as the server does: started again when they end early.
//!
//! A UDP worker that panicked used to end in silence, and its socket's share of the
//! queries (the kernel spreads clients over the `SO_REUSEPORT` sockets by a hash) went
//! unanswered until a restart. Here it is logged, counted in
//! `k8s_gateway_task_restarts_total{task}`, and started again after a backoff, so that a
//! task failing at once every time costs a log line per backoff, not a spinning core.

use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use tokio_util::sync::CancellationToken;

/// The wait before the first restart; it doubles with each restart in a row.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between restarts. A run longer than this was healthy: the next
/// restart waits [`FIRST_BACKOFF`] again.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Runs `work` on a blocking thread until `shutdown` fires. When it returns or panics
/// before that, logs an error, counts one restart in `restarts` and runs it again after
/// the backoff. Returns once `work` has returned after the shutdown (or while waiting to
/// restart it). `task` names it in the log.
pub async fn blocking<F>(
    task: &'static str,
    restarts: Counter,
    shutdown: CancellationToken,
    work: F,
) where
    F: Fn() + Send + Sync + 'static,
{
    let work = Arc::new(work);
    let mut backoff = FIRST_BACKOFF;
    loop {
        let started = Instant::now();
        let run = work.clone();
        let ended = tokio::task::spawn_blocking(move || run()).await;
        if shutdown.is_cancelled() {
            return;
        }
        if started.elapsed() > MAX_BACKOFF {
            backoff = FIRST_BACKOFF;
        }
        match ended {
            Ok(()) => tracing::error!(task, ?backoff, "task ended early; starting it again"),
            Err(e) => {
                let reason = panic_message(e);
                tracing::error!(task, ?backoff, %reason, "task panicked; starting it again");
            }
        }
        restarts.inc();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// What a panicking task said, when it said it with a string.
fn panic_message(error: tokio::task::JoinError) -> String {
    match error.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(ToString::to_string)
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(not a string)".to_string()),
        Err(error) => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;

    use super::*;

    /// A task that panics, then returns, is started again each time and counted; the
    /// third run lasts until the shutdown, and ending then is no restart.
    #[tokio::test]
    async fn a_task_that_panics_or_ends_is_started_again_until_shutdown() {
        let runs = Arc::new(AtomicUsize::new(0));
        let (running, third) = mpsc::channel::<()>();
        let (release, released) = mpsc::channel::<()>();
        let (running, released) = (Mutex::new(running), Mutex::new(released));
        let restarts = Counter::default();
        let shutdown = CancellationToken::new();
        let counted = runs.clone();
        let supervisor = tokio::spawn(blocking(
            "test",
            restarts.clone(),
            shutdown.clone(),
            move || match counted.fetch_add(1, Ordering::SeqCst) {
                0 => panic!("the first run panics"),
                1 => {} // the second ends early
                _ => {
                    let _ = running.lock().map(|tx| tx.send(()));
                    let _ = released.lock().map(|rx| rx.recv());
                }
            },
        ));
        tokio::task::spawn_blocking(move || third.recv())
            .await
            .expect("waited")
            .expect("a third run");
        assert_eq!(restarts.get(), 2, "a panic and an early end, each counted");
        shutdown.cancel();
        release.send(()).expect("the third run waits");
        supervisor.await.expect("the supervisor returns");
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        assert_eq!(restarts.get(), 2, "ending after the shutdown is no restart");
    }
}
