//! Small helpers every crate shares, on the standard library alone (in the manner of
//! rust-analyzer's `stdx`).
//!
//! The locks: a thread that panicked while holding one poisons it, but the data a lock guards
//! here is never left half-changed by a panic that matters (a panic is a bug, and each guard's
//! holder finishes or drops its change), so every lock recovers from poison instead of
//! spreading the panic. `clippy.toml` steers the raw calls here.
#![allow(clippy::disallowed_methods)]

use std::sync::{
    Condvar, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard,
    WaitTimeoutResult,
};
use std::time::Duration;

/// Locks `mutex`, recovering it if a holder panicked.
pub fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Locks `lock` for reading, recovering it if a writer panicked.
pub fn read<T: ?Sized>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

/// Locks `lock` for writing, recovering it if a holder panicked.
pub fn write<T: ?Sized>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

/// Waits on `condvar` with `guard`, recovering the lock if a holder panicked.
pub fn wait<'a, T>(condvar: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    condvar.wait(guard).unwrap_or_else(PoisonError::into_inner)
}

/// Waits on `condvar` with `guard` for at most `timeout`, recovering the lock if a holder
/// panicked.
pub fn wait_timeout<'a, T>(
    condvar: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: Duration,
) -> (MutexGuard<'a, T>, WaitTimeoutResult) {
    condvar
        .wait_timeout(guard, timeout)
        .unwrap_or_else(PoisonError::into_inner)
}

/// The parts of a `tower::Service` that wraps an `inner` service, answers with its response
/// and error types, is ready when it is, and answers each call with a boxed `Send` future:
/// every middleware that looks at a request and its answer states these the same way.
///
/// Inside `impl<S, ..> tower::Service<Request> for Wrapper<S>` where `S` is the inner service
/// (named `S`, held in the field `inner`):
/// `alliance_stdx::forward_service!();`, then `fn call`.
#[macro_export]
macro_rules! forward_service {
    () => {
        type Response = S::Response;
        type Error = S::Error;
        type Future = ::std::pin::Pin<
            Box<dyn ::std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
        >;

        fn poll_ready(
            &mut self,
            cx: &mut ::std::task::Context<'_>,
        ) -> ::std::task::Poll<Result<(), Self::Error>> {
            self.inner.poll_ready(cx)
        }
    };
}

#[cfg(test)]
mod tests {
    /// A list grown a few at a time keeps at most an eighth (or 16) of its length spare.
    #[test]
    fn a_list_given_room_keeps_little_spare() {
        let mut items: Vec<u64> = Vec::new();
        for n in 0..10_000_u64 {
            super::room_for(&mut items, 1);
            items.push(n);
            assert!(
                items.capacity() <= items.len() + (items.len() / 8).max(16),
                "{n}"
            );
        }
        super::room_for(&mut items, 100);
        assert!(items.capacity() - items.len() >= 100);
    }

    use std::sync::{Arc, Mutex, RwLock};

    use super::*;

    #[test]
    fn a_poisoned_lock_is_recovered_with_its_data() {
        let mutex = Arc::new(Mutex::new(1));
        let rw = Arc::new(RwLock::new(1));
        let (m, r) = (Arc::clone(&mutex), Arc::clone(&rw));
        let panicked = std::thread::spawn(move || {
            let _m = lock(&m);
            let _r = write(&r);
            panic!("poisons both");
        })
        .join();
        assert!(panicked.is_err());
        assert!(mutex.is_poisoned() && rw.is_poisoned());
        *lock(&mutex) += 1;
        *write(&rw) += 1;
        assert_eq!((*lock(&mutex), *read(&rw)), (2, 2));
    }
}

/// Makes room in `items` for `more`, growing it by an eighth at a time (at least 16): a
/// doubling vector would hold up to as much again spare, which a read model or a command
/// service keeping a long list for every plan holds for good.
pub fn room_for<T>(items: &mut Vec<T>, more: usize) {
    if items.capacity() - items.len() < more {
        items.reserve_exact((items.len() / 8).max(16).max(more));
    }
}

