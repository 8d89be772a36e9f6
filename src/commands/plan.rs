//! `cargo containerize plan` and `--dry-run`: Settings → Workspace → [`Plan`], printed.
//! Nothing is built, pulled, pushed or written: only `cargo metadata` and git run. The
//! plan is the same value the real run starts from ([`crate::pipeline::run`] emits the
//! same `plan` event), so what it prints is what a run would do.

use std::fmt::Write as _;
use std::path::Path;

use crate::cli::BuildArgs;
use crate::commands::{Error, Outcome};
use crate::config::{Env, Runtime};
use crate::output::{MessageFormat, Shell};
use crate::pipeline::{self, Mode};
use crate::plan::Plan;

/// Plans and prints the plan: as text on stdout, or with `--message-format json` as the
/// `plan` event (which the pipeline emits). Nothing is built or written.
pub fn exec(args: BuildArgs, env: &Env, shell: &mut Shell) -> Result<Outcome, Error> {
    let settings = super::build_settings(args, env, shell)?;
    let pipeline::Outcome::Planned(plan) = pipeline::run(&settings, Mode::Plan, shell)? else {
        unreachable!("Mode::Plan ends with the plan")
    };
    if shell.format() == MessageFormat::Human {
        let cwd = std::env::current_dir().unwrap_or_default();
        // A closed stdout (`| head`) is not an error worth reporting.
        let _ = shell.out_line(render(&plan, &cwd).trim_end());
    }
    shell.status(
        "Planned",
        format!(
            "{}; nothing was built or written",
            crate::output::count(plan.images.len(), "image", "images")
        ),
    );
    Ok(Outcome {
        images: plan.images.len(),
        lines: Vec::new(),
    })
}

/// `path` relative to `cwd` when it is inside it, as the user would type it.
fn show(path: &Path, cwd: &Path) -> String {
    match path.strip_prefix(cwd) {
        Ok(rel) if rel.as_os_str().is_empty() => ".".into(),
        Ok(rel) => rel.display().to_string(),
        Err(_) => path.display().to_string(),
    }
}

