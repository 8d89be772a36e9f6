//! The one place that prints: cargo-style status lines on stderr, machine output on stdout.
//!
//! Stages get a `&mut Shell` and report through it; tests build a `Shell` over buffers.

use std::io::{self, IsTerminal, Read, Write};
use std::sync::{Arc, Mutex};

use anstyle::{AnsiColor, Style};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

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

/// `--color`: when stderr gets colours, by cargo's rules (`term.color`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set or `TERM=dumb`.
    #[default]
    Auto,
    /// Always (`--color always`, `CARGO_TERM_COLOR=always`).
    Always,
    /// Never.
    Never,
}

impl ColorChoice {
    /// `auto`, `always` or `never`, as cargo spells them.
    pub fn parse(s: &str) -> Option<ColorChoice> {
        match s {
            "auto" => Some(ColorChoice::Auto),
            "always" => Some(ColorChoice::Always),
            "never" => Some(ColorChoice::Never),
            _ => None,
        }
    }

    /// Whether a stream gets colours. `auto` follows the terminal, and says no when
    /// `NO_COLOR` is set to anything (<https://no-color.org>) or the terminal is dumb, as
    /// cargo's `anstream` does.
    pub fn enabled(self, is_terminal: bool, no_color: bool, dumb_terminal: bool) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => is_terminal && !no_color && !dumb_terminal,
        }
    }
}

type SharedWrite = Arc<Mutex<Box<dyn Write + Send>>>;

/// Prints status lines on the shell's stderr from any thread ([`Shell::reporter`]).
#[derive(Clone)]
pub struct Reporter {
    err: SharedWrite,
    verbosity: Verbosity,
    color: bool,
    bars: Option<MultiProgress>,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter")
            .field("verbosity", &self.verbosity)
            .finish_non_exhaustive()
    }
}

impl Reporter {
    /// A reporter that prints nothing.
    pub fn silent() -> Reporter {
        Reporter {
            err: Arc::new(Mutex::new(Box::new(io::sink()))),
            verbosity: Verbosity::Quiet,
            color: false,
            bars: None,
        }
    }

    /// A status line shown only with `-v`.
    pub fn verbose(&self, verb: &str, msg: impl std::fmt::Display) {
        if self.verbosity >= Verbosity::Verbose {
            self.print_status(CYAN, verb, &msg);
        }
    }

    fn print_status(&self, style: Style, verb: &str, msg: &dyn std::fmt::Display) {
        let line = if self.color {
            format!("{style}{verb:>12}{style:#} {msg}\n")
        } else {
            format!("{verb:>12} {msg}\n")
        };
        // Status output is best effort: a closed stderr must not fail the build.
        let Ok(mut err) = self.err.lock() else {
            return;
        };
        match &self.bars {
            Some(bars) => bars.suspend(|| {
                let _ = err.write_all(line.as_bytes());
            }),
            None => {
                let _ = err.write_all(line.as_bytes());
            }
        }
    }
}

impl Default for Reporter {
    fn default() -> Self {
        Reporter::silent()
    }
}

/// Status on stderr, results on stdout.
pub struct Shell {
    out: Box<dyn Write>,
    err: SharedWrite,
    verbosity: Verbosity,
    color: bool,
    format: MessageFormat,
    /// Progress bars, when stderr is a terminal and not `-q`; status lines are printed
    /// through it so they never tear a bar.
    bars: Option<MultiProgress>,
}

const GREEN: Style = AnsiColor::Green.on_default().bold();
const YELLOW: Style = AnsiColor::Yellow.on_default().bold();
const RED: Style = AnsiColor::Red.on_default().bold();
const CYAN: Style = AnsiColor::Cyan.on_default().bold();
const BLUE: Style = AnsiColor::Blue.on_default().bold();

impl Shell {
    /// Whether the process's stderr is a terminal (for [`ColorChoice::enabled`]).
    pub fn stderr_is_terminal() -> bool {
        io::stderr().is_terminal()
    }

