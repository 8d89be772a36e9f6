//! `cargo-containerize`: argv → [`cli::Cli`] → [`commands::exec`] → one report path →
//! exit code. Errors are rendered as cargo renders them (`error:`, then `help:`/`note:`
//! lines, coloured by `--color`, `CARGO_TERM_COLOR` and `NO_COLOR`); a closed stdout pipe
//! exits quietly.

use std::process::ExitCode;

use cargo_containerize::cli;
use cargo_containerize::commands::{self, Outcome};
use cargo_containerize::config::Env;
use cargo_containerize::events::{Event, Finished};
use cargo_containerize::exit;
use cargo_containerize::output::{ColorChoice, MessageFormat, Shell, Verbosity};

fn main() -> ExitCode {
    cargo_containerize::interrupt::install();
    let env = Env::from_process();
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let choice = env.color_choice(cli::color_flag(&argv).as_deref());
    let color = env.color_enabled(choice, Shell::stderr_is_terminal());
    // clap's own `auto` looks at the stream it writes (stdout for --help) and NO_COLOR.
    let clap_color = match choice {
        ColorChoice::Auto => clap::ColorChoice::Auto,
        ColorChoice::Always => clap::ColorChoice::Always,
        ColorChoice::Never => clap::ColorChoice::Never,
    };
    let cli = match cli::parse_colored(argv, clap_color) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { exit::CONFIG } else { 0 };
            let _ = e.print();
            return ExitCode::from(code as u8);
        }
    };
    let mut shell = Shell::stdio(Verbosity::Normal, color);
    match commands::exec(cli, &env, &mut shell) {
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
    shell.report(&e);
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
