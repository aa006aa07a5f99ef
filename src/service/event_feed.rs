//! The change log's live feed for `StreamEvents`: one reader per process
//! (the read cache's follower) reads each batch of new events once and
//! publishes it here, and every stream that has caught up takes it from a
//! bounded buffer of its own. An idle stream costs no query and no timer:
//! it is a task waiting on its buffer.
//!
//! Joining without loss or duplicates: a stream first catches up with its
//! own paged reads. It joins only once its cursor has reached the feed's
//! tail (the last event published), checked and registered under the lock
//! [`EventFeed::publish`] takes, and from then on it takes only what is
//! published after its cursor. The follower publishes every final event in
//! cursor order, so each event reaches the stream once, in order.
//!
//! A stream whose buffer would pass its bound (its client does not read, so
//! the transport stopped taking events) is dropped: its buffer is freed at
//! once, and the stream ends with `ABORTED` (`EVENT_STREAM_FELL_BEHIND`),
//! telling the client to resume from its last cursor. Batches are shared
//! between buffers, so all buffers together hold at most one bound's worth
//! of distinct events.
//!
//! At most `max_streams` streams are open at once; the next is refused with
//! `RESOURCE_EXHAUSTED` (`EVENT_STREAM_LIMIT_REACHED`).

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
};

use tokio::sync::Notify;

use crate::domain::{
    Error, Reason,
    event::{Event, EventCursor},
};

/// Metric: event streams open now.
pub const EVENT_STREAMS_OPEN: &str = "roster_event_streams_open";
/// Metric: events waiting in the buffers of live streams.
pub const EVENT_STREAMS_BUFFERED: &str = "roster_event_streams_buffered_events";
/// Metric: streams refused at `max_streams`.
pub const EVENT_STREAMS_REFUSED: &str = "roster_event_streams_refused_total";
/// Metric: streams dropped because their buffer filled.
pub const EVENT_STREAMS_DROPPED: &str = "roster_event_streams_dropped_total";

/// How many streams may be open and how much each may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    /// Streams open at once.
    pub max_streams: usize,
    /// Events a live stream may hold for its client.
    pub buffer: usize,
}

/// See the module documentation.
#[derive(Debug)]
pub struct EventFeed {
    state: Mutex<FeedState>,
    limits: StreamLimits,
    open: AtomicUsize,
    buffered: AtomicUsize,
}

#[derive(Debug)]
struct FeedState {
    /// The cursor of the last event published: where the follower stands.
    tail: EventCursor,
    subscribers: HashMap<u64, Arc<Inbox>>,
    next_id: u64,
}

/// One live stream's buffer.
#[derive(Debug)]
struct Inbox {
    queue: Mutex<Queue>,
    ready: Notify,
}

#[derive(Debug)]
struct Queue {
    /// Shared batches, each with the index of its next event to hand out.
    batches: VecDeque<(Arc<[Event]>, usize)>,
    /// Events queued and not yet taken.
    len: usize,
    /// Everything up to here the stream has already sent.
    after: EventCursor,
    /// The buffer filled: the stream is to end.
    dropped: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing under these locks can panic half-way; a poisoned lock still
    // guards consistent data.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[allow(clippy::cast_precision_loss)]
fn gauge(name: &'static str, value: usize) {
    metrics::gauge!(name).set(value as f64);
}

impl EventFeed {
    pub fn new(limits: StreamLimits) -> Self {
        Self {
            state: Mutex::new(FeedState {
                tail: EventCursor::START,
                subscribers: HashMap::new(),
                next_id: 0,
            }),
            limits,
            open: AtomicUsize::new(0),
            buffered: AtomicUsize::new(0),
        }
    }

