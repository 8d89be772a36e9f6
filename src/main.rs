//! `cargo-containerize`: argv → [`cli::Cli`] → [`commands::exec`] → one report path →
//! exit code. Errors are rendered with their help text; a closed stdout pipe exits quietly.

use std::process::ExitCode;

use cargo_containerize::cli;
use cargo_containerize::commands::{self, Outcome};
use cargo_containerize::config::Env;
use cargo_containerize::events::{Event, Finished};
use cargo_containerize::exit;
use cargo_containerize::output::{MessageFormat, Shell, Verbosity};

fn main() -> ExitCode {
    cargo_containerize::interrupt::install();
    // Long lines (paths, command lines) stay whole so they can be copied and grepped.
    let _ = miette::set_hook(Box::new(|_| {
        Box::new(miette::MietteHandlerOpts::new().wrap_lines(false).build())
    }));
    let cli = match cli::parse_from(std::env::args_os()) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { exit::CONFIG } else { 0 };
            let _ = e.print();
            return ExitCode::from(code as u8);
        }
    };
    let mut shell = Shell::stdio(Verbosity::Normal);
    match commands::exec(cli, &Env::from_process(), &mut shell) {
        Ok(outcome) => succeeded(&mut shell, outcome),
        Err(e) => failed(&mut shell, e),
    }
}

/// Success: the `finished` event, or (for humans) the outcome's lines on stdout.
fn succeeded(shell: &mut Shell, outcome: Outcome) -> ExitCode {
    finish(shell, 0, outcome.images, None);
    if shell.format() == MessageFormat::Human {
        for line in &outcome.lines {
            if shell.out_line(line).is_err() {
                // stdout closed (e.g. `| head`): nothing left to say.
                break;
            }
        }
    }
    ExitCode::SUCCESS
}

/// Failure: the `finished` event with the error, and the report on stderr.
fn failed(shell: &mut Shell, e: commands::Error) -> ExitCode {
    let code = e.exit_code();
    finish(shell, code, 0, Some(e.to_string()));
    shell.err_raw(&format!("{:?}\n", miette::Report::new(e)));
    ExitCode::from(code as u8)
}

/// The `finished` event (JSON mode only).
fn finish(shell: &mut Shell, exit_code: i32, images: usize, error: Option<String>) {
    shell.emit(&Event::Finished(Finished {
        success: exit_code == 0,
        exit_code,
        images,
        error,
    }));
}
