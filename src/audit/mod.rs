//! Plan + each platform's crate graph (the SBOM's, `sbom::resolve_graphs`) + the RustSec
//! advisory database → [`Report`]: per image and platform, every advisory that matches a
//! package of the platform's resolve, and whether it counts.
//!
//! Only what the binary links counts: the same `required` set the SBOM lists and the
//! auditable section carries ([`crate::sbom::resolve::CrateGraph::link`]). An advisory
//! for a proc-macro, a build- or dev-dependency, or a crate only another image links is
//! reported as not in the image, which is what auditing from the exact graph buys over
//! `cargo audit` (the whole lockfile) and over image scanners (which see only what is
//! recorded in the binary). Informational advisories (unmaintained, unsound, notice) and
//! yanked versions are warnings unless `--deny` names them.
//!
//! [`db`] finds, fetches and opens the database; [`vex`] writes what was found as a
//! CycloneDX 1.6 document with a `vulnerabilities` section, attached to the image like
//! the SBOM. Printing is the pipeline's, through the shell.

pub mod db;
pub mod vex;
pub mod yanked;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;

use crate::config::audit::{AuditSettings, Deny, Ignored, ImageAudit, Severity};
use crate::fsutil::FsError;
use crate::output::Level;
use crate::plan::Plan;
use crate::platform::Platform;
use crate::sbom::Graphs;
use crate::sbom::resolve::{Crate, CrateGraph};
use crate::sbom::source::CrateSource;

/// Errors of the audit stage.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum AuditError {
    /// No database, and the run may not fetch one.
    #[error("no advisory database at `{}`, and --offline forbids cloning it", path.display())]
    #[diagnostic(
        code(containerize::audit),
        help(
            "run once without --offline to clone it, or clone it yourself: `git clone https://github.com/RustSec/advisory-db.git {}` (or give another clone with --advisory-db / CARGO_CONTAINERIZE_ADVISORY_DB)",
            path.display()
        )
    )]
    NoDatabase {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// Cloning or updating failed.
    #[error("failed to {action} the advisory database at `{}` from {url}: {message}", path.display())]
    #[diagnostic(
        code(containerize::audit),
        help(
            "check the network and the URL (--advisory-db-url); --offline audits with the database as it is"
        )
    )]
    Fetch {
        /// `clone` or `update`.
        action: &'static str,
        /// The database.
        path: PathBuf,
        /// The repository.
        url: String,
        /// git's message.
        message: String,
    },
    /// The database does not load.
    #[error("the advisory database at `{}` does not load: {message}", path.display())]
    #[diagnostic(
        code(containerize::audit),
        help(
            "it must be a clone of https://github.com/RustSec/advisory-db (crates/<name>/RUSTSEC-*.md); delete it to have it cloned again"
        )
    )]
    Database {
        /// The database.
        path: PathBuf,
        /// rustsec's message.
        message: String,
    },
    /// The audit found what fails the run.
    #[error("{summary}")]
    #[diagnostic(code(containerize::audit), help("{help}"))]
    Vulnerable {
        /// `2 vulnerabilities in the images: RUSTSEC-… (itoa 1.0.19), …`.
        summary: String,
        /// How to fix or accept them.
        help: String,
    },
    /// Writing the vulnerabilities documents.
    #[error(transparent)]
    #[diagnostic(
        code(containerize::audit),
        help("check that the directory is writable and the disk is not full")
    )]
    Fs(#[from] FsError),
    /// Assembling a document.
    #[error("failed to assemble the vulnerabilities document: {0}")]
    #[diagnostic(code(containerize::audit), help("this is a bug; run without --audit"))]
    Assemble(String),
}

