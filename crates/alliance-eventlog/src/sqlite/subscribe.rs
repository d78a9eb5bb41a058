//! `subscribe`: catch up from the database, then follow the writer's commits (from memory while
//! it holds them).

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::watch;

use super::memory::RecentEvents;
use super::read::{self, ReadPool};
use crate::{LogError, Position, StoredEvent};

struct Subscription {
    reads: Arc<ReadPool>,
    recent: Arc<RecentEvents>,
    /// The last committed position, moved by the writer after each commit. Closed when the
    /// writer stops, i.e. when the log is closed.
    committed: watch::Receiver<Position>,
    /// The next position to read.
    next: Position,
    /// Events read but not yet yielded.
    buffer: VecDeque<StoredEvent>,
    /// The read of the next range of positions, started while the one before is yielded.
    ahead: Option<(Range<Position>, Reading)>,
    batch: usize,
    /// Set after an error was yielded: the stream then ends.
    failed: bool,
}

/// Every event with `position >= from`: first the stored ones, read `batch` at a time, then
/// each commit's new events as the writer announces them. Ends when the log is closed (after
/// yielding everything committed before) or after yielding an error.
pub(super) fn stream(
    reads: Arc<ReadPool>,
    recent: Arc<RecentEvents>,
    committed: watch::Receiver<Position>,
    from: Position,
    batch: usize,
) -> BoxStream<'static, Result<StoredEvent, LogError>> {
    let subscription = Subscription {
        reads,
        recent,
        committed,
        next: from.max(1),
        buffer: VecDeque::new(),
        ahead: None,
        batch,
        failed: false,
    };
    futures::stream::unfold(subscription, |mut sub| async move {
        let item = sub.next_event().await?;
        Some((item, sub))
    })
    .boxed()
}

/// A read of a range of positions under way.
type Reading = tokio::task::JoinHandle<Result<Vec<StoredEvent>, LogError>>;

impl Subscription {
    /// Starts reading the events at positions `range`.
    fn read(&self, range: Range<Position>) -> Reading {
        let reads = Arc::clone(&self.reads);
        tokio::spawn(async move {
            reads
                .run(move |conn| read::read_range::<StoredEvent>(conn, range.start, range.end))
                .await
        })
    }

    /// The next item of the stream, `None` at its end.
    async fn next_event(&mut self) -> Option<Result<StoredEvent, LogError>> {
        loop {
            if let Some(event) = self.buffer.pop_front() {
                return Some(Ok(event));
            }
            if self.failed {
                return None;
            }

            // Mark the current value seen *before* reading: a commit that lands after this point
            // moves the watch again, so `changed` below cannot miss it.
            let committed = *self.committed.borrow_and_update();
            if self.next <= committed {
                let (from, limit) = (self.next, self.batch);
                if self.ahead.is_none()
                    && let Some(events) = self.recent.read_from(from, limit)
                    && let Some(last) = events.last()
                {
                    self.next = last.position + 1;
                    self.buffer = events.into();
                    continue;
                }
                // Catching up from the database: the range after this one is read meanwhile.
                let range = from..committed.min(from + limit as Position - 1) + 1;
                let reading = match self.ahead.take() {
                    Some((ahead, reading)) if ahead == range => reading,
                    _ => self.read(range.clone()),
                };
                if range.end <= committed {
                    let next = range.end..committed.min(range.end + limit as Position - 1) + 1;
                    self.ahead = Some((next.clone(), self.read(next)));
                }
                match reading.await.unwrap_or_else(|e| {
                    Err(LogError::Unavailable(format!(
                        "event log read task failed: {e}"
                    )))
                }) {
                    Ok(events) => {
                        // Every committed position below `range.end` has been read (a gap in
                        // positions holds no event).
                        self.next = range.end;
                        self.buffer = events.into();
                        continue;
                    }
                    Err(error) => {
                        self.failed = true;
                        return Some(Err(error));
                    }
                }
            }

            // Caught up: sleep until the writer commits again. An error means the writer has
            // stopped and its last value was already seen, so everything has been read.
            if self.committed.changed().await.is_err() {
                return None;
            }
        }
    }
}
