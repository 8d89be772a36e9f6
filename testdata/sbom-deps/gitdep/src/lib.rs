//! The answer, formatted by a shared dependency.

/// 42, after a round trip through `itoa`.
pub fn answer() -> u64 {
    let mut buf = itoa::Buffer::new();
    buf.format(42u64).parse().unwrap_or(42)
}
