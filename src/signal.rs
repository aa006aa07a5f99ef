//! A wake-up call for loops that would otherwise poll: event streams wait
//! on one for new events, the mail dispatcher for new emails.

use std::sync::Arc;

use tokio::sync::watch;

/// Cheap to clone; every subscriber sees that *something* happened since it
/// last looked (not how many times), which is all a reader needs to re-query.
#[derive(Clone, Debug)]
pub struct Signal(Arc<watch::Sender<u64>>);

impl Default for Signal {
    fn default() -> Self {
        Self(Arc::new(watch::channel(0).0))
    }
}

impl Signal {
    pub fn notify(&self) {
        self.0
            .send_modify(|generation| *generation = generation.wrapping_add(1));
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }
}