    /// A shell on the process's stdout/stderr, coloured when `color` says so.
    pub fn stdio(verbosity: Verbosity, color: bool) -> Self {
        // Bars only for a person watching: not in CI or pipes (no terminal), not with -q.
        let bars = (io::stderr().is_terminal() && verbosity >= Verbosity::Normal)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Shell {
            out: Box::new(io::stdout()),
            err: Arc::new(Mutex::new(Box::new(io::stderr()))),
            verbosity,
            color,
            format: MessageFormat::Human,
            bars,
        }
    }

    /// A shell over arbitrary writers (tests), without colors.
    pub fn from_write(
        out: Box<dyn Write>,
        err: Box<dyn Write + Send>,
        verbosity: Verbosity,
    ) -> Self {
        Shell {
            out,
            err: Arc::new(Mutex::new(err)),
            verbosity,
            color: false,
            format: MessageFormat::Human,
            bars: None,
        }
    }

    /// Colours status lines, warnings and errors (tests of the colouring).
    pub fn with_color(mut self, color: bool) -> Self {
        self.color = color;
        self
    }

    /// Sets what stdout carries.
    pub fn with_format(mut self, format: MessageFormat) -> Self {
        self.format = format;
        self
    }

    /// Changes what stdout carries (once the command line is resolved).
    pub fn set_format(&mut self, format: MessageFormat) {
        self.format = format;
    }

    /// Changes how much is printed on stderr (once the command line is resolved).
    pub fn set_verbosity(&mut self, verbosity: Verbosity) {
        self.verbosity = verbosity;
        if verbosity < Verbosity::Normal {
            self.bars = None;
        }
    }

    /// What stdout carries.
    pub fn format(&self) -> MessageFormat {
        self.format
    }

    /// Writes one event as a JSON line on stdout (`--message-format json` only). Keys are
    /// sorted, so the stream is stable.
    pub fn event<E: serde::Serialize>(&mut self, event: &E) -> io::Result<()> {
        if self.format != MessageFormat::Json {
            return Ok(());
        }
        let blob = crate::canonical::to_canonical_json(event).map_err(io::Error::other)?;
        self.out.write_all(&blob.bytes)?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }

    /// [`Shell::event`], for events whose loss must not stop the run (a closed stdout).
    pub fn emit<E: serde::Serialize>(&mut self, event: &E) {
        let _ = self.event(event);
    }

    /// The verbosity this shell prints at.
    pub fn verbosity(&self) -> Verbosity {
        self.verbosity
    }

    fn print_status(&mut self, style: Style, verb: &str, msg: &dyn std::fmt::Display) {
        self.reporter().print_status(style, verb, msg);
    }

    fn write_err(&self, bytes: &[u8]) {
        if let Ok(mut err) = self.err.lock() {
            let _ = err.write_all(bytes);
        }
    }

    /// A handle that prints status lines from other threads (a retry waiting inside an
    /// upload), at this shell's verbosity and colors.
    pub fn reporter(&self) -> Reporter {
        Reporter {
            err: self.err.clone(),
            verbosity: self.verbosity,
            color: self.color,
            bars: self.bars.clone(),
        }
    }

