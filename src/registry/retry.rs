//! (outcome, attempt) → retry after a delay, or give up. Pure, so it is unit-tested; the
//! retry set follows go-containerregistry: connection errors, 408, 429 and 5xx.

use std::time::Duration;

/// What a request attempt ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The connection failed or broke (refused, reset, timed out, closed mid-body).
    Connection,
    /// An HTTP status, with the `Retry-After` header in seconds if any.
    Status(u16, Option<u64>),
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Try again after this long.
    Retry(Duration),
    /// Stop: success, a permanent error, or out of attempts.
    GiveUp,
}

/// Backoff settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts per request (first try included).
    pub attempts: u32,
    /// Delay before the first retry; doubles each time.
    pub base: Duration,
    /// Largest delay between attempts (also caps `Retry-After`).
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            base: Duration::from_millis(500),
            max: Duration::from_secs(30),
        }
    }
}

/// Whether an outcome is worth retrying at all.
pub fn is_transient(outcome: &Outcome) -> bool {
    match outcome {
        Outcome::Connection => true,
        Outcome::Status(s, _) => matches!(s, 408 | 429 | 500..=599) && *s != 501,
    }
}

impl RetryPolicy {
    /// Decides after attempt number `attempt` (1-based) ended with `outcome`. `jitter` in
    /// [0, 1) spreads retries of parallel uploads apart.
    pub fn decide(&self, outcome: &Outcome, attempt: u32, jitter: f64) -> Decision {
        if attempt >= self.attempts || !is_transient(outcome) {
            return Decision::GiveUp;
        }
        if let Outcome::Status(_, Some(secs)) = outcome {
            return Decision::Retry(Duration::from_secs(*secs).min(self.max));
        }
        let exp = self.base.saturating_mul(1u32 << (attempt - 1).min(16));
        let with_jitter = exp.mul_f64(1.0 + jitter.clamp(0.0, 1.0) * 0.5);
        Decision::Retry(with_jitter.min(self.max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_transient_failures_with_exponential_backoff() {
        let p = RetryPolicy {
            attempts: 4,
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        assert_eq!(
            p.decide(&Outcome::Connection, 1, 0.0),
            Decision::Retry(Duration::from_millis(100))
        );
        assert_eq!(
            p.decide(&Outcome::Status(503, None), 2, 0.0),
            Decision::Retry(Duration::from_millis(200))
        );
        assert_eq!(
            p.decide(&Outcome::Status(502, None), 3, 1.0),
            Decision::Retry(Duration::from_millis(600))
        );
        assert_eq!(
            p.decide(&Outcome::Status(503, None), 4, 0.0),
            Decision::GiveUp
        );
    }

    #[test]
    fn honours_retry_after_capped_and_never_retries_client_errors() {
        let p = RetryPolicy {
            attempts: 5,
            base: Duration::from_millis(100),
            max: Duration::from_secs(10),
        };
        assert_eq!(
            p.decide(&Outcome::Status(429, Some(3)), 1, 0.5),
            Decision::Retry(Duration::from_secs(3))
        );
        assert_eq!(
            p.decide(&Outcome::Status(429, Some(3600)), 1, 0.0),
            Decision::Retry(Duration::from_secs(10))
        );
        for s in [400, 401, 403, 404, 405, 501] {
            assert_eq!(
                p.decide(&Outcome::Status(s, None), 1, 0.0),
                Decision::GiveUp,
                "{s}"
            );
        }
        assert_eq!(
            p.decide(&Outcome::Status(408, None), 1, 0.0),
            Decision::Retry(Duration::from_millis(100))
        );
    }
}
