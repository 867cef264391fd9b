//! Test support: a deterministic clock and random source, a scripted
//! provider, and (with the `suite` feature) the behaviour suite every store
//! must pass.
//!
//! Production code supplies its own system clock and operating-system random
//! source; these make runs repeatable. [`SeededRandom`] is **not** fit for
//! public link tokens in production: its output is predictable from the seed.

mod scripted;
#[cfg(feature = "suite")]
pub mod suite;

pub use scripted::{ScriptedProvider, SIGNATURE_HEADER};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::service::{Clock, RandomSource};

/// A clock that stands still until a test moves it.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<OffsetDateTime>,
}

impl ManualClock {
    pub fn new(start: OffsetDateTime) -> ManualClock {
        ManualClock { now: Mutex::new(start) }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *now += by;
    }

    pub fn set(&self, to: OffsetDateTime) {
        *self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A repeatable byte stream: SHA-256 of a seed and a counter.
#[derive(Debug)]
pub struct SeededRandom {
    seed: u64,
    counter: AtomicU64,
}

impl SeededRandom {
    pub fn new(seed: u64) -> SeededRandom {
        SeededRandom { seed, counter: AtomicU64::new(0) }
    }
}

impl RandomSource for SeededRandom {
    fn fill_bytes(&self, destination: &mut [u8]) {
        for chunk in destination.chunks_mut(32) {
            let counter = self.counter.fetch_add(1, Ordering::Relaxed);
            let mut hasher = Sha256::new();
            hasher.update(self.seed.to_be_bytes());
            hasher.update(counter.to_be_bytes());
            let block = hasher.finalize();
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    }
}
