//! The idle deadline: unload after `model_unload_timeout` without use.
//!
//! A deadline that activity pushes back, not a watcher that polls (Handy wakes every
//! 10 s): each use cancels the pending timer and arms a new one. Every arming gets an
//! epoch; the action receives it and must do nothing if the epoch moved on while it
//! waited for the session lock, so a use that slips in right at the deadline is never
//! followed by an unload of the model it just used.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;

type Action = Arc<dyn Fn(u64) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

pub(super) struct IdleTimer {
    action: Action,
    epoch: Arc<AtomicU64>,
    pending: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl IdleTimer {
    /// `action(epoch)` runs when a deadline passes.
    pub(super) fn new<F, Fut>(action: F) -> Self
    where
        F: Fn(u64) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        IdleTimer {
            action: Arc::new(move |epoch| Box::pin(action(epoch))),
            epoch: Arc::default(),
            pending: Arc::default(),
        }
    }

    /// The current epoch: an action holding an older one is stale.
    pub(super) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Drop any pending deadline.
    pub(super) fn cancel(&self) {
        let mut pending = self.pending.lock().expect("idle timer poisoned");
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if let Some(handle) = pending.take() {
            handle.abort();
        }
    }

    /// Run the action after `limit`, unless cancelled or re-armed first.
    pub(super) fn schedule(&self, limit: Duration) {
        let mut pending = self.pending.lock().expect("idle timer poisoned");
        let epoch = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(handle) = pending.take() {
            handle.abort();
        }
        let (action, slot, epochs) = (self.action.clone(), self.pending.clone(), self.epoch.clone());
        *pending = Some(tokio::spawn(async move {
            tokio::time::sleep(limit).await;
            {
                // Leave the slot before acting, so a `cancel` from the action's own
                // unload cannot abort this task halfway through.
                let mut slot = slot.lock().expect("idle timer poisoned");
                if epochs.load(Ordering::SeqCst) != epoch {
                    return;
                }
                slot.take();
            }
            action(epoch).await;
        }));
    }
}

impl Drop for IdleTimer {
    fn drop(&mut self) {
        if let Some(handle) = self.pending.lock().ok().and_then(|mut p| p.take()) {
            handle.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn counting() -> (IdleTimer, Arc<AtomicUsize>) {
        let fired = Arc::new(AtomicUsize::new(0));
        let counter = fired.clone();
        let timer = IdleTimer::new(move |_| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        (timer, fired)
    }

    #[tokio::test(start_paused = true)]
    async fn the_action_runs_once_after_the_deadline() {
        let (timer, fired) = counting();
        timer.schedule(Duration::from_secs(300));
        tokio::time::sleep(Duration::from_secs(299)).await;
        assert_eq!(fired.load(Ordering::SeqCst), 0);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(fired.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn activity_pushes_the_deadline_back_and_cancel_drops_it() {
        let (timer, fired) = counting();
        timer.schedule(Duration::from_secs(10));
        tokio::time::sleep(Duration::from_secs(8)).await;
        timer.schedule(Duration::from_secs(10));
        tokio::time::sleep(Duration::from_secs(8)).await;
        assert_eq!(fired.load(Ordering::SeqCst), 0, "re-armed at 8 s, so not due at 16 s");
        timer.cancel();
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(fired.load(Ordering::SeqCst), 0);
    }
}
