//! `audit` and `--audit`: the advisory database against each platform's linked crates,
//! the findings and the vulnerabilities documents, and the verdict.

use std::time::Instant;

use super::{Outcome, finished, graph_statuses, lock_out_dir};
use crate::audit;
use crate::error::Error;
use crate::events::{Event, FileEvent};
use crate::output::{Shell, count};
use crate::plan::Plan;
use crate::sbom;

/// `audit`: the platforms' crate graphs (no build) against the advisory database, fetched
/// meanwhile; the report, the vulnerabilities documents, then the verdict.
pub(super) fn audit_only(
    plan: &Plan,
    started: Instant,
    shell: &mut Shell,
) -> Result<Outcome, Error> {
    let _lock = lock_out_dir(plan, shell)?;
    let Some(settings) = &plan.audit else {
        unreachable!("the audit command always audits")
    };
    announce_fetch(plan, shell);
    let (graphs, database) = std::thread::scope(|s| {
        let database = s.spawn(|| audit::db::open(settings));
        let graphs = sbom::resolve_graphs(plan);
        (graphs, crate::join(database))
    });
    let graphs = graphs?;
    graph_statuses(shell, &graphs);
    let written = gate(plan, &graphs, &database?, shell)?;
    finished(
        shell,
        started,
        format!(
            "audit: {}",
            count(
                written.len(),
                "vulnerabilities document",
                "vulnerabilities documents"
            )
        ),
    );
    Ok(Outcome::Audited(written))
}

/// Says that the advisory database is about to be cloned (the first `--audit` of a
/// machine), which takes a while.
pub(super) fn announce_fetch(plan: &Plan, shell: &mut Shell) {
    if let Some(settings) = &plan.audit
        && !settings.offline
        && !settings.db.exists()
    {
        shell.status(
            "Fetching",
            format!("advisory database from {}", settings.db_url),
        );
    }
}

/// Audits the plan's images, prints the findings (events with `--message-format json`),
/// writes the vulnerabilities documents and fails when a finding fails the run.
pub(super) fn gate(
    plan: &Plan,
    graphs: &sbom::Graphs,
    database: &audit::db::Database,
    shell: &mut Shell,
) -> Result<Vec<audit::Written>, Error> {
    let info = &database.info;
    let at = match (&info.commit, &info.date) {
        (Some(c), Some(d)) => format!(", commit {} of {d}", &c[..c.len().min(7)]),
        _ => String::new(),
    };
    shell.status(
        "Auditing",
        format!(
            "{} against {} ({}{at}, {})",
            count(plan.images.len(), "image", "images"),
            count(info.advisories, "advisory", "advisories"),
            info.path.display(),
            info.fetched.as_str()
        ),
    );
    let yanked = audit::yanked::Yanked::new(plan.cargo.cargo_home.as_deref());
    let report = audit::audit(plan, graphs, database, &yanked);
    for finding in &report.findings {
        shell.emit(&Event::AuditFinding(audit::event(finding)));
    }
    let groups = audit::group(&report);
    for group in &groups {
        let (level, text) = audit::describe(group);
        shell.message(level, text);
    }
    let written = audit::write_documents(plan, graphs, &report)?;
    for w in &written {
        shell.verbose("Writing", w.path.display());
        shell.emit(&Event::VulnerabilitiesWritten(FileEvent {
            name: Some(w.image.clone()),
            platform: Some(w.platform.to_string()),
            path: w.path.display().to_string(),
        }));
    }
    shell.status("Audited", audit::summary(&groups));
    audit::verdict(&groups)?;
    Ok(written)
}
