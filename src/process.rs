//! Child processes with a deadline: a command that talks to the network (git fetching
//! the advisory database) must not hang a run. Its output is drained on threads so a
//! chatty child cannot block on a full pipe while we wait.

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How a bounded run ended.
#[derive(Debug)]
pub enum Ended {
    /// The child exited (successfully or not).
    Exited(Output),
    /// The deadline passed; the child was killed.
    TimedOut,
}

/// Runs `cmd` with `input` on its stdin (closed when `None`), stdout and stderr captured,
/// and waits at most `timeout`. An error is a child that could not be started (or waited
/// for).
pub fn output_within(
    cmd: &mut Command,
    input: Option<&[u8]>,
    timeout: Duration,
) -> std::io::Result<Ended> {
    let mut child = cmd
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        // A child that exits without reading gives a broken pipe; its status says more.
        let _ = std::io::Write::write_all(&mut stdin, input);
    }
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let started = Instant::now();
    let deadline = started + timeout;
    let status = loop {
        match child.try_wait()? {
            Some(status) => break status,
            // Polled often at first (git answers a local question in milliseconds), then
            // less: the exit is seen within an eighth of the time the child took.
            None if Instant::now() < deadline => std::thread::sleep(
                (started.elapsed() / 8)
                    .clamp(Duration::from_micros(500), Duration::from_millis(20)),
            ),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                return Ok(Ended::TimedOut);
            }
        }
    };
    Ok(Ended::Exited(Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_past_its_deadline_is_stopped() {
        let started = Instant::now();
        let ended = output_within(
            Command::new("sleep").arg("30"),
            None,
            Duration::from_millis(200),
        )
        .unwrap();
        assert!(matches!(ended, Ended::TimedOut));
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn output_is_captured() {
        let Ended::Exited(out) = output_within(
            Command::new("sh").args(["-c", "cat; echo oops >&2; exit 3"]),
            Some(b"hi\n"),
            Duration::from_secs(30),
        )
        .unwrap() else {
            panic!("timed out")
        };
        assert_eq!(out.stdout, b"hi\n");
        assert_eq!(out.stderr, b"oops\n");
        assert_eq!(out.status.code(), Some(3));
    }
}
