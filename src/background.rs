//! The loop every background task runs: a round of work, then a wait (cut
//! short by a wake-up, if the task has one), until the server stops.
//!
//! Shutdown is a [`CancellationToken`]: `serve` cancels it once, and every
//! loop, event stream and the protect layer see it. A round in progress is
//! never interrupted; the wait after it is.

use std::{future::Future, time::Duration};

use tokio_util::sync::CancellationToken;

use crate::signal::Signal;

/// After a wake-up, how long a loop lets further wake-ups gather before
/// its next round: one round then covers a burst of commits.
const COALESCE: Duration = Duration::from_millis(20);

/// When the first round runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// At once.
    Now,
    /// After a first wait of this long (the work was just done at start,
    /// or is not worth doing before then).
    After(Duration),
}

/// What a round asks for before the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Another round at once (there is more to do).
    None,
    /// Up to this long, or until the wake-up signal rings.
    Until(Duration),
    /// This long, whatever rings: a pause (say, while a remote fails).
    Pause(Duration),
}

/// Runs `round` until `stop` is cancelled: first as `start` says, then
/// after the wait each round asks for. A `wake` ring during a round (or a
/// [`Wait::Until`]) starts the next round early, after [`COALESCE`].
pub async fn repeat<F, R>(
    stop: &CancellationToken,
    wake: Option<&Signal>,
    start: Start,
    mut round: F,
) where
    F: FnMut() -> R,
    R: Future<Output = Wait>,
{
    let mut wake = wake.map(Signal::subscribe);
    if let Start::After(first) = start {
        tokio::select! {
            () = tokio::time::sleep(first) => {}
            () = stop.cancelled() => return,
        }
    }
    loop {
        // Seen *before* the round: a ring during it makes the wait below
        // end at once.
        if let Some(wake) = &mut wake {
            wake.borrow_and_update();
        }
        let wait = round().await;
        let woken = match wait {
            Wait::None => continue,
            Wait::Pause(pause) => tokio::select! {
                () = tokio::time::sleep(pause) => false,
                () = stop.cancelled() => return,
            },
            Wait::Until(period) => tokio::select! {
                // A dropped sender never rings again: wait out the period.
                true = async {
                    match &mut wake {
                        Some(wake) => wake.changed().await.is_ok(),
                        None => std::future::pending().await,
                    }
                } => true,
                () = tokio::time::sleep(period) => false,
                () = stop.cancelled() => return,
            },
        };
        if woken {
            tokio::time::sleep(COALESCE).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc;

    use super::*;

    const LONG: Duration = Duration::from_secs(3600);
    const SOON: Duration = Duration::from_secs(5);

    /// Runs `repeat` in a task whose rounds each send a tick and ask for `wait`.
    fn spawn(
        start: Start,
        wait: Wait,
    ) -> (
        CancellationToken,
        Signal,
        mpsc::UnboundedReceiver<()>,
        tokio::task::JoinHandle<()>,
    ) {
        let stop = CancellationToken::new();
        let wake = Signal::default();
        let (ticks, rounds) = mpsc::unbounded_channel();
        let task = tokio::spawn({
            let (stop, wake) = (stop.clone(), wake.clone());
            async move {
                repeat(&stop, Some(&wake), start, || {
                    let _ = ticks.send(());
                    async move { wait }
                })
                .await;
            }
        });
        (stop, wake, rounds, task)
    }

    /// Whether another round ran within [`SOON`].
    async fn ran(rounds: &mut mpsc::UnboundedReceiver<()>) -> bool {
        matches!(
            tokio::time::timeout(SOON, rounds.recv()).await,
            Ok(Some(()))
        )
    }

    /// Whether the task ended (without panicking) within [`SOON`].
    async fn ended(task: tokio::task::JoinHandle<()>) -> bool {
        matches!(tokio::time::timeout(SOON, task).await, Ok(Ok(())))
    }

    #[tokio::test]
    async fn the_first_round_runs_at_once_and_a_wake_up_starts_the_next() {
        let (stop, wake, mut rounds, task) = spawn(Start::Now, Wait::Until(LONG));
        assert!(ran(&mut rounds).await, "the first round runs at once");
        wake.notify();
        assert!(ran(&mut rounds).await, "a wake-up cuts the period short");
        stop.cancel();
        assert!(ended(task).await, "cancelling ends the wait");
    }

    #[tokio::test]
    async fn a_late_start_waits_and_a_cancel_ends_it() {
        let (stop, wake, mut rounds, task) = spawn(Start::After(LONG), Wait::None);
        wake.notify();
        stop.cancel();
        assert!(ended(task).await, "cancelling ends the first wait");
        assert_eq!(rounds.try_recv().ok(), None, "no round ran");
    }

    #[tokio::test]
    async fn a_pause_is_not_cut_short_by_a_wake_up() {
        let (stop, wake, mut rounds, task) = spawn(Start::Now, Wait::Pause(LONG));
        assert!(ran(&mut rounds).await);
        wake.notify();
        // Cut short, the next round would start after COALESCE (20 ms).
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(rounds.try_recv().ok(), None, "the pause goes on");
        stop.cancel();
        assert!(ended(task).await, "cancelling ends a pause");
    }
}
