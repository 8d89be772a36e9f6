//! `cargo-containerize`: argv → Args → Settings → pipeline → exit code. Errors are
//! rendered with their help text; a closed stdout pipe exits quietly.

use std::process::ExitCode;

use cargo_containerize::cli::Command;
use cargo_containerize::config::{self, Env};
use cargo_containerize::error::{EXIT_CONFIG, EXIT_REGISTRY, Error};
use cargo_containerize::events::{Event, Finished};
use cargo_containerize::output::{MessageFormat, Shell, Verbosity};
use cargo_containerize::{cli, commands, pipeline};

fn main() -> ExitCode {
    cargo_containerize::interrupt::install();
    // Long lines (paths, command lines) stay whole so they can be copied and grepped.
    let _ = miette::set_hook(Box::new(|_| {
        Box::new(miette::MietteHandlerOpts::new().wrap_lines(false).build())
    }));
    let cli = match cli::parse_from(std::env::args_os()) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_CONFIG } else { 0 };
            let _ = e.print();
            return ExitCode::from(code as u8);
        }
    };
    // Subcommands dispatch to src/commands/*.rs.
    let build = match cli.command {
        None => cli.build,
        // `plan` is `--dry-run`; so is `resolve --dry-run` (nothing to resolve without a build).
        Some(Command::Plan(args)) => cli::BuildArgs {
            dry_run: true,
            ..*args
        },
        Some(Command::Resolve(args)) if args.build.dry_run => args.build,
        Some(Command::Sbom(args)) if args.push => {
            let e = miette::miette!(
                help = "`cargo containerize --push` pushes the images with their SBOMs attached",
                "`cargo containerize sbom` writes SBOM files only; it pushes nothing"
            );
            return report(e, EXIT_CONFIG);
        }
        Some(Command::Sbom(args)) => cli::BuildArgs {
            sbom_only: true,
            ..*args
        },
        Some(Command::Init(args)) => {
            let mut shell = Shell::stdio(Verbosity::Normal);
            return match commands::init::exec(args, &mut shell) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    let code = e.exit_code();
                    report(miette::Report::new(e), code)
                }
            };
        }
        Some(Command::Resolve(args)) => {
            return match commands::resolve::exec(*args, &Env::from_process()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    let code = e.exit_code();
                    report(miette::Report::new(e), code)
                }
            };
        }
        Some(Command::Login(args)) => {
            let mut shell = Shell::stdio(Verbosity::Normal);
            return match commands::login::exec(args, &Env::from_process(), &mut shell) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    let code = match &e {
                        commands::login::LoginError::Usage(_) => EXIT_CONFIG,
                        commands::login::LoginError::Registry(_) => EXIT_REGISTRY,
                        commands::login::LoginError::Fs(_) => 1,
                    };
                    report(miette::Report::new(e), code)
                }
            };
        }
    };
    let dry_run = build.dry_run;
    let sbom_only = build.sbom_only;
    let format: MessageFormat = build.message_format.into();
    let settings = match config::resolve(build, &Env::from_process()) {
        Ok(s) => s,
        Err(e) => {
            let mut shell = Shell::stdio(Verbosity::Quiet).with_format(format);
            finish(&mut shell, EXIT_CONFIG, 0, Some(e.to_string()));
            return report(miette::Report::new(e), EXIT_CONFIG);
        }
    };
    let mut shell = Shell::stdio(settings.verbosity).with_format(settings.message_format);
    if dry_run {
        return plan_only(&settings, &mut shell);
    }
    if sbom_only {
        return sboms_only(settings, &mut shell);
    }
    match pipeline::run(&settings, &mut shell) {
        Ok(summaries) => succeeded(
            &mut shell,
            summaries.len(),
            summaries.iter().map(|s| s.output_ref().to_string()),
        ),
        Err(e) => failed(&mut shell, e),
    }
}

/// `sbom`: the SBOM paths on stdout (or `sbom-written` events).
fn sboms_only(mut settings: config::Settings, shell: &mut Shell) -> ExitCode {
    settings.sbom = cargo_containerize::sbom::SbomFormat::CycloneDx;
    match pipeline::sboms_only(&settings, shell) {
        Ok(sboms) => {
            let images: std::collections::BTreeSet<&str> =
                sboms.iter().map(|s| s.image.as_str()).collect();
            let paths = sboms.iter().map(|s| s.path.display().to_string());
            succeeded(shell, images.len(), paths)
        }
        Err(e) => failed(shell, e),
    }
}

/// `plan` and `--dry-run`: the plan on stdout (or the `plan` event), nothing built.
fn plan_only(settings: &config::Settings, shell: &mut Shell) -> ExitCode {
    match commands::plan::exec(settings, shell) {
        Ok(plan) => succeeded(shell, plan.images.len(), std::iter::empty()),
        Err(e) => failed(shell, e),
    }
}

/// Success: the `finished` event, or (for humans) `lines` on stdout, one per line.
fn succeeded(shell: &mut Shell, images: usize, lines: impl Iterator<Item = String>) -> ExitCode {
    finish(shell, 0, images, None);
    if shell.format() == MessageFormat::Human {
        for line in lines {
            if shell.out_line(&line).is_err() {
                // stdout closed (e.g. `| head`): nothing left to say.
                break;
            }
        }
    }
    ExitCode::SUCCESS
}

/// Failure: the `finished` event with the error, and the report on stderr.
fn failed(shell: &mut Shell, e: Error) -> ExitCode {
    let code = e.exit_code();
    finish(shell, code, 0, Some(e.to_string()));
    report(miette::Report::new(e), code)
}

/// The `finished` event (JSON mode only).
fn finish(shell: &mut Shell, exit_code: i32, images: usize, error: Option<String>) {
    let event = Event::Finished(Finished {
        success: exit_code == 0,
        exit_code,
        images,
        error,
    });
    pipeline::emit(shell, &event);
}

fn report(report: miette::Report, code: i32) -> ExitCode {
    let mut shell = Shell::stdio(Verbosity::Quiet);
    shell.err_raw(&format!("{report:?}\n"));
    ExitCode::from(code as u8)
}