/// What an advisory says, as the report and the documents need it.
#[derive(Debug, Clone, PartialEq)]
pub struct Advisory {
    /// `RUSTSEC-YYYY-NNNN`.
    pub id: String,
    /// Its CVE and GHSA ids.
    pub aliases: Vec<String>,
    /// One line.
    pub title: String,
    /// Markdown.
    pub description: String,
    /// `YYYY-MM-DD`.
    pub date: String,
    /// The advisory's page (`https://rustsec.org/advisories/…`).
    pub url: String,
    /// A CVSS score, when the advisory has one.
    pub cvss: Option<Cvss>,
    /// `unmaintained`, `unsound`, `notice`, … (`None`: a vulnerability).
    pub informational: Option<String>,
    /// Version requirements that fix it (`>=1.0.20`).
    pub patched: Vec<String>,
}

/// A CVSS rating.
#[derive(Debug, Clone, PartialEq)]
pub struct Cvss {
    /// 0.0–10.0.
    pub score: f64,
    /// The qualitative severity (`None` for a score of 0).
    pub severity: Option<Severity>,
    /// `CVSS:3.1/AV:N/…`.
    pub vector: String,
    /// `CVSSv31`, `CVSSv4`… (CycloneDX's `method`).
    pub method: &'static str,
}

/// Why a finding is not counted against the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotLinked {
    /// Compiled for the build host, never linked.
    ProcMacro,
    /// Only another image of the run links it.
    OtherImages(Vec<String>),
    /// A build- or dev-dependency, or behind a feature or target this build leaves out.
    Unused,
}

/// What a finding means for the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// A vulnerability in a linked crate at or above the threshold: fails the run.
    Fails,
    /// A vulnerability in a linked crate, below `--severity`.
    BelowThreshold(Severity),
    /// Ignored (`--ignore` or the metadata's `audit.ignore`).
    Ignored(Ignored),
    /// The crate is in the workspace's resolve, not in this image.
    NotInImage(NotLinked),
    /// An informational advisory or a yanked version on a linked crate.
    Warning,
    /// A warning that `--deny` turns into a failure.
    Denied,
}

impl Status {
    /// Whether this finding fails the run.
    pub fn fails(&self) -> bool {
        matches!(self, Status::Fails | Status::Denied)
    }

    /// The word the events and the summary use.
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Fails => "vulnerable",
            Status::BelowThreshold(_) => "below-threshold",
            Status::Ignored(_) => "ignored",
            Status::NotInImage(_) => "not-in-image",
            Status::Warning => "warning",
            Status::Denied => "denied",
        }
    }
}

/// What was found: an advisory, or a yanked version (no advisory).
#[derive(Debug, Clone, PartialEq)]
pub enum Subject {
    /// An advisory of the database.
    Advisory(Box<Advisory>),
    /// The version is yanked from crates.io.
    Yanked,
}

impl Subject {
    /// `vulnerability`, `unmaintained`, `unsound`, `notice`, `yanked`.
    pub fn kind(&self) -> &str {
        match self {
            Subject::Advisory(a) => a.informational.as_deref().unwrap_or("vulnerability"),
            Subject::Yanked => "yanked",
        }
    }

    /// The advisory id, or `yanked`.
    pub fn id(&self) -> &str {
        match self {
            Subject::Advisory(a) => &a.id,
            Subject::Yanked => "yanked",
        }
    }
}

/// One match: an advisory (or a yank) against a package of one image platform's resolve.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Image name.
    pub image: String,
    /// Platform.
    pub platform: Platform,
    /// What matched.
    pub subject: Subject,
    /// The package.
    pub krate: Crate,
    /// For a linked crate: the binary's package, then each crate down to this one.
    pub path: Vec<String>,
    /// What it means for the run.
    pub status: Status,
}

/// The whole audit of a run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Sorted by image, platform, advisory id, crate.
    pub findings: Vec<Finding>,
    /// Where the advisories came from.
    pub db: db::DbInfo,
}

impl Report {
    /// Findings that fail the run.
    pub fn failures(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.status.fails())
    }
}

/// Whether a registry package is one RustSec covers (crates.io only).
fn audited(krate: &Crate) -> bool {
    krate.source == CrateSource::CratesIo
}

