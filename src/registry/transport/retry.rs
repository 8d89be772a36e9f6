//! The one retry loop of the registry stage, and the pure decision it follows:
//! (outcome, attempt) → retry after a delay, or give up. The retry set follows
//! go-containerregistry (`pkg/v1/remote/options.go`): connection errors, 408, 429 and 5xx
//! except 501. A `Retry-After` header (seconds or an HTTP-date,
//! <https://www.rfc-editor.org/rfc/rfc9110#field.retry-after>) replaces the backoff,
//! capped by the policy's `max`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::blocking::Response;
use reqwest::header::{self, HeaderMap};

use crate::config::registry::RetryPolicy;
use crate::registry::RegistryError;

/// What a request attempt ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The connection failed or broke (refused, reset, timed out, closed mid-body).
    Connection,
    /// An HTTP status, with the delay its `Retry-After` header asks for, if any.
    Status(u16, Option<Duration>),
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Try again after this long.
    Retry(Duration),
    /// Stop: a permanent error, or out of attempts.
    GiveUp,
}

/// Whether an outcome is worth retrying at all.
pub fn is_transient(outcome: &Outcome) -> bool {
    match outcome {
        Outcome::Connection => true,
        Outcome::Status(s, _) => matches!(s, 408 | 429 | 500..=599) && *s != 501,
    }
}

/// Decides after attempt number `attempt` (1-based) ended with `outcome`. `jitter` in
/// [0, 1) spreads retries of parallel uploads apart.
pub fn decide(policy: &RetryPolicy, outcome: &Outcome, attempt: u32, jitter: f64) -> Decision {
    if attempt >= policy.attempts || !is_transient(outcome) {
        return Decision::GiveUp;
    }
    if let Outcome::Status(_, Some(wait)) = outcome {
        return Decision::Retry((*wait).min(policy.max));
    }
    let exp = policy.base.saturating_mul(1u32 << (attempt - 1).min(16));
    let with_jitter = exp.mul_f64(1.0 + jitter.clamp(0.0, 1.0) * 0.5);
    Decision::Retry(with_jitter.min(policy.max))
}

/// How one attempt failed.
#[derive(Debug)]
pub enum Failure {
    /// Possibly transient: retried while the policy allows.
    Transient {
        /// What happened.
        outcome: Outcome,
        /// It in words, for the error once attempts run out (`HTTP 503`, the I/O error).
        detail: String,
    },
    /// Stop now with this error.
    Fatal(RegistryError),
}

impl From<RegistryError> for Failure {
    fn from(e: RegistryError) -> Self {
        Failure::Fatal(e)
    }
}

/// The last failure of a request that ran out of attempts (or failed permanently in a way
/// the caller treats like that).
#[derive(Debug)]
pub struct Exhausted {
    /// Attempts made.
    pub attempts: u32,
    /// The last outcome.
    pub outcome: Outcome,
    /// It in words.
    pub detail: String,
}

/// Runs `attempt` (given the 1-based attempt number) until it succeeds, fails fatally, or
/// `policy` gives up on its transient failures; `give_up` turns the last of those into the
/// error.
pub fn with_retries<T>(
    policy: &RetryPolicy,
    attempt: impl FnMut(u32) -> Result<T, Failure>,
    give_up: impl FnOnce(Exhausted) -> RegistryError,
) -> Result<T, RegistryError> {
    with_retries_reporting(policy, attempt, give_up, |_, _, _| {})
}

/// [`with_retries`], calling `on_retry(failed attempt, what failed, delay)` before each
/// wait.
pub fn with_retries_reporting<T>(
    policy: &RetryPolicy,
    mut attempt: impl FnMut(u32) -> Result<T, Failure>,
    give_up: impl FnOnce(Exhausted) -> RegistryError,
    on_retry: impl Fn(u32, &str, Duration),
) -> Result<T, RegistryError> {
    let mut n = 0;
    loop {
        n += 1;
        match attempt(n) {
            Ok(value) => return Ok(value),
            Err(Failure::Fatal(e)) => return Err(e),
            Err(Failure::Transient { outcome, detail }) => {
                match decide(policy, &outcome, n, jitter()) {
                    Decision::Retry(delay) => {
                        on_retry(n, &detail, delay);
                        sleep_unless_interrupted(delay)?;
                    }
                    Decision::GiveUp => {
                        return Err(give_up(Exhausted {
                            attempts: n,
                            outcome,
                            detail,
                        }));
                    }
                }
            }
        }
    }
}