    /// A progress bar of `total` bytes under the status word `verb` (`Compressing`,
    /// `Uploading`), e.g. `Uploading [=====>    ] 12.0 MiB/40.0 MiB ghcr.io/acme/api`.
    /// A no-op [`Progress`] when stderr is not a terminal or with `-q`. The bar can be
    /// cloned into worker threads; it is removed by [`Progress::finish`].
    pub fn progress(&mut self, verb: &str, total: u64, label: impl Into<String>) -> Progress {
        let Some(bars) = &self.bars else {
            return Progress::hidden();
        };
        let template = if self.color {
            "{prefix:>12.green.bold} [{bar:30}] {bytes}/{total_bytes} {wide_msg}"
        } else {
            "{prefix:>12} [{bar:30}] {bytes}/{total_bytes} {wide_msg}"
        };
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let bar = bars.add(ProgressBar::new(total).with_style(style));
        bar.set_prefix(verb.to_string());
        bar.set_message(label.into());
        Progress(Some(bar))
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

    /// `warning: ...` on stderr (shown unless `-q`). Lines of `msg` after the first that
    /// start with `help: ` or `note: ` are rendered as cargo renders them.
    pub fn warn(&mut self, msg: impl std::fmt::Display) {
        if self.verbosity >= Verbosity::Normal {
            let text = render_message(Level::Warning, &msg.to_string(), self.color);
            self.write_err(text.as_bytes());
        }
    }

    /// `note: ...` on stderr (shown unless `-q`), rendered like [`Shell::warn`].
    pub fn note(&mut self, msg: impl std::fmt::Display) {
        if self.verbosity >= Verbosity::Normal {
            let text = render_message(Level::Note, &msg.to_string(), self.color);
            self.write_err(text.as_bytes());
        }
    }

    /// A message at `level`, as [`Shell::error`], [`Shell::warn`] or [`Shell::note`].
    pub fn message(&mut self, level: Level, msg: impl std::fmt::Display) {
        match level {
            Level::Error => self.error(msg),
            Level::Warning => self.warn(msg),
            Level::Note => self.note(msg),
        }
    }

    /// An error report, always shown.
    pub fn error(&mut self, msg: impl std::fmt::Display) {
        let text = render_message(Level::Error, &msg.to_string(), self.color);
        self.write_err(text.as_bytes());
    }

    /// An error with its cause chain and help, as cargo prints one: `error: …`, indented
    /// `help:`/`note:` lines, then `Caused by:` for causes the message does not already
    /// hold. Always shown.
    pub fn report(&mut self, error: &dyn miette::Diagnostic) {
        let text = render_diagnostic(error, self.color);
        self.write_err(text.as_bytes());
    }

    /// One line of machine output on stdout. A closed pipe is reported to the caller,
    /// which exits quietly.
    pub fn out_line(&mut self, line: &str) -> io::Result<()> {
        writeln!(self.out, "{line}")?;
        self.out.flush()
    }
}

/// The label of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `error:`, always shown.
    Error,
    /// `warning:`, shown unless `-q`.
    Warning,
    /// `note:`, shown unless `-q`.
    Note,
}

fn paint(style: Style, text: &str, color: bool) -> String {
    if color {
        format!("{style}{text}{style:#}")
    } else {
        text.to_string()
    }
}

/// `error: first line` (or `warning:`), the further lines of the message as they are, and
/// its `help: …`, `note: …` and `--> file:line:col` lines indented under it, coloured as
/// cargo colours them (error red, warning yellow, help cyan, note green, location blue).
/// Lines that would say nothing (`help:` with no text) are dropped.
fn render_message(level: Level, message: &str, color: bool) -> String {
    let (label, style) = match level {
        Level::Error => ("error", RED),
        Level::Warning => ("warning", YELLOW),
        Level::Note => ("note", GREEN),
    };
    let mut lines = message.trim_end().lines();
    let first = lines.next().unwrap_or_default();
    let mut out = format!("{}: {first}\n", paint(style, label, color));
    for line in lines {
        out.push_str(&render_child_line(line, color));
    }
    out
}

/// One line under an `error:`: `help:`/`note:`/`-->` lines get their label coloured and
/// one indent; anything else (a child's stderr, a list) is indented as it is.
fn render_child_line(line: &str, color: bool) -> String {
    let trimmed = line.trim_start();
    for (label, style) in [("help:", CYAN), ("note:", GREEN), ("-->", BLUE)] {
        if let Some(rest) = trimmed.strip_prefix(label) {
            let rest = rest.trim();
            if rest.is_empty() {
                return String::new();
            }
            return format!("  {} {rest}\n", paint(style, label, color));
        }
    }
    if line.trim().is_empty() {
        return "\n".to_string();
    }
    format!("  {line}\n")
}