/// Audits every image platform of `plan` against `database`.
pub fn audit(
    plan: &Plan,
    graphs: &Graphs,
    database: &db::Database,
    yanked: &yanked::Yanked,
) -> Report {
    let Some(settings) = &plan.audit else {
        return Report::default();
    };
    // What each image links on each platform, computed once: the findings of one image
    // ask which other images link a crate.
    let mut reach: BTreeMap<(&str, Platform), (&str, BTreeSet<String>)> = BTreeMap::new();
    for image in &plan.images {
        for planned in &image.platforms {
            let platform = planned.platform;
            if let (Some(graph), Some(linked)) = (
                graphs.by_platform.get(&platform),
                graphs.linked.get(&platform),
            ) && let Some(root) = graph.package_id(&image.package)
            {
                reach.insert(
                    (image.name.as_str(), platform),
                    (root, linked.reachable_from(root)),
                );
            }
        }
    }
    let mut findings = Vec::new();
    for image in &plan.images {
        let policy = policy(settings, &image.settings.audit);
        for planned in &image.platforms {
            let platform = planned.platform;
            let (Some(graph), Some(linked), Some((root, in_image))) = (
                graphs.by_platform.get(&platform),
                graphs.linked.get(&platform),
                reach.get(&(image.name.as_str(), platform)),
            ) else {
                continue;
            };
            for (id, krate) in graph.crates.iter().filter(|(_, k)| audited(k)) {
                let linked_here = in_image.contains(id);
                let mut subjects: Vec<Subject> = database
                    .matching(krate, platform)
                    .into_iter()
                    .map(|a| Subject::Advisory(Box::new(a)))
                    .collect();
                if linked_here && yanked.is_yanked(&krate.name, &krate.version) {
                    subjects.push(Subject::Yanked);
                }
                for subject in subjects {
                    let status = if linked_here {
                        policy.status(&subject)
                    } else {
                        Status::NotInImage(why_not_linked(krate, id, &image.name, platform, &reach))
                    };
                    // Warnings about crates that are not in the image say nothing about it.
                    if matches!(status, Status::NotInImage(_))
                        && !matches!(&subject, Subject::Advisory(a) if a.informational.is_none())
                    {
                        continue;
                    }
                    findings.push(Finding {
                        image: image.name.clone(),
                        platform,
                        path: if linked_here {
                            dependency_path(graph, linked, root, id)
                        } else {
                            Vec::new()
                        },
                        krate: krate.clone(),
                        subject,
                        status,
                    });
                }
            }
        }
    }
    findings.sort_by(|a, b| {
        (
            &a.image,
            a.platform,
            a.subject.id(),
            &a.krate.name,
            &a.krate.version,
        )
            .cmp(&(
                &b.image,
                b.platform,
                b.subject.id(),
                &b.krate.name,
                &b.krate.version,
            ))
    });
    Report {
        findings,
        db: database.info.clone(),
    }
}

/// One image's policy: the run's flags over its metadata.
struct Policy {
    severity: Option<Severity>,
    ignore: BTreeMap<String, Ignored>,
    deny: Vec<Deny>,
}

fn policy(settings: &AuditSettings, image: &ImageAudit) -> Policy {
    let mut ignore = image.ignore.clone();
    for id in &settings.ignore {
        ignore.insert(
            id.clone(),
            Ignored {
                reason: None,
                source: "--ignore".into(),
            },
        );
    }
    Policy {
        severity: settings.severity.or(image.severity),
        ignore,
        deny: settings.deny.clone(),
    }
}

impl Policy {
    fn ignored(&self, subject: &Subject) -> Option<&Ignored> {
        let Subject::Advisory(a) = subject else {
            return None;
        };
        std::iter::once(&a.id)
            .chain(&a.aliases)
            .find_map(|id| self.ignore.get(id))
    }