/// Waits `delay` between attempts, in short steps so Ctrl-C ends the wait at once.
fn sleep_unless_interrupted(delay: Duration) -> Result<(), RegistryError> {
    let until = std::time::Instant::now() + delay;
    loop {
        crate::interrupt::check()?;
        let left = until.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

/// `resp`, unless its status is transient: then the failure to retry.
pub fn transient_status(resp: Response) -> Result<Response, Failure> {
    let outcome = status_outcome(&resp);
    if is_transient(&outcome) {
        return Err(Failure::Transient {
            outcome,
            detail: format!("HTTP {}", resp.status().as_u16()),
        });
    }
    Ok(resp)
}

/// The outcome a response stands for: its status and `Retry-After`.
pub fn status_outcome(resp: &Response) -> Outcome {
    Outcome::Status(
        resp.status().as_u16(),
        retry_after(resp.headers(), SystemTime::now()),
    )
}

/// The delay a `Retry-After` header asks for, as of `now`: delay-seconds or an
/// IMF-fixdate HTTP-date (a date in the past means at once).
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = parse_http_date(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the HTTP-date form servers
/// must send.
fn parse_http_date(s: &str) -> Option<SystemTime> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parts: Vec<&str> = s.split_ascii_whitespace().collect();
    let [weekday, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    if !weekday.ends_with(',') {
        return None;
    }
    let day: u32 = day.parse().ok().filter(|d| (1..=31).contains(d))?;
    let month = MONTHS.iter().position(|m| m == month)? as u32 + 1;
    let year: i64 = year.parse().ok().filter(|y| *y >= 1970)?;
    let mut hms = time.split(':').map(|p| p.parse::<u64>().ok());
    let (Some(Some(h)), Some(Some(m)), Some(Some(sec)), None) =
        (hms.next(), hms.next(), hms.next(), hms.next())
    else {
        return None;
    };
    if h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let days = u64::try_from(days_from_civil(year, month, day)).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(days * 86_400 + h * 3600 + m * 60 + sec))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A number in [0, 1) that differs between threads and attempts.
fn jitter() -> f64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    f64::from(nanos % 1000) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(attempts: u32, base_ms: u64, max_ms: u64) -> RetryPolicy {
        RetryPolicy {
            attempts,
            base: Duration::from_millis(base_ms),
            max: Duration::from_millis(max_ms),
        }
    }

    #[test]
    fn retries_connection_errors_408_429_and_5xx_but_not_client_errors_or_501() {
        for outcome in [
            Outcome::Connection,
            Outcome::Status(408, None),
            Outcome::Status(429, None),
            Outcome::Status(500, None),
            Outcome::Status(502, None),
            Outcome::Status(503, None),
            Outcome::Status(599, None),
        ] {
            assert!(is_transient(&outcome), "{outcome:?}");
        }
        for s in [200, 201, 202, 301, 400, 401, 403, 404, 405, 409, 413, 501] {
            assert!(!is_transient(&Outcome::Status(s, None)), "{s}");
            assert_eq!(
                decide(&policy(5, 100, 1000), &Outcome::Status(s, None), 1, 0.0),
                Decision::GiveUp,
                "{s}"
            );
        }
    }

    #[test]
    fn backoff_doubles_within_jitter_bounds_up_to_the_cap() {
        let p = policy(10, 100, 1000);
        assert_eq!(
            decide(&p, &Outcome::Connection, 1, 0.0),
            Decision::Retry(Duration::from_millis(100))
        );
        assert_eq!(
            decide(&p, &Outcome::Status(503, None), 2, 0.0),
            Decision::Retry(Duration::from_millis(200))
        );
        // Jitter adds at most half the delay.
        assert_eq!(
            decide(&p, &Outcome::Status(502, None), 3, 1.0),
            Decision::Retry(Duration::from_millis(600))
        );
        for attempt in 1..10 {
            for jitter in [0.0, 0.3, 0.99, 7.0, -1.0] {
                let Decision::Retry(d) = decide(&p, &Outcome::Connection, attempt, jitter) else {
                    panic!("attempt {attempt} should be retried");
                };
                let exp = p.base * (1 << (attempt - 1));
                assert!(
                    d >= exp.min(p.max) && d <= exp.mul_f64(1.5).min(p.max),
                    "{d:?}"
                );
            }
        }
    }

    #[test]
    fn gives_up_after_the_last_attempt() {
        let p = policy(4, 100, 1000);
        assert!(matches!(
            decide(&p, &Outcome::Connection, 3, 0.0),
            Decision::Retry(_)
        ));
        assert_eq!(
            decide(&p, &Outcome::Status(503, None), 4, 0.0),
            Decision::GiveUp
        );
        assert_eq!(
            decide(&policy(1, 100, 1000), &Outcome::Connection, 1, 0.0),
            Decision::GiveUp
        );
    }

    #[test]
    fn honours_retry_after_capped_by_the_policy() {
        let p = policy(5, 100, 10_000);
        assert_eq!(
            decide(
                &p,
                &Outcome::Status(429, Some(Duration::from_secs(3))),
                1,
                0.5
            ),
            Decision::Retry(Duration::from_secs(3))
        );
        assert_eq!(
            decide(
                &p,
                &Outcome::Status(429, Some(Duration::from_secs(3600))),
                1,
                0.0
            ),
            Decision::Retry(Duration::from_secs(10))
        );
        // Retry-After does not make a permanent error transient.
        assert_eq!(
            decide(
                &p,
                &Outcome::Status(404, Some(Duration::from_secs(1))),
                1,
                0.0
            ),
            Decision::GiveUp
        );
    }

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::RETRY_AFTER, value.parse().unwrap());
        h
    }

    #[test]
    fn parses_retry_after_seconds_and_http_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(
            retry_after(&headers("120"), now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(retry_after(&headers(" 0 "), now), Some(Duration::ZERO));
        assert_eq!(
            retry_after(&headers("Sun, 06 Nov 1994 08:49:37 GMT"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            retry_after(&headers("Sun, 06 Nov 1994 08:51:07 GMT"), now),
            Some(Duration::from_secs(90))
        );
        // In the past: at once.
        assert_eq!(
            retry_after(&headers("Sat, 05 Nov 1994 08:49:37 GMT"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(UNIX_EPOCH)
        );
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2000 23:59:59 GMT"),
            Some(UNIX_EPOCH + Duration::from_secs(951_868_799))
        );
        for bad in [
            "soon",
            "-1",
            "1.5",
            "Sun, 06 Nov 1994 08:49:37 PST",
            "Sun 06 Nov 1994 08:49:37 GMT",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
        ] {
            assert_eq!(retry_after(&headers(bad), now), None, "{bad}");
        }
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn the_loop_retries_transient_failures_and_stops_at_fatal_ones() {
        let fast = policy(3, 0, 0);
        let mut calls = 0;
        let got = with_retries(
            &fast,
            |n| {
                calls += 1;
                if n < 3 {
                    Err(Failure::Transient {
                        outcome: Outcome::Connection,
                        detail: "reset".into(),
                    })
                } else {
                    Ok(n)
                }
            },
            |_| unreachable!("succeeds on the last attempt"),
        );
        assert_eq!((got.unwrap(), calls), (3, 3));

        let gave_up = with_retries(
            &fast,
            |_| -> Result<(), Failure> {
                Err(Failure::Transient {
                    outcome: Outcome::Status(503, None),
                    detail: "HTTP 503".into(),
                })
            },
            |e| RegistryError::GaveUp {
                url: "u".into(),
                attempts: e.attempts,
                last: e.detail,
            },
        );
        assert!(
            matches!(gave_up, Err(RegistryError::GaveUp { attempts: 3, ref last, .. }) if last == "HTTP 503")
        );

        let mut calls = 0;
        let fatal = with_retries(
            &fast,
            |_| -> Result<(), Failure> {
                calls += 1;
                Err(RegistryError::Tls {
                    registry: "r".into(),
                    message: "invalid peer certificate".into(),
                }
                .into())
            },
            |_| unreachable!("fatal errors are not retried"),
        );
        assert!(matches!(fatal, Err(RegistryError::Tls { .. })));
        assert_eq!(calls, 1);

        // A permanent status reported as a failure stops after one attempt.
        let mut calls = 0;
        let permanent = with_retries(
            &fast,
            |_| -> Result<(), Failure> {
                calls += 1;
                Err(Failure::Transient {
                    outcome: Outcome::Status(404, None),
                    detail: "HTTP 404".into(),
                })
            },
            |e| RegistryError::GaveUp {
                url: "u".into(),
                attempts: e.attempts,
                last: e.detail,
            },
        );
        assert!(matches!(
            permanent,
            Err(RegistryError::GaveUp { attempts: 1, .. })
        ));
        assert_eq!(calls, 1);
    }
}