/// The plan as text: one block per image, then the builds and the run's outputs.
pub fn render(plan: &Plan, cwd: &Path) -> String {
    // Writing to a String cannot fail, hence the ignored results.
    let mut out = String::new();
    let mut blocks: Vec<String> = Vec::new();
    for image in &plan.images {
        let mut b = String::new();
        let _ = writeln!(
            b,
            "image {} (package {} v{}, bin {})",
            image.name, image.package, image.version, image.bin
        );
        let platforms: Vec<String> = image
            .settings
            .platforms
            .iter()
            .map(ToString::to_string)
            .collect();
        let mut field = |key: &str, value: String| {
            let _ = writeln!(b, "  {key:<10} {value}");
        };
        field("platforms", platforms.join(", "));
        field("tags", image.tags.join(", "));
        let push = match (&image.repository, plan.outputs.push) {
            (Some(repo), true) => image
                .registry_tags(plan.outputs.per_platform)
                .iter()
                .map(|(_, t)| format!("{repo}:{t}"))
                .collect::<Vec<_>>()
                .join(", "),
            (Some(repo), false) => format!("no (--push would send it to {repo})"),
            (None, _) => "no (no repository: --repo or `repository` in the metadata)".into(),
        };
        field("push", push);
        let mut files = vec!["image.json".to_string()];
        let sboms = image.platforms.iter().flat_map(|p| p.sboms.iter());
        let provenance = image.platforms.iter().filter_map(|p| p.provenance.as_ref());
        let vulnerabilities = image
            .platforms
            .iter()
            .filter_map(|p| p.vulnerabilities.as_ref());
        let docs = sboms
            .map(|s| &s.path)
            .chain(provenance)
            .chain(vulnerabilities);
        files.extend(docs.filter_map(|p| Some(p.file_name()?.to_string_lossy().into_owned())));
        let kube_here = plan.outputs.kube_dir.as_ref() == Some(&plan.out_dir);
        if kube_here && image.settings.kubernetes.enabled {
            files.extend([
                crate::kube::FILE_NAME.to_string(),
                crate::kube::kustomize::FILE_NAME.to_string(),
            ]);
        }
        field(
            "output",
            format!("{}/ ({})", show(&image.out_dir, cwd), files.join(", ")),
        );
        blocks.push(b);
    }
    out.push_str(&blocks.join("\n"));
    if !blocks.is_empty() {
        out.push('\n');
    }
    for build in &plan.builds {
        let bins: Vec<String> = build.bins.iter().map(|b| format!("--bin {b}")).collect();
        let packages: Vec<String> = build.packages.iter().map(|p| format!("-p {p}")).collect();
        let _ = writeln!(
            out,
            "build {} ({}, --profile {}): {} {}",
            build.platform,
            build.platform.triple(),
            plan.cargo.profile,
            packages.join(" "),
            bins.join(" ")
        );
    }
    if let Some(base) = &plan.base {
        let _ = writeln!(out, "base {base} (instead of the built-in base)");
    }
    let _ = writeln!(out, "outputs");
    let mut line = |key: &str, value: String| {
        let _ = writeln!(out, "  {key:<10} {value}");
    };
    line("layout", format!("{}/", show(&plan.layout_dir, cwd)));
    let attested = plan.images.iter().flat_map(|i| &i.platforms);
    if attested.into_iter().any(|p| p.provenance.is_some()) {
        let invocation = match &plan.provenance.invocation_id {
            Some(id) => format!(", run {id}"),
            None => String::new(),
        };
        line(
            "provenance",
            format!("builder {}{invocation}", plan.provenance.builder_id),
        );
    }
    if let Some(dir) = &plan.outputs.oci_layout_path {
        line("layout", format!("{}/ (--oci-layout-path)", show(dir, cwd)));
    }
    if let Some(file) = &plan.outputs.tarball {
        let platform = match plan.outputs.tarball_platform {
            Some(p) => format!(" (docker's manifest.json: {p})"),
            None => String::new(),
        };
        line("archive", format!("{}{platform}", show(file, cwd)));
    }
    if let Some(target) = &plan.outputs.load {
        let runtime = match target.runtime {
            Runtime::Auto => "docker, else podman".to_string(),
            Runtime::Docker => "docker".to_string(),
            Runtime::Podman => "podman".to_string(),
            Runtime::Containerd => {
                format!("containerd (namespace {})", target.containerd_namespace)
            }
        };
        line("load", runtime);
    }
    if let Some(file) = &plan.outputs.image_refs {
        line("refs", show(file, cwd));
    }
    if let Some(dir) = &plan.outputs.kube_dir {
        line(
            "kubernetes",
            format!(
                "{dir}/{}, {dir}/{}",
                crate::kube::FILE_NAME,
                crate::kube::kustomize::FILE_NAME,
                dir = show(dir, cwd).trim_end_matches('/')
            ),
        );
    }
    if let Some(file) = &plan.outputs.compose {
        line("compose", show(file, cwd));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    use crate::config::{self, Settings};
    use crate::plan::{BuildPlan, ImagePlan, Outputs};
    use crate::platform::Platform;
    use crate::reference::Repository;

    fn settings(args: &[&str]) -> Settings {
        let mut argv = vec!["cargo-containerize", "containerize"];
        argv.extend_from_slice(args);
        let cli = crate::cli::parse_from(argv.into_iter().map(Into::into)).unwrap();
        config::resolve(cli.build, &Env::default()).unwrap()
    }

    /// A two-platform plan, with the outputs `args` ask for.
    fn plan(args: &[&str]) -> Plan {
        let settings = settings(args);
        let image_settings = config::resolve_image(&[], Some(&Platform::ALL)).unwrap();
        let out = PathBuf::from("/ws/target/containerize");
        let platforms = Platform::ALL
            .iter()
            .map(|&platform| {
                let provenance = settings.provenance != Some(false);
                crate::plan::plan_platform(
                    &out.join("api"),
                    crate::plan::SbomDir::Image(&out.join("api")),
                    platform,
                    &settings.sbom,
                    provenance,
                    false,
                )
            })
            .collect();
        Plan {
            images: vec![ImagePlan {
                name: "api".into(),
                bin: "api".into(),
                package: "server".into(),
                version: "1.2.3".into(),
                settings: image_settings,
                assets_dir: None,
                tags: vec!["1.2.3".into(), "latest".into()],
                pin_tag: "1.2.3".into(),
                repository: Some(Repository::parse("ghcr.io/acme/api").unwrap()),
                annotations: Default::default(),
                out_dir: out.join("api"),
                platforms,
            }],
            builds: Platform::ALL
                .iter()
                .map(|&platform| BuildPlan {
                    platform,
                    packages: vec!["server".into()],
                    bins: vec!["api".into()],
                })
                .collect(),
            layout_dir: out.join("oci"),
            cache_dir: out.join("cache"),
            epoch: 0,
            epoch_source: "the default (0)",
            compression_level: 6,
            compression: crate::config::Compression::Gzip,
            base: None,
            outputs: Outputs {
                tarball: Some(PathBuf::from("/elsewhere/images.tar")),
                push: settings.push,
                sbom: settings.sbom.clone(),
                kube_dir: (!settings.no_kube).then(|| out.clone()),
                ..Outputs::default()
            },
            cargo: settings.cargo.clone(),
            manifest_path: None,
            registry: settings.registry.clone(),
            provenance: crate::plan::ProvenancePlan {
                builder_id: crate::plan::LOCAL_BUILDER_ID.into(),
                invocation_id: None,
                workflow: None,
                source: None,
                lockfile: out.join("../../Cargo.lock"),
            },
            audit: None,
            merge_from: Default::default(),
            out_dir: out,
        }
    }

    #[test]
    fn plan_text_names_images_platforms_tags_refs_and_outputs() {
        let text = render(&plan(&["--push"]), Path::new("/ws"));
        assert_eq!(
            text,
            "\
image api (package server v1.2.3, bin api)
  platforms  linux/amd64, linux/arm64
  tags       1.2.3, latest
  push       ghcr.io/acme/api:1.2.3, ghcr.io/acme/api:latest
  output     target/containerize/api/ (image.json, sbom.linux-amd64.cdx.json, sbom.linux-arm64.cdx.json, provenance.linux-amd64.intoto.json, provenance.linux-arm64.intoto.json, kubernetes.yaml, kustomization.yaml)

build linux/amd64 (x86_64-unknown-linux-musl, --profile release): -p server --bin api
build linux/arm64 (aarch64-unknown-linux-musl, --profile release): -p server --bin api
outputs
  layout     target/containerize/oci/
  provenance builder https://github.com/cargo-containerize/cargo-containerize/blob/main/docs/provenance.md#local-builder
  archive    /elsewhere/images.tar
  kubernetes target/containerize/kubernetes.yaml, target/containerize/kustomization.yaml
"
        );
    }

    #[test]
    fn plan_text_says_why_nothing_is_pushed() {
        let text = render(
            &plan(&["--no-kube", "--sbom", "none", "--provenance=false"]),
            Path::new("/elsewhere"),
        );
        assert!(
            text.contains("push       no (--push would send it to ghcr.io/acme/api)"),
            "{text}"
        );
        assert!(
            text.contains("output     /ws/target/containerize/api/ (image.json)\n"),
            "{text}"
        );
        assert!(!text.contains("kubernetes"), "{text}");
    }
}