    fn status(&self, subject: &Subject) -> Status {
        if let Some(why) = self.ignored(subject) {
            return Status::Ignored(why.clone());
        }
        let denied = |kind: Deny| self.deny.contains(&Deny::Warnings) || self.deny.contains(&kind);
        match subject {
            Subject::Yanked => match denied(Deny::Yanked) {
                true => Status::Denied,
                false => Status::Warning,
            },
            Subject::Advisory(a) => match a.informational.as_deref() {
                Some(kind) => {
                    let specific = match kind {
                        "unmaintained" => Some(Deny::Unmaintained),
                        "unsound" => Some(Deny::Unsound),
                        _ => None,
                    };
                    let deny = self.deny.contains(&Deny::Warnings)
                        || specific.is_some_and(|k| self.deny.contains(&k));
                    if deny {
                        Status::Denied
                    } else {
                        Status::Warning
                    }
                }
                // An advisory without a score is never known to be below the threshold.
                None => match (self.severity, a.cvss.as_ref().map(|c| c.severity)) {
                    (Some(min), Some(Some(s))) if s < min => Status::BelowThreshold(min),
                    (Some(min), Some(None)) => Status::BelowThreshold(min),
                    _ => Status::Fails,
                },
            },
        }
    }
}

/// Why the crate `id` is in the platform's resolve but not linked into `image`.
fn why_not_linked(
    krate: &Crate,
    id: &str,
    image: &str,
    platform: Platform,
    reach: &BTreeMap<(&str, Platform), (&str, BTreeSet<String>)>,
) -> NotLinked {
    if krate.proc_macro {
        return NotLinked::ProcMacro;
    }
    let others: Vec<String> = reach
        .iter()
        .filter(|((name, p), (_, linked))| *p == platform && *name != image && linked.contains(id))
        .map(|((name, _), _)| name.to_string())
        .collect();
    if others.is_empty() {
        NotLinked::Unused
    } else {
        NotLinked::OtherImages(others)
    }
}

/// The shortest chain of links from `root` to `target` (names; the last with its
/// version), as `cargo tree -i` would show the way in. Ties go to the first by id.
fn dependency_path(
    graph: &CrateGraph,
    linked: &crate::sbom::resolve::Linked,
    root: &str,
    target: &str,
) -> Vec<String> {
    let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
    let mut seen = BTreeSet::from([root]);
    let mut queue = VecDeque::from([root]);
    while let Some(id) = queue.pop_front() {
        if id == target {
            break;
        }
        for next in linked.edges.get(id).into_iter().flatten() {
            if seen.insert(next.as_str()) {
                parent.insert(next.as_str(), id);
                queue.push_back(next.as_str());
            }
        }
    }
    let mut chain = vec![target];
    while let Some(p) = parent.get(chain.last().copied().unwrap_or_default()) {
        chain.push(p);
    }
    chain.reverse();
    let name = |id: &str| {
        graph
            .crates
            .get(id)
            .map_or(id.to_string(), |c| c.name.clone())
    };
    let mut out: Vec<String> = chain.iter().map(|id| name(id)).collect();
    if let (Some(last), Some(k)) = (out.last_mut(), graph.crates.get(target)) {
        *last = format!("{} {}", k.name, k.version);
    }
    out
}

/// The findings of one image platform with the same advisory, crate and status, joined:
/// what the human report prints once, naming every platform.
#[derive(Debug)]
pub struct Grouped<'r> {
    /// The first finding (subject, crate, status, path).
    pub finding: &'r Finding,
    /// Every image and platform it holds for: `image (linux/amd64, linux/arm64)`.
    pub places: BTreeMap<&'r str, Vec<Platform>>,
}

