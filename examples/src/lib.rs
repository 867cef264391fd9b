//! Building blocks the examples share: the production clock and random
//! source that `billing-domain` leaves to the application, and the
//! reference workspace server ([`server`]).

pub mod server;

use billing_domain::service::{Clock, RandomSource};
use rand::RngCore;
use time::OffsetDateTime;

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// The operating system's cryptographic random source, fit for public link tokens.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRandom;

impl RandomSource for OsRandom {
    fn fill_bytes(&self, destination: &mut [u8]) {
        rand::rngs::OsRng.fill_bytes(destination);
    }
}