    /// Counts a new stream against the limit, or refuses it.
    pub fn admit(self: &Arc<Self>) -> Result<StreamPermit, Error> {
        let max = self.limits.max_streams;
        match self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            }) {
            Ok(before) => {
                gauge(EVENT_STREAMS_OPEN, before + 1);
                Ok(StreamPermit(self.clone()))
            }
            Err(_) => {
                metrics::counter!(EVENT_STREAMS_REFUSED).increment(1);
                Err(Error::ResourceExhausted(Reason::EventStreamLimit))
            }
        }
    }

    /// Streams open now.
    pub fn open_streams(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Events waiting in the buffers of live streams now.
    pub fn buffered_events(&self) -> usize {
        self.buffered.load(Ordering::Acquire)
    }

    /// Where the follower starts: nothing at or before `cursor` will be
    /// published.
    pub fn start_at(&self, cursor: EventCursor) {
        let mut state = lock(&self.state);
        state.tail = state.tail.max(cursor);
    }

    /// Hands `events` (the follower's next batch, in log order, all after
    /// the tail) to every live stream, dropping those whose buffer they
    /// would overfill.
    pub fn publish(&self, events: Vec<Event>) {
        let Some(last) = events.last().map(|event| event.cursor) else {
            return;
        };
        let mut state = lock(&self.state);
        state.tail = last;
        if state.subscribers.is_empty() {
            return;
        }
        let batch: Arc<[Event]> = events.into();
        let mut dropped = 0u64;
        state.subscribers.retain(|_, inbox| {
            let kept = inbox.offer(&batch, self.limits.buffer, &self.buffered);
            dropped += u64::from(!kept);
            kept
        });
        drop(state);
        if dropped > 0 {
            metrics::counter!(EVENT_STREAMS_DROPPED).increment(dropped);
        }
        gauge(EVENT_STREAMS_BUFFERED, self.buffered_events());
    }

    /// Registers a stream that has sent everything up to `cursor`, if that
    /// reaches the tail; otherwise the stream has more to read first.
    pub fn join(self: &Arc<Self>, cursor: EventCursor) -> Option<Subscription> {
        let mut state = lock(&self.state);
        if state.tail > cursor {
            return None;
        }
        let id = state.next_id;
        state.next_id += 1;
        let inbox = Arc::new(Inbox {
            queue: Mutex::new(Queue {
                batches: VecDeque::new(),
                len: 0,
                after: cursor,
                dropped: false,
            }),
            ready: Notify::new(),
        });
        state.subscribers.insert(id, inbox.clone());
        Some(Subscription {
            feed: self.clone(),
            id,
            inbox,
        })
    }
}

impl Inbox {
    /// Queues what of `batch` comes after what the stream has; false if
    /// that would pass `bound` (the stream is then dropped, its buffer freed).
    fn offer(&self, batch: &Arc<[Event]>, bound: usize, buffered: &AtomicUsize) -> bool {
        let mut queue = lock(&self.queue);
        let start = batch.partition_point(|event| event.cursor <= queue.after);
        let incoming = batch.len() - start;
        if incoming == 0 {
            return true;
        }
        if queue.len + incoming > bound {
            buffered.fetch_sub(queue.len, Ordering::AcqRel);
            queue.batches = VecDeque::new();
            queue.len = 0;
            queue.dropped = true;
            drop(queue);
            self.ready.notify_one();
            return false;
        }
        queue.batches.push_back((batch.clone(), start));
        queue.len += incoming;
        if let Some(last) = batch.last() {
            queue.after = last.cursor;
        }
        buffered.fetch_add(incoming, Ordering::AcqRel);
        drop(queue);
        self.ready.notify_one();
        true
    }
}

/// What a live stream does next.
// Returned and matched at once, never stored: boxing the event would cost
// an allocation per event per stream for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Next {
    /// Send this event.
    Event(Event),
    /// Nothing yet: wait for [`Subscription::ready`].
    Empty,
    /// The buffer filled while the client did not read: end the stream.
    Dropped,
}

/// A stream's place in the feed; leaves it when dropped.
#[derive(Debug)]
pub struct Subscription {
    feed: Arc<EventFeed>,
    id: u64,
    inbox: Arc<Inbox>,
}

