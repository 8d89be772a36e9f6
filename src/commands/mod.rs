//! Subcommands (`login`, `resolve`, ...): each file holds its clap args and an `exec()`
//! that calls into the stage modules, as cargo's `src/bin/cargo/commands/*.rs` do.

pub mod init;
pub mod login;
pub mod plan;
pub mod resolve;