/// Lowercase hex, the one spelling of hashes, key ids and signatures in text.
pub mod hex {
    /// `bytes` as lowercase hex digits.
    pub fn encode(bytes: &[u8]) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut text = String::with_capacity(bytes.len() * 2);
        for byte in bytes {
            text.push(char::from(DIGITS[usize::from(byte >> 4)]));
            text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
        }
        text
    }

    /// The value of one hex digit (either case).
    fn digit(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }

    /// Fills `out` from exactly twice as many hex digits; `false` if `text` is not that.
    fn decode_into(text: &str, out: &mut [u8]) -> bool {
        text.len() == 2 * out.len()
            && out
                .iter_mut()
                .zip(text.as_bytes().chunks_exact(2))
                .all(|(byte, pair)| {
                    digit(pair[0])
                        .zip(digit(pair[1]))
                        .map(|(high, low)| *byte = high << 4 | low)
                        .is_some()
                })
    }

    /// The bytes of hex digits (either case); `None` if `text` is not an even number of them.
    /// Digits only: no sign, no space.
    pub fn decode(text: &str) -> Option<Vec<u8>> {
        let mut bytes = vec![0; text.len() / 2];
        decode_into(text, &mut bytes).then_some(bytes)
    }

    /// Exactly `N` bytes of hex digits.
    pub fn decode_array<const N: usize>(text: &str) -> Option<[u8; N]> {
        let mut bytes = [0; N];
        decode_into(text, &mut bytes).then_some(bytes)
    }

    /// Exactly `N` bytes of lowercase hex digits, the spelling this project writes: text in
    /// any other spelling is not the same text.
    pub fn decode_lower_array<const N: usize>(text: &str) -> Option<[u8; N]> {
        if text.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        decode_array(text)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn lowercase_hex_alone_decodes_as_written() {
            assert_eq!(decode_lower_array::<2>("0aff"), Some([0x0a, 0xff]));
            assert_eq!(decode_lower_array::<2>("0AFF"), None);
        }

        #[test]
        fn hex_round_trips_and_refuses_what_is_not_hex() {
            let bytes = [0x00, 0x0f, 0xa5, 0xff];
            assert_eq!(encode(&bytes), "000fa5ff");
            assert_eq!(decode("000fa5ff").as_deref(), Some(&bytes[..]));
            assert_eq!(decode("000FA5FF").as_deref(), Some(&bytes[..]));
            assert_eq!(decode_array::<4>("000fa5ff"), Some(bytes));
            assert_eq!(decode_array::<3>("000fa5ff"), None);
            assert_eq!(decode("abc"), None);
            assert_eq!(decode("zz"), None);
            assert_eq!(decode("+1"), None);
            assert_eq!(decode(""), Some(Vec::new()));
        }
    }
}

/// Values one part of a process hands to another, each for a version of a stream (a plan's own
/// stream of events, say): the giver offers them as it makes them, the taker takes a stream's
/// versions in order as it reaches them.
///
/// * An offer the taker passes without taking (its version was reached before the offer came,
///   or another value stood at it) is dropped when the taker takes a later version of the
///   stream, and an offer of a version the stream was already offered up to replaces the
///   offers from that version on (the giver started the stream again there).
/// * At most `capacity` offers wait. An offer that finds it full first drops every offer made
///   before the latest `capacity / 2` (those of streams the taker never reached again, or of
///   a taker absent or far behind): the newest offers always wait, and the memory held stays
///   bounded, never growing with the streams or the offers.
/// * What is taken is only ever a hint: the taker checks it against what it has itself.
pub mod handoff {
    use std::collections::{HashMap, VecDeque};
    use std::hash::Hash;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::lock;

    pub struct Handoff<K, V> {
        capacity: usize,
        /// How many offers wait, so a taker finds none without taking the lock.
        waiting: AtomicUsize,
        offers: Mutex<Offers<K, V>>,
    }

    struct Offers<K, V> {
        /// Each stream's offers in version order: (version, the offer's number, value).
        streams: HashMap<K, VecDeque<(u64, u64, V)>>,
        /// The number the next offer gets: offers are numbered in the order they were made.
        next: u64,
    }

    impl<K: Eq + Hash, V> Handoff<K, V> {
        /// A handoff that holds at most `capacity` offers (at least 2).
        pub fn new(capacity: usize) -> Self {
            Self {
                capacity: capacity.max(2),
                waiting: AtomicUsize::new(0),
                offers: Mutex::new(Offers {
                    streams: HashMap::new(),
                    next: 0,
                }),
            }
        }