/// An error and its help lines (each line of the help text is a `help:` line unless it
/// starts with `note:` or `-->`), then the causes not already in the message.
fn render_diagnostic(error: &dyn miette::Diagnostic, color: bool) -> String {
    let message = error.to_string();
    let mut out = render_message(Level::Error, &message, color);
    let mut help_lines = Vec::new();
    if let Some(help) = error.help() {
        help_lines.extend(help.to_string().lines().map(str::to_string));
    }
    for related in error.related().into_iter().flatten() {
        help_lines.push(format!("note: {related}"));
    }
    for line in help_lines {
        let trimmed = line.trim_start();
        let labelled = ["help:", "note:", "-->"]
            .iter()
            .any(|l| trimmed.starts_with(l));
        if labelled {
            out.push_str(&render_child_line(&line, color));
        } else if line.starts_with(char::is_whitespace) {
            // The continuation of a help line (a list under it).
            out.push_str(&render_child_line(&line, color));
        } else if !trimmed.is_empty() {
            out.push_str(&render_child_line(&format!("help: {trimmed}"), color));
        }
    }
    let mut seen = message;
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !text.trim().is_empty() && !seen.contains(text.trim()) {
            seen.push_str(&text);
            causes.push(text);
        }
        source = cause.source();
    }
    if !causes.is_empty() {
        out.push_str("\nCaused by:\n");
        for cause in causes {
            for line in cause.trim_end().lines() {
                out.push_str(&format!("  {line}\n"));
            }
        }
    }
    out
}

/// A byte progress bar from [`Shell::progress`], or nothing. Cheap to clone and safe to
/// share between threads (indicatif synchronizes the bar itself).
#[derive(Clone, Default)]
pub struct Progress(Option<ProgressBar>);

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Progress"
        } else {
            "Progress(hidden)"
        })
    }
}

impl Progress {
    /// A progress that shows nothing.
    pub fn hidden() -> Self {
        Progress(None)
    }

    /// `n` more bytes done.
    pub fn inc(&self, n: u64) {
        if let Some(bar) = &self.0 {
            bar.inc(n);
        }
    }

    /// Sets the total, when it is known only later.
    pub fn set_total(&self, total: u64) {
        if let Some(bar) = &self.0 {
            bar.set_length(total);
        }
    }

    /// Bytes done so far (0 when hidden).
    pub fn position(&self) -> u64 {
        self.0.as_ref().map_or(0, ProgressBar::position)
    }

    /// Removes the bar (the status line that follows says what was done).
    pub fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }

    /// `inner`, counting the bytes written through it.
    pub fn writer<W: Write>(&self, inner: W) -> ProgressWriter<W> {
        ProgressWriter {
            inner,
            progress: self.clone(),
        }
    }

    /// `inner`, counting the bytes read through it.
    pub fn reader<R: Read>(&self, inner: R) -> ProgressReader<R> {
        ProgressReader {
            inner,
            progress: self.clone(),
        }
    }
}

/// A writer that advances a [`Progress`].
pub struct ProgressWriter<W> {
    inner: W,
    progress: Progress,
}

impl<W> ProgressWriter<W> {
    /// The wrapped writer.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for ProgressWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.progress.inc(n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that advances a [`Progress`].
pub struct ProgressReader<R> {
    inner: R,
    progress: Progress,
}

impl<R: Read> Read for ProgressReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.inc(n as u64);
        Ok(n)
    }
}

