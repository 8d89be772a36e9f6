//! Ctrl-C: the first one asks the run to stop at the next safe point (between stages,
//! never between writing blobs and `index.json`), and the process exits with 130; a
//! second one exits at once. Either way the layout is the previous or the new one.

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// The run was interrupted.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("interrupted")]
#[diagnostic(
    code(containerize::interrupted),
    help(
        "nothing was left half-written: the OCI layout is the one from before this run; run the command again to finish"
    )
)]
pub struct Interrupted;

/// Installs the SIGINT/SIGTERM handler (once, from `main`).
pub fn install() {
    let _ = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    });
}

/// Records an interrupt seen another way (a child killed by SIGINT before our handler
/// thread ran).
pub fn mark() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Whether Ctrl-C was pressed.
pub fn requested() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// A safe point: stops the run if Ctrl-C was pressed.
pub fn check() -> Result<(), Interrupted> {
    if requested() {
        Err(Interrupted)
    } else {
        Ok(())
    }
}