        /// Offers `value` for `version` of `stream`.
        pub fn offer(&self, stream: K, version: u64, value: V) {
            let mut offers = lock(&self.offers);
            let mut waiting = self.waiting.load(Ordering::Relaxed);
            if waiting >= self.capacity {
                // Keeps only the latest half: a sweep every `capacity / 2` offers at most.
                let kept_from = offers.next.saturating_sub((self.capacity / 2) as u64);
                offers.streams.retain(|_, queue| {
                    queue.retain(|(_, number, _)| *number >= kept_from);
                    !queue.is_empty()
                });
                waiting = offers.streams.values().map(VecDeque::len).sum();
            }
            let number = offers.next;
            offers.next += 1;
            let queue = offers.streams.entry(stream).or_default();
            while queue.back().is_some_and(|(at, ..)| *at >= version) {
                queue.pop_back();
                waiting -= 1;
            }
            queue.push_back((version, number, value));
            self.waiting.store(waiting + 1, Ordering::Relaxed);
        }

        /// The value offered for `version` of `stream`, if one waits; every offer of an earlier
        /// version of the stream is dropped.
        pub fn take(&self, stream: &K, version: u64) -> Option<V> {
            if self.waiting.load(Ordering::Relaxed) == 0 {
                return None;
            }
            let mut offers = lock(&self.offers);
            let queue = offers.streams.get_mut(stream)?;
            let mut found = None;
            let mut taken = 0;
            while queue.front().is_some_and(|(at, ..)| *at <= version) {
                if let Some((at, _, value)) = queue.pop_front() {
                    taken += 1;
                    found = (at == version).then_some(value);
                }
            }
            if queue.is_empty() {
                offers.streams.remove(stream);
            }
            self.waiting.fetch_sub(taken, Ordering::Relaxed);
            found
        }

        /// How many offers wait.
        pub fn waiting(&self) -> usize {
            self.waiting.load(Ordering::Relaxed)
        }

        /// How many streams have offers waiting.
        #[cfg(test)]
        fn streams(&self) -> usize {
            lock(&self.offers).streams.len()
        }
    }

    #[cfg(test)]
    mod tests {
        use super::Handoff;

        #[test]
        fn a_taker_takes_each_version_offered_once_and_drops_what_it_passed() {
            let handoff = Handoff::new(16);
            for version in 1..=4 {
                handoff.offer("a", version, format!("a{version}"));
            }
            handoff.offer("b", 1, "b1".to_owned());
            assert_eq!(handoff.waiting(), 5);
            assert_eq!(handoff.take(&"a", 1).as_deref(), Some("a1"));
            assert_eq!(handoff.take(&"a", 1), None, "taken once");
            // Version 2 was reached without the taker asking: passed, and dropped with it.
            assert_eq!(handoff.take(&"a", 3).as_deref(), Some("a3"));
            assert_eq!(handoff.waiting(), 2);
            // Another stream's offers are its own.
            assert_eq!(handoff.take(&"b", 4), None);
            assert_eq!(handoff.take(&"a", 4).as_deref(), Some("a4"));
            assert_eq!((handoff.waiting(), handoff.streams()), (0, 0));
            // An offer for a version the taker is already past waits only until its next take.
            handoff.offer("a", 2, "late".to_owned());
            assert_eq!(handoff.take(&"a", 5), None);
            assert_eq!(handoff.waiting(), 0);
        }

        #[test]
        fn a_stream_offered_again_from_a_version_keeps_the_later_offers() {
            let handoff = Handoff::new(16);
            for version in 1..=3 {
                handoff.offer(7, version, version * 10);
            }
            // The giver started again at version 2 (its first offers there were never written).
            handoff.offer(7, 2, 21);
            assert_eq!(handoff.waiting(), 2);
            assert_eq!(handoff.take(&7, 2), Some(21));
            assert_eq!(handoff.take(&7, 3), None);
        }

        /// Offers no taker ever reaches (one version of each of many streams, none taken) give
        /// way to newer ones: a full handoff keeps its latest half and takes every new offer.
        #[test]
        fn a_full_handoff_keeps_its_newest_offers_and_bounded_memory() {
            let handoff = Handoff::new(8);
            for stream in 0..1000 {
                handoff.offer(stream, 1, stream);
                assert!(handoff.waiting() <= 8);
                assert_eq!(
                    handoff.streams(),
                    handoff.waiting(),
                    "no stream without offers"
                );
            }
            assert_eq!(handoff.take(&999, 1), Some(999), "the newest offer waits");
            assert_eq!(handoff.take(&998, 1), Some(998));
            assert_eq!(handoff.take(&0, 1), None, "the oldest gave way");
            // A taker that keeps up is never swept: each stream's offers are taken as they come.
            for version in 2..2000 {
                handoff.offer(-1, version, 0);
                assert_eq!(handoff.take(&-1, version), Some(0));
            }
        }
    }
}
