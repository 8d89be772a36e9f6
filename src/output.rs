//! The one place that prints: cargo-style status lines on stderr, machine output on stdout.
//!
//! Stages get a `&mut Shell` and report through it; tests build a `Shell` over buffers.

use std::io::{self, IsTerminal, Write};

use anstyle::{AnsiColor, Style};

/// How much to print on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// `-q`: errors only.
    Quiet,
    /// Status lines.
    Normal,
    /// `-v`: also the commands that are run.
    Verbose,
}

/// What stdout carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MessageFormat {
    /// One image reference per line.
    #[default]
    Human,
    /// One JSON event per line (see `events`).
    Json,
}

/// Status on stderr, results on stdout.
pub struct Shell {
    out: Box<dyn Write>,
    err: Box<dyn Write>,
    verbosity: Verbosity,
    color: bool,
    format: MessageFormat,
}

const GREEN: Style = AnsiColor::Green.on_default().bold();
const YELLOW: Style = AnsiColor::Yellow.on_default().bold();
const RED: Style = AnsiColor::Red.on_default().bold();
const CYAN: Style = AnsiColor::Cyan.on_default().bold();

impl Shell {
    /// A shell on the process's stdout/stderr; colors when stderr is a terminal.
    pub fn stdio(verbosity: Verbosity) -> Self {
        let color = io::stderr().is_terminal();
        Shell {
            out: Box::new(io::stdout()),
            err: Box::new(io::stderr()),
            verbosity,
            color,
            format: MessageFormat::Human,
        }
    }

    /// A shell over arbitrary writers (tests), without colors.
    pub fn from_write(out: Box<dyn Write>, err: Box<dyn Write>, verbosity: Verbosity) -> Self {
        Shell {
            out,
            err,
            verbosity,
            color: false,
            format: MessageFormat::Human,
        }
    }

    /// Sets what stdout carries.
    pub fn with_format(mut self, format: MessageFormat) -> Self {
        self.format = format;
        self
    }

    /// What stdout carries.
    pub fn format(&self) -> MessageFormat {
        self.format
    }

    /// Writes one event as a JSON line on stdout (`--message-format json` only). Keys are
    /// sorted, so the stream is stable.
    pub fn event(&mut self, event: &crate::events::Event) -> io::Result<()> {
        if self.format != MessageFormat::Json {
            return Ok(());
        }
        let blob = crate::image::canonical::to_canonical_json(event).map_err(io::Error::other)?;
        self.out.write_all(&blob.bytes)?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }

    /// The verbosity this shell prints at.
    pub fn verbosity(&self) -> Verbosity {
        self.verbosity
    }

    fn print_status(&mut self, style: Style, verb: &str, msg: &dyn std::fmt::Display) {
        let line = if self.color {
            format!("{style}{verb:>12}{style:#} {msg}\n")
        } else {
            format!("{verb:>12} {msg}\n")
        };
        // Status output is best effort: a closed stderr must not fail the build.
        let _ = self.err.write_all(line.as_bytes());
    }

    /// `   Packaging hello (linux/amd64)`: right-aligned verb, green on a terminal.
    pub fn status(&mut self, verb: &str, msg: impl std::fmt::Display) {
        if self.verbosity >= Verbosity::Normal {
            self.print_status(GREEN, verb, &msg);
        }
    }

    /// A status line shown only with `-v`.
    pub fn verbose(&mut self, verb: &str, msg: impl std::fmt::Display) {
        if self.verbosity >= Verbosity::Verbose {
            self.print_status(CYAN, verb, &msg);
        }
    }

    /// `warning: ...` on stderr (shown unless `-q`).
    pub fn warn(&mut self, msg: impl std::fmt::Display) {
        if self.verbosity >= Verbosity::Normal {
            let label = if self.color {
                format!("{YELLOW}warning{YELLOW:#}")
            } else {
                "warning".to_string()
            };
            let _ = writeln!(self.err, "{label}: {msg}");
        }
    }

    /// An error report, always shown.
    pub fn error(&mut self, msg: impl std::fmt::Display) {
        let label = if self.color {
            format!("{RED}error{RED:#}")
        } else {
            "error".to_string()
        };
        let _ = writeln!(self.err, "{label}: {msg}");
    }

    /// Raw text on stderr (rendered diagnostics).
    pub fn err_raw(&mut self, text: &str) {
        let _ = self.err.write_all(text.as_bytes());
    }

    /// One line of machine output on stdout. A closed pipe is reported to the caller,
    /// which exits quietly.
    pub fn out_line(&mut self, line: &str) -> io::Result<()> {
        writeln!(self.out, "{line}")?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn status_is_right_aligned_on_stderr_and_refs_on_stdout() {
        let (out, err) = (Buf::default(), Buf::default());
        let mut shell = Shell::from_write(
            Box::new(out.clone()),
            Box::new(err.clone()),
            Verbosity::Normal,
        );
        shell.status("Packaging", "hello (linux/amd64)");
        shell.verbose("Running", "hidden");
        shell.out_line("hello:latest@sha256:00").unwrap();
        let err = String::from_utf8(err.0.lock().unwrap().clone()).unwrap();
        assert_eq!(err, "   Packaging hello (linux/amd64)\n");
        assert_eq!(&*out.0.lock().unwrap(), b"hello:latest@sha256:00\n");
    }
}
