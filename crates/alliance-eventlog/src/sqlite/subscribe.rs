//! `subscribe`: catch up from the database, then follow the writer's commits (from memory while
//! it holds them).

use std::collections::VecDeque;
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
        batch,
        failed: false,
    };
    futures::stream::unfold(subscription, |mut sub| async move {
        let item = sub.next_event().await?;
        Some((item, sub))
    })
    .boxed()
}

impl Subscription {
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
                if let Some(events) = self.recent.read_from(from, limit)
                    && let Some(last) = events.last()
                {
                    self.next = last.position + 1;
                    self.buffer = events.into();
                    continue;
                }
                match self
                    .reads
                    .run(move |conn| read::read_all(conn, from, limit))
                    .await
                {
                    Ok(events) => {
                        if let Some(last) = events.last() {
                            self.next = last.position + 1;
                            self.buffer = events.into();
                            continue;
                        }
                        // Nothing stored at or after `next` although the writer announced it:
                        // only possible with gaps in positions. Wait for the next commit.
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