impl Subscription {
    /// Takes the next event.
    pub fn take_next(&self) -> Next {
        let mut queue = lock(&self.inbox.queue);
        if queue.dropped {
            return Next::Dropped;
        }
        let Some((batch, index)) = queue.batches.front_mut() else {
            return Next::Empty;
        };
        let event = batch[*index].clone();
        *index += 1;
        if *index == batch.len() {
            queue.batches.pop_front();
        }
        queue.len -= 1;
        let emptied = queue.len == 0;
        drop(queue);
        let left = self.feed.buffered.fetch_sub(1, Ordering::AcqRel) - 1;
        if emptied {
            gauge(EVENT_STREAMS_BUFFERED, left);
        }
        Next::Event(event)
    }

    /// Completes when something was published for this stream (or it was
    /// dropped) since the last call.
    pub async fn ready(&self) {
        self.inbox.ready.notified().await;
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        lock(&self.feed.state).subscribers.remove(&self.id);
        let mut queue = lock(&self.inbox.queue);
        let held = std::mem::take(&mut queue.len);
        queue.batches.clear();
        drop(queue);
        if held > 0 {
            self.feed.buffered.fetch_sub(held, Ordering::AcqRel);
            gauge(EVENT_STREAMS_BUFFERED, self.feed.buffered_events());
        }
    }
}

/// One stream counted against the limit; uncounted when dropped.
#[derive(Debug)]
pub struct StreamPermit(Arc<EventFeed>);

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let before = self.0.open.fetch_sub(1, Ordering::AcqRel);
        gauge(EVENT_STREAMS_OPEN, before.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ids::DeveloperId, ids::OrganizationId};

    fn event(seq: i64) -> Event {
        Event {
            cursor: EventCursor { txid: 0, seq },
            id: uuid::Uuid::now_v7(),
            event_type: "organization.updated".into(),
            organization_id: OrganizationId(uuid::Uuid::nil()),
            developer_id: DeveloperId::from_trusted(String::new()),
            actor_id: String::new(),
            subject_user_id: String::new(),
            subject_email: String::new(),
            changes: Vec::new(),
            created_at: crate::domain::now(),
            acting_party: None,
        }
    }

    fn seqs(subscription: &Subscription) -> Vec<i64> {
        let mut seen = Vec::new();
        while let Next::Event(event) = subscription.take_next() {
            seen.push(event.cursor.seq);
        }
        seen
    }

    fn feed(buffer: usize) -> Arc<EventFeed> {
        Arc::new(EventFeed::new(StreamLimits {
            max_streams: 2,
            buffer,
        }))
    }

    #[test]
    fn a_stream_behind_the_tail_cannot_join_and_one_ahead_skips_what_it_has() {
        let feed = feed(10);
        feed.publish((1..=3).map(event).collect());
        assert!(feed.join(EventCursor { txid: 0, seq: 2 }).is_none());
        let ahead = feed.join(EventCursor { txid: 0, seq: 5 }).unwrap();
        feed.publish((4..=7).map(event).collect());
        assert_eq!(seqs(&ahead), [6, 7]);
    }

    #[test]
    fn a_full_buffer_drops_the_stream_and_frees_it() {
        let feed = feed(3);
        let slow = feed.join(EventCursor::START).unwrap();
        let fast = feed.join(EventCursor::START).unwrap();
        feed.publish(vec![event(1), event(2)]);
        assert_eq!(seqs(&fast), [1, 2]);
        assert_eq!(feed.buffered_events(), 2);
        feed.publish(vec![event(3), event(4)]);
        assert!(matches!(slow.take_next(), Next::Dropped));
        assert_eq!(seqs(&fast), [3, 4]);
        assert_eq!(feed.buffered_events(), 0);
        drop(fast);
        drop(slow);
        assert!(lock(&feed.state).subscribers.is_empty());
    }

    #[test]
    fn the_limit_refuses_the_next_stream_until_one_ends() {
        let feed = feed(3);
        let first = feed.admit().unwrap();
        let _second = feed.admit().unwrap();
        assert!(matches!(
            feed.admit(),
            Err(Error::ResourceExhausted(Reason::EventStreamLimit))
        ));
        drop(first);
        assert!(feed.admit().is_ok());
    }
}