/// `1 SBOM`, `2 SBOMs`: a count with the noun that agrees with it.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `1.2 MiB`, `340 KiB`, `512 B`.
pub fn human_size(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / 1024.0 / 1024.0)
    } else if b >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{bytes} B")
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

    #[derive(Debug, thiserror::Error, miette::Diagnostic)]
    #[error("failed to read `{path}`")]
    #[diagnostic(help(
        "check the path\nnote: it is relative to the workspace\n--> Cargo.toml:3:1"
    ))]
    struct ReadError {
        path: String,
        #[source]
        source: io::Error,
    }

    fn report(color: bool) -> String {
        let err = Buf::default();
        let mut shell = Shell::from_write(
            Box::new(io::sink()),
            Box::new(err.clone()),
            Verbosity::Quiet,
        )
        .with_color(color);
        shell.report(&ReadError {
            path: "a.txt".into(),
            source: io::Error::new(io::ErrorKind::NotFound, "no such file"),
        });
        String::from_utf8(err.0.lock().unwrap().clone()).unwrap()
    }

    /// Issue 17: errors look like cargo's, not miette's boxes.
    #[test]
    fn r17_errors_render_like_cargo() {
        assert_eq!(
            report(false),
            "error: failed to read `a.txt`\n  help: check the path\n  note: it is relative to the workspace\n  --> Cargo.toml:3:1\n\nCaused by:\n  no such file\n"
        );
        let colored = report(true);
        assert!(
            colored.starts_with("\u{1b}[1m\u{1b}[31merror\u{1b}[0m: failed"),
            "{colored:?}"
        );
        assert!(
            colored.contains("\u{1b}[36mhelp:\u{1b}[0m check"),
            "{colored:?}"
        );
    }

    #[test]
    fn color_choice_follows_cargo() {
        assert!(ColorChoice::Always.enabled(false, true, true));
        assert!(!ColorChoice::Never.enabled(true, false, false));
        assert!(ColorChoice::Auto.enabled(true, false, false));
        assert!(!ColorChoice::Auto.enabled(false, false, false));
        assert!(!ColorChoice::Auto.enabled(true, true, false), "NO_COLOR");
        assert!(!ColorChoice::Auto.enabled(true, false, true), "TERM=dumb");
    }

    #[test]
    fn warnings_and_empty_help_lines() {
        let err = Buf::default();
        let mut shell = Shell::from_write(
            Box::new(io::sink()),
            Box::new(err.clone()),
            Verbosity::Normal,
        );
        shell.warn("unused table\nhelp: rename it\nhelp:");
        let err = String::from_utf8(err.0.lock().unwrap().clone()).unwrap();
        assert_eq!(err, "warning: unused table\n  help: rename it\n");
    }

    #[test]
    fn no_progress_bars_without_a_terminal() {
        let err = Buf::default();
        let mut shell = Shell::from_write(
            Box::new(io::sink()),
            Box::new(err.clone()),
            Verbosity::Normal,
        );
        let progress = shell.progress("Uploading", 1000, "ghcr.io/acme/api");
        let mut w = progress.writer(Vec::new());
        w.write_all(&[0; 300]).unwrap();
        progress.finish();
        assert_eq!(w.into_inner().len(), 300);
        assert_eq!(progress.position(), 0);
        shell.status("Pushed", "ghcr.io/acme/api");
        let err = String::from_utf8(err.0.lock().unwrap().clone()).unwrap();
        assert_eq!(err, "      Pushed ghcr.io/acme/api\n");
    }

    #[test]
    fn progress_counts_bytes_from_every_thread() {
        let progress = Progress(Some(ProgressBar::hidden()));
        progress.set_total(4 * 1000);
        std::thread::scope(|s| {
            for _ in 0..4 {
                let p = progress.clone();
                s.spawn(move || {
                    let mut r = p.reader(&[7u8; 1000][..]);
                    let mut sink = Vec::new();
                    r.read_to_end(&mut sink).unwrap();
                    assert_eq!(sink.len(), 1000);
                });
            }
        });
        assert_eq!(progress.position(), 4000);
    }
}
