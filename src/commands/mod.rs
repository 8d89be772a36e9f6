//! Subcommands: each file has an `exec(args, &Env, &mut Shell) -> Result<Outcome, Error>`
//! that resolves its settings, picks a [`Mode`](crate::pipeline::Mode) or calls a stage,
//! and says what to print; no stage logic. Their clap args live in [`crate::cli`], as
//! cargo's `src/bin/cargo/commands/*.rs` call into `src/cargo/ops/`.

pub mod audit;
pub mod build;
pub mod doctor;
pub mod init;
pub mod login;
pub mod merge;
pub mod plan;
pub mod resolve;
pub mod run;
pub mod sbom;
pub mod verify;

use crate::cli::{Cli, Command};
use crate::config::Env;
use crate::output::Shell;

/// What a command leaves for `main` to report.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Images produced (the `finished` event's count).
    pub images: usize,
    /// The lines for stdout in human mode (references, paths).
    pub lines: Vec<String>,
}

/// The error of any command, with its exit code.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum Error {
    /// A run of the pipeline (or of one of its stages).
    #[error(transparent)]
    #[diagnostic(transparent)]
    Run(#[from] crate::error::Error),
    /// `init`.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Init(#[from] init::InitError),
    /// `login`.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Login(#[from] login::LoginError),
    /// The container of `run` exited with an error.
    #[error("`{command}` exited with status {code}")]
    Exited {
        /// The command.
        command: String,
        /// Its exit code, passed on.
        code: i32,
    },
    /// A usage error found before anything ran.
    #[error("{message}")]
    #[diagnostic(help("{help}"))]
    Usage {
        /// What is wrong.
        message: String,
        /// What to run instead.
        help: String,
    },
}

impl Error {
    /// The process exit code.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Run(e) => e.exit_code(),
            Error::Init(e) => e.exit_code(),
            Error::Login(e) => e.exit_code(),
            Error::Usage { .. } => crate::exit::CONFIG,
            Error::Exited { code, .. } => *code,
        }
    }
}

impl From<crate::config::ConfigError> for Error {
    fn from(e: crate::config::ConfigError) -> Self {
        Error::Run(e.into())
    }
}

/// The settings of a command that builds, with `shell` printing as they ask: events on
/// stdout with `--message-format json` (set first, so a config error still ends with the
/// `finished` event), and the verbosity of `-q`/`-v`.
fn build_settings(
    args: crate::cli::BuildArgs,
    env: &Env,
    shell: &mut Shell,
) -> Result<crate::config::Settings, Error> {
    shell.set_format(args.message_format.into());
    let settings = crate::config::resolve(args, env)?;
    shell.set_verbosity(settings.verbosity);
    Ok(settings)
}

/// Runs the command `cli` names (the build without a subcommand).
pub fn exec(cli: Cli, env: &Env, shell: &mut Shell) -> Result<Outcome, Error> {
    match cli.command {
        None => build::exec(cli.build, env, shell),
        Some(Command::Plan(args)) => plan::exec(*args, env, shell),
        Some(Command::Sbom(args)) => sbom::exec(*args, env, shell),
        Some(Command::Audit(args)) => audit::exec(*args, env, shell),
        Some(Command::Merge(args)) => merge::exec(*args, env, shell),
        Some(Command::Verify(args)) => verify::exec(*args, env, shell),
        Some(Command::Doctor(args)) => doctor::exec(*args, env, shell),
        Some(Command::Resolve(args)) => resolve::exec(*args, env, shell),
        Some(Command::Run(args)) => run::exec(*args, env, shell),
        Some(Command::Login(args)) => login::exec(args, env, shell),
        Some(Command::Init(args)) => init::exec(args, env, shell),
    }
}
