//! Long-lived tasks that must not die quietly: a panic (a bug, or an object no test
//! foresaw) or an early end is logged, counted in `k8s_gateway_task_restarts_total`,
//! and the task starts again after a backoff, so one bad moment does not freeze a kind
//! ([`supervise`], for a watch) or leave a UDP socket's share of the clients unanswered
//! ([`blocking`], for a worker thread: the kernel spreads clients over the
//! `SO_REUSEPORT` sockets by a hash). A task failing at once every time costs a log
//! line per backoff, not a spinning core.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use std::sync::Arc;

use futures::FutureExt;
use prometheus_client::metrics::counter::Counter;
use tokio_util::sync::CancellationToken;

/// The first and longest wait before a restart.
pub const BACKOFF_FIRST: Duration = Duration::from_millis(100);
pub const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// A task that ran this long before it failed starts again after the first backoff.
const STABLE: Duration = Duration::from_secs(60);

/// The wait before each restart: doubling from [`BACKOFF_FIRST`] to [`BACKOFF_MAX`],
/// back to the first after a run of [`STABLE`].
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: BACKOFF_FIRST,
        }
    }
}

impl Backoff {
    /// The wait after a run that lasted `ran`.
    pub fn after(&mut self, ran: Duration) -> Duration {
        if ran >= STABLE {
            self.next = BACKOFF_FIRST;
        }
        let wait = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        wait
    }
}

/// What a panic said, for the log.
pub fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Runs the future `run` makes, and runs a new one whenever it panics or ends, until
/// the caller drops (or aborts) this future. `task` names it in the log (`watch
/// Service`); each restart counts in `restarts`.
pub async fn supervise<F, Fut>(task: &str, restarts: Counter, mut run: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut backoff = Backoff::default();
    loop {
        let started = Instant::now();
        match AssertUnwindSafe(run()).catch_unwind().await {
            Ok(()) => tracing::error!(task, "task ended unexpectedly: restarting it"),
            Err(panic) => tracing::error!(
                task,
                "task panicked: {}; restarting it (please report this)",
                panic_message(&*panic)
            ),
        }
        restarts.inc();
        tokio::time::sleep(backoff.after(started.elapsed())).await;
    }
}

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
    let mut backoff = Backoff::default();
    loop {
        let started = Instant::now();
        let run = work.clone();
        let ended = tokio::task::spawn_blocking(move || run()).await;
        if shutdown.is_cancelled() {
            return;
        }
        let wait = backoff.after(started.elapsed());
        match ended {
            Ok(()) => tracing::error!(task, ?wait, "task ended early; starting it again"),
            Err(e) => {
                let reason = match e.try_into_panic() {
                    Ok(payload) => panic_message(&*payload).to_string(),
                    Err(e) => e.to_string(),
                };
                tracing::error!(task, ?wait, %reason, "task panicked; starting it again");
            }
        }
        restarts.inc();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
    use std::sync::mpsc;

    #[tokio::test]
    async fn a_panicking_task_is_counted_and_runs_again() {
        let restarts = Counter::default();
        let runs = Arc::new(AtomicU32::new(0));
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let mut done_tx = Some(done_tx);
        let counted = runs.clone();
        let supervisor = tokio::spawn(supervise("test", restarts.clone(), move || {
            let run = counted.fetch_add(1, Ordering::SeqCst);
            let done = if run == 2 { done_tx.take() } else { None };
            async move {
                match done {
                    // The third run stays up.
                    Some(done) => {
                        let _ = done.send(());
                        std::future::pending::<()>().await;
                    }
                    None if run == 0 => panic!("first run"),
                    // The second ends, which a task that should run forever must not.
                    None => {}
                }
            }
        }));
        done_rx.await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        assert_eq!(restarts.get(), 2);
        supervisor.abort();
    }

    #[test]
    fn the_backoff_doubles_to_its_bound_and_resets_after_a_stable_run() {
        let mut backoff = Backoff::default();
        let quick = Duration::from_millis(1);
        let waits: Vec<Duration> = (0..9).map(|_| backoff.after(quick)).collect();
        assert_eq!(waits[0], BACKOFF_FIRST);
        assert_eq!(waits[1], BACKOFF_FIRST * 2);
        assert_eq!(waits[8], BACKOFF_MAX);
        assert_eq!(backoff.after(STABLE), BACKOFF_FIRST);
    }

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