/// Joins the findings that differ only by image or platform.
pub fn group(report: &Report) -> Vec<Grouped<'_>> {
    let mut out: Vec<Grouped> = Vec::new();
    for f in &report.findings {
        let same = out.iter_mut().find(|g| {
            g.finding.subject.id() == f.subject.id()
                && g.finding.krate.name == f.krate.name
                && g.finding.krate.version == f.krate.version
                && g.finding.status.as_str() == f.status.as_str()
                && g.finding.path == f.path
        });
        match same {
            Some(g) => g.places.entry(&f.image).or_default().push(f.platform),
            None => out.push(Grouped {
                finding: f,
                places: BTreeMap::from([(f.image.as_str(), vec![f.platform])]),
            }),
        }
    }
    // Failures first, then warnings, then what does not count.
    let rank = |s: &Status| match s {
        Status::Fails | Status::Denied => 0,
        Status::Warning | Status::BelowThreshold(_) => 1,
        Status::Ignored(_) => 2,
        Status::NotInImage(_) => 3,
    };
    out.sort_by_key(|g| rank(&g.finding.status));
    out
}

/// `sbom-deps (linux/amd64, linux/arm64), api (linux/amd64)`.
pub fn places(g: &Grouped<'_>) -> String {
    g.places
        .iter()
        .map(|(image, platforms)| {
            let p: Vec<String> = platforms.iter().map(Platform::to_string).collect();
            format!("{image} ({})", p.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The lines the shell prints for one group: the level and the message with its
/// `note:`/`help:` lines.
pub fn describe(g: &Grouped<'_>) -> (Level, String) {
    let f = g.finding;
    let what = format!("{} {}", f.krate.name, f.krate.version);
    let mut lines = Vec::new();
    let head = match &f.subject {
        Subject::Advisory(a) => {
            let kind = match a.informational.as_deref() {
                None => "is vulnerable".to_string(),
                Some(k) => format!("is {k}"),
            };
            format!("{}: {what} {kind}: {}", a.id, a.title)
        }
        Subject::Yanked => format!("{what} is yanked from crates.io"),
    };
    match &f.status {
        Status::NotInImage(why) => {
            let because = match why {
                NotLinked::ProcMacro => {
                    "a proc-macro: compiled for the build host, never linked".to_string()
                }
                NotLinked::OtherImages(images) => {
                    format!("linked only into {}", images.join(", "))
                }
                NotLinked::Unused => "a build- or dev-dependency, or behind a feature or target this build leaves out".to_string(),
            };
            lines.push(format!("note: not in {}: {because}", places(g)));
        }
        _ => {
            lines.push(format!(
                "note: linked into {}: {}",
                places(g),
                f.path.join(" → ")
            ));
        }
    }
    if let Subject::Advisory(a) = &f.subject {
        if let Some(c) = &a.cvss {
            let severity = c.severity.map_or("none", Severity::as_str);
            lines.push(format!(
                "note: severity {severity} (CVSS {:.1}, {})",
                c.score, c.vector
            ));
        } else if a.informational.is_none() && !matches!(f.status, Status::NotInImage(_)) {
            lines.push("note: no CVSS score: counted at every --severity".to_string());
        }
        lines.push(format!("note: {}", a.url));
    }
    match &f.status {
        Status::BelowThreshold(min) => {
            lines.push(format!(
                "note: below --severity {}: does not fail the run",
                min.as_str()
            ));
        }
        Status::Ignored(i) => lines.push(match &i.reason {
            Some(r) => format!("note: ignored by {}: {r}", i.source),
            None => format!("note: ignored by {}", i.source),
        }),
        Status::Denied => lines.push("note: --deny turns this warning into a failure".to_string()),
        _ => {}
    }
    if matches!(
        f.status,
        Status::Fails | Status::Denied | Status::Warning | Status::BelowThreshold(_)
    ) {
        match &f.subject {
            Subject::Advisory(a) if !a.patched.is_empty() => lines.push(format!(
                "help: upgrade to {} (`cargo update -p {}@{}`), or ignore it with --ignore {} / audit.ignore in the metadata",
                a.patched.join(" or "),
                f.krate.name,
                f.krate.version,
                a.id
            )),
            Subject::Advisory(a) if a.informational.is_some() => lines.push(format!(
                "help: the advisory names alternatives to {}; or ignore it with --ignore {} / audit.ignore in the metadata",
                f.krate.name, a.id
            )),
            Subject::Advisory(a) => lines.push(format!(
                "help: no fixed version: replace {} or ignore it with --ignore {} / audit.ignore in the metadata",
                f.krate.name, a.id
            )),
            Subject::Yanked => lines.push(format!(
                "help: `cargo update -p {}@{}` to a version that is not yanked",
                f.krate.name, f.krate.version
            )),
        }
    }
    let level = match f.status {
        Status::Fails | Status::Denied => Level::Error,
        Status::Warning | Status::BelowThreshold(_) => Level::Warning,
        Status::Ignored(_) | Status::NotInImage(_) => Level::Note,
    };
    (level, format!("{head}\n{}", lines.join("\n")))
}

/// The counts the summary line gives: `1 vulnerability, 1 warning, 2 not in the image`.
pub fn summary(groups: &[Grouped<'_>]) -> String {
    let n = |f: &dyn Fn(&Status) -> bool| groups.iter().filter(|g| f(&g.finding.status)).count();
    let parts = [
        (
            n(&|s| matches!(s, Status::Fails)),
            "vulnerability",
            "vulnerabilities",
        ),
        (
            n(&|s| matches!(s, Status::Denied)),
            "denied warning",
            "denied warnings",
        ),
        (
            n(&|s| matches!(s, Status::Warning | Status::BelowThreshold(_))),
            "warning",
            "warnings",
        ),
        (
            n(&|s| matches!(s, Status::Ignored(_))),
            "ignored",
            "ignored",
        ),
        (
            n(&|s| matches!(s, Status::NotInImage(_))),
            "not in the image",
            "not in the images",
        ),
    ];
    let said: Vec<String> = parts
        .iter()
        .filter(|(n, _, _)| *n > 0)
        .map(|(n, one, many)| crate::output::count(*n, one, many))
        .collect();
    if said.is_empty() {
        "no advisories match".to_string()
    } else {
        said.join(", ")
    }
}

/// `Ok` unless a finding fails the run; the error lists them and says what to do.
pub fn verdict(groups: &[Grouped<'_>]) -> Result<(), AuditError> {
    let groups: Vec<&Grouped> = groups.iter().filter(|g| g.finding.status.fails()).collect();
    if groups.is_empty() {
        return Ok(());
    }
    let listed: Vec<String> = groups
        .iter()
        .map(|g| {
            format!(
                "{} ({} {})",
                g.finding.subject.id(),
                g.finding.krate.name,
                g.finding.krate.version
            )
        })
        .collect();
    let vulnerable = groups
        .iter()
        .filter(|g| g.finding.status == Status::Fails)
        .count();
    let what = if vulnerable == groups.len() {
        crate::output::count(groups.len(), "vulnerable crate", "vulnerable crates")
    } else {
        crate::output::count(groups.len(), "finding", "findings")
    };
    Err(AuditError::Vulnerable {
        summary: format!("the images link {what}: {}", listed.join(", ")),
        help: "upgrade them (see each help above), or, where an advisory does not apply, ignore it: --ignore ID, or [workspace.metadata.containerize.audit] ignore = [{ id = \"ID\", reason = \"why\" }]; --severity sets the lowest severity that fails".to_string(),
    })
}

/// The `audit-finding` event of a finding.
pub fn event(f: &Finding) -> crate::events::AuditFinding {
    let advisory = match &f.subject {
        Subject::Advisory(a) => Some(a),
        Subject::Yanked => None,
    };
    let cvss = advisory.and_then(|a| a.cvss.as_ref());
    crate::events::AuditFinding {
        name: f.image.clone(),
        platform: f.platform.to_string(),
        advisory: f.subject.id().to_string(),
        aliases: advisory.map(|a| a.aliases.clone()).unwrap_or_default(),
        kind: f.subject.kind().to_string(),
        krate: f.krate.name.clone(),
        version: f.krate.version.clone(),
        title: advisory.map(|a| a.title.clone()),
        severity: cvss
            .and_then(|c| c.severity)
            .map(|s| s.as_str().to_string()),
        cvss: cvss.map(|c| c.score),
        patched: advisory.map(|a| a.patched.clone()).unwrap_or_default(),
        path: f.path.clone(),
        status: f.status.as_str().to_string(),
        because: match &f.status {
            Status::Ignored(i) => Some(match &i.reason {
                Some(r) => format!("ignored by {}: {r}", i.source),
                None => format!("ignored by {}", i.source),
            }),
            Status::NotInImage(NotLinked::ProcMacro) => Some("proc-macro".into()),
            Status::NotInImage(NotLinked::OtherImages(i)) => {
                Some(format!("linked only into {}", i.join(", ")))
            }
            Status::NotInImage(NotLinked::Unused) => Some("not linked".into()),
            Status::BelowThreshold(min) => Some(format!("below --severity {}", min.as_str())),
            _ => None,
        },
    }
}

/// One vulnerabilities document written next to an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Image name.
    pub image: String,
    /// Platform.
    pub platform: Platform,
    /// The file.
    pub path: PathBuf,
    /// Its bytes and digest.
    pub blob: crate::canonical::JsonBlob,
}

/// Writes each audited image platform's vulnerabilities document (where the plan puts
/// it), then deletes documents of earlier runs that this run did not write.
pub fn write_documents(
    plan: &Plan,
    graphs: &Graphs,
    report: &Report,
) -> Result<Vec<Written>, AuditError> {
    let mut out = Vec::new();
    for image in &plan.images {
        for planned in &image.platforms {
            let Some(path) = &planned.vulnerabilities else {
                continue;
            };
            let Some(graph) = graphs.by_platform.get(&planned.platform) else {
                continue;
            };
            let Some(root) = graph
                .package_id(&image.package)
                .and_then(|id| graph.crates.get(id))
            else {
                continue;
            };
            let findings: Vec<&Finding> = report
                .findings
                .iter()
                .filter(|f| f.image == image.name && f.platform == planned.platform)
                .collect();
            let doc = vex::render(root, &image.bin, &findings, &report.db, plan.epoch)
                .map_err(AuditError::Assemble)?;
            let blob = vex::to_json(&doc)?;
            if let Some(dir) = path.parent() {
                crate::fsutil::create_dir_all(dir)?;
            }
            crate::fsutil::write_atomic(path, &blob.bytes)?;
            out.push(Written {
                image: image.name.clone(),
                platform: planned.platform,
                path: path.clone(),
                blob,
            });
        }
    }
    remove_stale(plan, &out)?;
    Ok(out)
}

/// Deletes vulnerabilities documents next to the images that this run did not write (a
/// run without `--audit`, another platform set): a file next to an image describes it.
pub fn remove_stale(plan: &Plan, written: &[Written]) -> Result<(), AuditError> {
    let keep: Vec<&std::path::Path> = written.iter().map(|w| w.path.as_path()).collect();
    for image in &plan.images {
        crate::fsutil::remove_stale(
            &image.out_dir,
            |name| name.starts_with("vulnerabilities.") && name.ends_with(".cdx.json"),
            &keep,
        )?;
    }
    Ok(())
}

/// The artifact manifests that attach an image's vulnerabilities documents to its
/// platform manifests: CycloneDX, told apart from the SBOM by their content annotation.
pub fn artifacts(
    set: &crate::image::ImageSet,
    written: &[Written],
) -> Result<Vec<crate::image::artifact::Artifact>, crate::image::config::AssembleError> {
    use crate::image::artifact::{CYCLONEDX_JSON, attach, vulnerabilities_annotations};
    let docs = written
        .iter()
        .map(|w| (w.image.as_str(), w.platform, CYCLONEDX_JSON, &w.blob));
    attach(set, docs, &vulnerabilities_annotations())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sbom::resolve::Linked;

    fn krate(name: &str, version: &str) -> Crate {
        Crate {
            name: name.into(),
            version: version.into(),
            source: CrateSource::CratesIo,
            license: None,
            description: None,
            repository: None,
            checksum: None,
            proc_macro: false,
            features: Default::default(),
            deps: Vec::new(),
        }
    }

    fn advisory(cvss: Option<(f64, Option<Severity>)>, informational: Option<&str>) -> Subject {
        Subject::Advisory(Box::new(Advisory {
            id: "RUSTSEC-2099-0001".into(),
            aliases: vec!["CVE-2099-1".into()],
            title: "t".into(),
            description: String::new(),
            date: "2099-01-01".into(),
            url: "https://rustsec.org/advisories/RUSTSEC-2099-0001.html".into(),
            cvss: cvss.map(|(score, severity)| Cvss {
                score,
                severity,
                vector: String::new(),
                method: "CVSSv31",
            }),
            informational: informational.map(String::from),
            patched: vec![">=1.0.20".into()],
        }))
    }

    fn policy_of(severity: Option<Severity>, deny: Vec<Deny>, ignore: &[&str]) -> Policy {
        Policy {
            severity,
            deny,
            ignore: ignore
                .iter()
                .map(|id| {
                    (
                        id.to_string(),
                        Ignored {
                            reason: Some("r".into()),
                            source: "s".into(),
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn the_threshold_lets_lower_scores_pass_but_never_unscored_ones() {
        let high = advisory(Some((7.5, Some(Severity::High))), None);
        let unscored = advisory(None, None);
        let at = |s| policy_of(s, vec![], &[]);
        assert_eq!(at(None).status(&high), Status::Fails);
        assert_eq!(at(Some(Severity::High)).status(&high), Status::Fails);
        assert_eq!(
            at(Some(Severity::Critical)).status(&high),
            Status::BelowThreshold(Severity::Critical)
        );
        assert_eq!(
            at(Some(Severity::Critical)).status(&unscored),
            Status::Fails
        );
    }

    #[test]
    fn warnings_fail_only_when_denied_and_aliases_ignore() {
        let unmaintained = advisory(None, Some("unmaintained"));
        assert_eq!(
            policy_of(None, vec![], &[]).status(&unmaintained),
            Status::Warning
        );
        assert_eq!(
            policy_of(None, vec![Deny::Unmaintained], &[]).status(&unmaintained),
            Status::Denied
        );
        assert_eq!(
            policy_of(None, vec![Deny::Unsound], &[]).status(&unmaintained),
            Status::Warning
        );
        assert_eq!(
            policy_of(None, vec![Deny::Warnings], &[]).status(&Subject::Yanked),
            Status::Denied
        );
        let high = advisory(Some((7.5, Some(Severity::High))), None);
        assert!(matches!(
            policy_of(None, vec![], &["CVE-2099-1"]).status(&high),
            Status::Ignored(_)
        ));
    }

    #[test]
    fn the_path_is_the_shortest_way_in() {
        let mut graph = CrateGraph {
            platform: Platform::LinuxAmd64,
            crates: Default::default(),
        };
        for (id, name) in [
            ("app", "app"),
            ("a", "reqwest"),
            ("b", "hyper"),
            ("h2", "h2"),
        ] {
            graph.crates.insert(id.into(), krate(name, "0.3.26"));
        }
        let mut linked = Linked::default();
        linked
            .edges
            .insert("app".into(), ["a".into(), "b".into()].into());
        linked.edges.insert("a".into(), ["b".into()].into());
        linked.edges.insert("b".into(), ["h2".into()].into());
        assert_eq!(
            dependency_path(&graph, &linked, "app", "h2"),
            ["app", "hyper", "h2 0.3.26"]
        );
    }
}
