//! The replication throttle (`replica.throttle.bytes` per second): a token bucket that
//! bounds how fast this broker fetches the replicas a reassignment is adding, so moving
//! a partition does not starve the produce and fetch traffic around it. Pure: the caller
//! passes the time.

use std::time::{Duration, Instant};

/// A token bucket of bytes: it refills at `rate` per second up to one second's worth,
/// and a charge may take it below zero (a fetch answer is only known once it arrived),
/// which the next refills pay back.
#[derive(Debug)]
pub struct ByteThrottle {
    rate: u64,
    tokens: i64,
    refilled_at: Instant,
}

impl ByteThrottle {
    /// A full bucket. `rate` 0 means unthrottled.
    pub fn new(rate: u64, now: Instant) -> Self {
        Self {
            rate,
            tokens: Self::cap(rate),
            refilled_at: now,
        }
    }

    pub fn is_unlimited(&self) -> bool {
        self.rate == 0
    }

    fn cap(rate: u64) -> i64 {
        i64::try_from(rate).unwrap_or(i64::MAX)
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled_at);
        let earned = (elapsed.as_secs_f64() * self.rate as f64) as i64;
        if earned > 0 {
            self.tokens = self.tokens.saturating_add(earned).min(Self::cap(self.rate));
            self.refilled_at = now;
        }
    }

    /// The bytes that may be fetched now (0 when in debt); `u64::MAX` if unthrottled.
    pub fn available(&mut self, now: Instant) -> u64 {
        if self.is_unlimited() {
            return u64::MAX;
        }
        self.refill(now);
        u64::try_from(self.tokens.max(0)).unwrap_or(0)
    }

    /// Takes `bytes` fetched.
    pub fn charge(&mut self, bytes: u64, now: Instant) {
        if self.is_unlimited() {
            return;
        }
        self.refill(now);
        self.tokens = self
            .tokens
            .saturating_sub(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// How long until at least `bytes` may be fetched (zero if they may now).
    pub fn wait_for(&mut self, bytes: u64, now: Instant) -> Duration {
        if self.is_unlimited() {
            return Duration::ZERO;
        }
        self.refill(now);
        let wanted = i64::try_from(bytes.min(self.rate)).unwrap_or(i64::MAX);
        let missing = wanted.saturating_sub(self.tokens);
        if missing <= 0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(missing as f64 / self.rate as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;

    #[test]
    fn fetches_average_to_the_rate() {
        let start = Instant::now();
        let mut t = ByteThrottle::new(MB, start);
        let mut now = start;
        let mut fetched = 0;
        // Each round fetches what is available (and 64 KiB more, learnt only after).
        while now < start + Duration::from_secs(10) {
            let may = t.available(now);
            if may > 0 {
                let got = may + 64 * 1024;
                t.charge(got, now);
                fetched += got;
            }
            now += Duration::from_millis(10);
        }
        let rate = fetched / 10;
        assert!(rate <= MB + MB / 5, "{rate} bytes per second");
        assert!(rate >= MB - MB / 5, "{rate} bytes per second");
    }

    #[test]
    fn debt_is_paid_back_before_more_is_allowed() {
        let start = Instant::now();
        let mut t = ByteThrottle::new(MB, start);
        t.charge(3 * MB, start);
        assert_eq!(t.available(start), 0);
        assert_eq!(
            t.wait_for(1, start),
            Duration::from_secs_f64(2.0 + 1.0 / MB as f64)
        );
        assert_eq!(t.available(start + Duration::from_secs(1)), 0);
        assert!(t.available(start + Duration::from_secs(3)) > 0);
    }

    #[test]
    fn an_idle_bucket_holds_one_second_at_most() {
        let start = Instant::now();
        let mut t = ByteThrottle::new(MB, start);
        assert_eq!(t.available(start + Duration::from_secs(60)), MB);
    }

    #[test]
    fn zero_means_unthrottled() {
        let start = Instant::now();
        let mut t = ByteThrottle::new(0, start);
        t.charge(u64::MAX, start);
        assert_eq!(t.available(start), u64::MAX);
        assert_eq!(t.wait_for(u64::MAX, start), Duration::ZERO);
    }
}
