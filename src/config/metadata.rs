//! Cargo.toml metadata tables → [`ImageLayer`]s (as written, all `Option`) → one image's
//! resolved [`ImageSettings`]. Every error names the key, the table and the Cargo.toml.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde_json::Value;

use super::{APP_DIR, ConfigError, DEFAULT_USER, Source};
use crate::platform::{Platform, parse_platforms};

/// An exposed port: `8080` or `"8080/tcp"` or `"53/udp"` in Cargo.toml.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Port {
    /// 1-65535.
    pub number: u16,
    /// `tcp` or `udp`.
    pub udp: bool,
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}",
            self.number,
            if self.udp { "udp" } else { "tcp" }
        )
    }
}

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Port;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a port number 1-65535 or a string like \"8080/tcp\" or \"53/udp\"")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Port, E> {
                match u16::try_from(n) {
                    Ok(number) if number > 0 => Ok(Port { number, udp: false }),
                    _ => Err(E::custom(format!("port {n} is out of range 1-65535"))),
                }
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Port, E> {
                match u64::try_from(n) {
                    Ok(n) => self.visit_u64(n),
                    Err(_) => Err(E::custom(format!("port {n} is out of range 1-65535"))),
                }
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Port, E> {
                let (num, proto) = s.split_once('/').unwrap_or((s, "tcp"));
                let udp = match proto {
                    "tcp" => false,
                    "udp" => true,
                    other => {
                        return Err(E::custom(format!(
                            "unknown protocol `{other}` in port \"{s}\" (expected tcp or udp)"
                        )));
                    }
                };
                let n: u64 = num
                    .parse()
                    .map_err(|_| E::custom(format!("\"{s}\" is not a port like \"8080/tcp\"")))?;
                Ok(Port {
                    udp,
                    ..self.visit_u64(n)?
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// One `[*.metadata.containerize]` table (or a `bin.<name>` sub-table), as written.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ImageLayer {
    /// Arguments passed to the binary (the image's `Cmd`).
    pub args: Option<Vec<String>>,
    /// Environment variables set in the image (merged across layers).
    pub env: Option<BTreeMap<String, String>>,
    /// Working directory (absolute).
    pub workdir: Option<String>,
    /// `uid[:gid]` or a name from the image's /etc/passwd.
    pub user: Option<String>,
    /// Ports the service listens on.
    pub exposed_ports: Option<Vec<Port>>,
    /// Image config labels (merged across layers).
    pub labels: Option<BTreeMap<String, String>>,
    /// Manifest annotations (merged across layers).
    pub annotations: Option<BTreeMap<String, String>>,
    /// A directory, relative to the package, copied into the image.
    pub assets: Option<String>,
    /// Where `assets` goes in the image (default `/app/<dir name>`).
    pub assets_dest: Option<String>,
    /// Allows `assets` outside the workspace (default false: a path that leaves it, by
    /// `..` or a symlink, is refused so no file from elsewhere lands in an image).
    pub assets_outside_workspace: Option<bool>,
    /// Platforms to build, e.g. `["linux/amd64", "linux/arm64"]` or `["all"]`.
    pub platforms: Option<Vec<String>>,
    /// Registry and namespace to push to (`ghcr.io/my-org`).
    pub repository: Option<String>,
    /// A registry image to build on instead of the built-in base (as `--base`). All images
    /// of a run share one base, so this is a workspace-level key only.
    pub base: Option<String>,
    /// Layer compression, `gzip` or `zstd` (as `--compression`); workspace-level only, like
    /// `base` (the images of a run share their base layer).
    pub compression: Option<super::Compression>,
    /// Kubernetes YAML settings (`[…containerize.kubernetes]`).
    pub kubernetes: Option<crate::config::kube::KubeLayer>,
    /// Whether the image gets a service in `compose.yaml` (default true).
    pub compose: Option<bool>,
    /// Whether the binary carries its dependency list (cargo-auditable's `.dep-v0`
    /// section; default true).
    pub auditable: Option<bool>,
    /// Whether each platform image gets SLSA provenance (default true).
    pub provenance: Option<bool>,
    /// Arguments that make the binary check its own health and exit 0 when healthy
    /// (compose's `healthcheck`; the image has no shell or curl to run one).
    pub health_check: Option<Vec<String>>,
    /// The vulnerability gate (`[…containerize.audit]`: `severity`, `ignore`).
    pub audit: Option<crate::config::audit::AuditLayer>,
}

/// A package's `[package.metadata.containerize]`: its own layer plus per-binary layers.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PackageConfig {
    /// The package-wide layer.
    pub package: ImageLayer,
    /// `bin.<name>` layers.
    pub bins: BTreeMap<String, ImageLayer>,
}

fn containerize_table<'v>(
    metadata: &'v Value,
    source: &Source,
) -> Result<Option<&'v serde_json::Map<String, Value>>, ConfigError> {
    match metadata.get("containerize") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(source.error("containerize", "expected a table")),
    }
}

fn parse_layer(value: Value, source: &Source) -> Result<ImageLayer, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let key = err.path().to_string();
        let message = err.into_inner().to_string();
        match super::explain::unknown_field(&message) {
            Some((_, valid)) => source.unknown_key(&key, &valid),
            None => source.error(&key, message),
        }
    })
}

/// Warnings for tables beside `containerize` in this metadata that look like it
/// misspelt (`containerise`, `containerize-api`, `Containerize`): they are read by
/// nothing, so a setting in them silently does not apply.
pub fn misspelt_tables(metadata: &Value, source: &Source) -> Vec<String> {
    let Some(map) = metadata.as_object() else {
        return Vec::new();
    };
    let table = source.table();
    let parent = table
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches(".containerize");
    map.keys()
        .filter(|k| *k != "containerize")
        .filter(|k| {
            let lower = k.to_ascii_lowercase();
            lower.starts_with("containerize")
                || super::explain::edit_distance(&lower, "containerize") <= 2
        })
        .map(|k| {
            format!(
                "unused table [{parent}.{k}] in {}\nhelp: did you mean [{parent}.containerize]? cargo containerize reads no other table",
                source.manifest()
            )
        })
        .collect()
}

/// Parses `[workspace.metadata.containerize]` from `cargo metadata`'s workspace metadata.
pub fn parse_workspace_config(metadata: &Value, manifest: &str) -> Result<ImageLayer, ConfigError> {
    let source = Source::Workspace(manifest.to_string());
    match containerize_table(metadata, &source)? {
        None => Ok(ImageLayer::default()),
        Some(map) => parse_layer(Value::Object(map.clone()), &source),
    }
}

/// Parses `[package.metadata.containerize]` (with its `bin.<name>` tables).
pub fn parse_package_config(
    metadata: &Value,
    manifest: &str,
) -> Result<PackageConfig, ConfigError> {
    let source = Source::Package(manifest.to_string());
    let Some(map) = containerize_table(metadata, &source)? else {
        return Ok(PackageConfig::default());
    };
    let mut map = map.clone();
    let mut bins = BTreeMap::new();
    match map.remove("bin") {
        None => {}
        Some(Value::Object(tables)) => {
            for (name, table) in tables {
                let src = Source::Bin(manifest.to_string(), name.clone());
                if !table.is_object() {
                    return Err(src.error(&format!("bin.{name}"), "expected a table"));
                }
                bins.insert(name, parse_layer(table, &src)?);
            }
        }
        Some(_) => return Err(source.error("bin", "expected a table of binary names")),
    }
    let package = parse_layer(Value::Object(map), &source)?;
    Ok(PackageConfig { package, bins })
}

/// Everything configured for one image, resolved: no `Option` left except where absence
/// means something.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSettings {
    /// `Cmd`.
    pub args: Vec<String>,
    /// `Env`, sorted.
    pub env: BTreeMap<String, String>,
    /// `WorkingDir`.
    pub workdir: String,
    /// `User`.
    pub user: String,
    /// `ExposedPorts`, sorted.
    pub exposed_ports: Vec<Port>,
    /// Config labels.
    pub labels: BTreeMap<String, String>,
    /// Manifest annotations.
    pub annotations: BTreeMap<String, String>,
    /// Assets directory (relative to the package root, as written) and where it goes.
    pub assets: Option<(String, String)>,
    /// Platforms, sorted.
    pub platforms: Vec<Platform>,
    /// Where the `assets` value came from (for errors about the directory).
    pub assets_source: Source,
    /// `assets-outside-workspace`.
    pub assets_outside_workspace: bool,
    /// `repository` from the metadata, with where it came from.
    pub repository: Option<(String, Source)>,
    /// Kubernetes YAML settings, resolved.
    pub kubernetes: crate::config::kube::KubeSettings,
    /// A service in `compose.yaml`.
    pub compose: bool,
    /// The binary carries its dependency list (`auditable`).
    pub auditable: bool,
    /// Each platform image gets SLSA provenance (`provenance`).
    pub provenance: bool,
    /// The binary's health-check arguments, if it has such a mode.
    pub health_check: Option<Vec<String>>,
    /// What the audit fails on and ignores for this image.
    pub audit: crate::config::audit::ImageAudit,
}

/// Merges layers (lowest precedence first) with the CLI platform override into the
/// settings of one image, validating every value against the layer it came from.
pub fn resolve_image(
    layers: &[(&ImageLayer, Source)],
    cli_platforms: Option<&[Platform]>,
) -> Result<ImageSettings, ConfigError> {
    let mut s = ImageSettings {
        args: Vec::new(),
        env: BTreeMap::new(),
        workdir: APP_DIR.to_string(),
        user: DEFAULT_USER.to_string(),
        exposed_ports: Vec::new(),
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
        assets: None,
        platforms: vec![Platform::LinuxAmd64],
        assets_source: Source::Default,
        assets_outside_workspace: false,
        repository: None,
        kubernetes: crate::config::kube::KubeSettings::default(),
        compose: true,
        auditable: true,
        provenance: true,
        health_check: None,
        audit: Default::default(),
    };
    let mut assets_dest: Option<String> = None;
    for (layer, source) in layers {
        if let Some(v) = &layer.args {
            if let Some(i) = v.iter().position(|a| a.contains('\0')) {
                return Err(source.error(
                    "args",
                    format!(
                        "argument {} holds a NUL byte, which no process can receive",
                        i + 1
                    ),
                ));
            }
            s.args = v.clone();
        }
        if let Some(env) = &layer.env {
            for (k, v) in env {
                if k.is_empty() || k.contains(['=', '\0', '\n', '\r']) {
                    return Err(source.error(
                        &format!("env.{}", k.escape_debug()),
                        "not a valid variable name (no `=`, newline or NUL; not empty)",
                    ));
                }
                if v.contains('\0') {
                    return Err(source.error(
                        &format!("env.{k}"),
                        "the value holds a NUL byte, which a container runtime cannot pass",
                    ));
                }
                s.env.insert(k.clone(), v.clone());
            }
        }
        if let Some(w) = &layer.workdir {
            if !w.starts_with('/') {
                return Err(source.error("workdir", format!("`{w}` is not an absolute path")));
            }
            s.workdir = w.clone();
        }
        if let Some(u) = &layer.user {
            validate_user(u).map_err(|m| source.error("user", m))?;
            s.user = u.clone();
        }
        if let Some(p) = &layer.exposed_ports {
            s.exposed_ports = p.clone();
        }
        if layer.compression.is_some() && !matches!(source, Source::Workspace(_)) {
            return Err(source.error(
                "compression",
                "all images of a run share their base layer: set `compression` in [workspace.metadata.containerize] (or pass --compression)",
            ));
        }
        if layer.base.is_some() && !matches!(source, Source::Workspace(_)) {
            return Err(source.error(
                "base",
                "all images of a run share one base: set `base` in [workspace.metadata.containerize] (or pass --base)",
            ));
        }
        for (key, table) in [
            ("labels", &layer.labels),
            ("annotations", &layer.annotations),
        ] {
            for (k, v) in table.iter().flatten() {
                if k.trim().is_empty() {
                    return Err(source.error(key, "an empty key: give every entry a name"));
                }
                if k.contains('\0') || v.contains('\0') {
                    return Err(
                        source.error(&format!("{key}.{}", k.escape_debug()), "holds a NUL byte")
                    );
                }
            }
        }
        if let Some(l) = &layer.labels {
            s.labels.extend(l.clone());
        }
        if let Some(a) = &layer.annotations {
            s.annotations.extend(a.clone());
        }
        if let Some(dir) = &layer.assets {
            if dir.is_empty() || dir.starts_with('/') {
                return Err(source.error(
                    "assets",
                    format!("`{dir}` must be a directory relative to the package"),
                ));
            }
            s.assets = Some((dir.clone(), String::new()));
            s.assets_source = source.clone();
        }
        if let Some(dest) = &layer.assets_dest {
            if !dest.starts_with('/') || dest.split('/').any(|c| c == "..") {
                return Err(source.error(
                    "assets-dest",
                    format!("`{dest}` must be an absolute path without `..`"),
                ));
            }
            if dest.trim_matches('/').is_empty() {
                return Err(source.error(
                    "assets-dest",
                    "`/` would put the assets over the image's root: name a directory, e.g. \"/app/static\"",
                ));
            }
            assets_dest = Some(dest.clone());
        }
        if let Some(a) = layer.auditable {
            s.auditable = a;
        }
        if let Some(p) = layer.provenance {
            s.provenance = p;
        }
        if let Some(b) = layer.assets_outside_workspace {
            s.assets_outside_workspace = b;
        }
        if let Some(c) = layer.compose {
            s.compose = c;
        }
        if let Some(h) = &layer.health_check {
            if h.is_empty() || h.iter().any(|a| a.contains('\0')) {
                return Err(source.error(
                    "health-check",
                    "expected the binary's health-check arguments, e.g. [\"--health-check\"]",
                ));
            }
            s.health_check = Some(h.clone());
        }
        if let Some(r) = &layer.repository {
            s.repository = Some((r.clone(), source.clone()));
        }
        if let Some(p) = &layer.platforms {
            s.platforms =
                parse_platforms(p).map_err(|e| source.error("platforms", e.to_string()))?;
            if s.platforms.is_empty() {
                return Err(source.error("platforms", "the list is empty"));
            }
        }
    }
    if let Some(p) = cli_platforms {
        s.platforms = p.to_vec();
    }
    s.exposed_ports.sort();
    s.exposed_ports.dedup();
    let kube_layers: Vec<_> = layers
        .iter()
        .filter_map(|(l, src)| l.kubernetes.as_ref().map(|k| (k, src)))
        .collect();
    s.kubernetes = crate::config::kube::resolve(&kube_layers, &s.exposed_ports)?;
    let audit_layers: Vec<_> = layers
        .iter()
        .filter_map(|(l, src)| l.audit.as_ref().map(|a| (a, src)))
        .collect();
    s.audit = crate::config::audit::resolve(&audit_layers)?;
    if let Some((dir, dest)) = &mut s.assets {
        *dest = assets_dest.unwrap_or_else(|| {
            let name = dir.trim_end_matches('/').rsplit('/').next().unwrap_or(dir);
            format!("{APP_DIR}/{name}")
        });
    } else if assets_dest.is_some() {
        let src = layers
            .last()
            .map(|l| l.1.clone())
            .unwrap_or(Source::Default);
        return Err(src.error("assets-dest", "is set but `assets` is not"));
    }
    Ok(s)
}

pub(crate) fn validate_user(u: &str) -> Result<(), String> {
    let ok = |part: &str| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
    };
    let mut parts = u.split(':');
    let user = parts.next().unwrap_or_default();
    let group = parts.next();
    if parts.next().is_some() || !ok(user) || group.is_some_and(|g| !ok(g)) {
        return Err(format!("`{u}` is not `uid[:gid]` or `name[:group]`"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pkg(v: Value) -> Result<PackageConfig, ConfigError> {
        parse_package_config(&json!({ "containerize": v }), "crates/api/Cargo.toml")
    }

    #[test]
    fn unknown_key_names_key_table_and_file() {
        let err = pkg(json!({ "expose": [8080] })).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown key `expose` in [package.metadata.containerize] of crates/api/Cargo.toml"
        );
        let help = miette::Diagnostic::help(&err).unwrap().to_string();
        assert!(help.contains("expected one of: `args`, `env`"), "{help}");
        assert!(help.contains("`exposed-ports`"), "{help}");
    }

    /// Issue 17: a misspelt table is not silently ignored.
    #[test]
    fn r17_misspelt_tables_warn() {
        let src = Source::Package("crates/api/Cargo.toml".into());
        let meta =
            json!({ "containerise": {}, "containerize-api": {}, "docs": {}, "containerize": {} });
        let warnings = misspelt_tables(&meta, &src);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].starts_with("unused table [package.metadata.containerise] in crates/api/Cargo.toml\nhelp: did you mean [package.metadata.containerize]?"), "{warnings:?}");
        assert!(misspelt_tables(&json!({ "containerzie": 1, "container": {} }), &src).len() == 1);
    }

    /// Issue 17: a near miss gets a suggestion, in the table the key is in.
    #[test]
    fn r17_unknown_keys_suggest_the_nearest_valid_one() {
        let err = pkg(json!({ "exposed_ports": [8080] })).unwrap_err();
        let help = miette::Diagnostic::help(&err).unwrap().to_string();
        assert!(help.starts_with("did you mean `exposed-ports`?"), "{help}");
        let err = pkg(json!({ "kubernetes": { "replica": 2 } })).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown key `replica` in [package.metadata.containerize.kubernetes] of crates/api/Cargo.toml"
        );
        let help = miette::Diagnostic::help(&err).unwrap().to_string();
        assert!(help.starts_with("did you mean `replicas`?"), "{help}");
    }

    /// Issue 17: types are named as TOML names them.
    #[test]
    fn r17_wrong_types_use_toml_names() {
        let err = pkg(json!({ "args": "serve" })).unwrap_err().to_string();
        assert!(
            err.ends_with("expected an array of strings, found string \"serve\""),
            "{err}"
        );
        let err = pkg(json!({ "kubernetes": { "replicas": "2" } }))
            .unwrap_err()
            .to_string();
        assert!(!err.contains("i32") && !err.contains("i64"), "{err}");
        assert!(err.contains("expected an integer"), "{err}");
    }

    #[test]
    fn wrong_type_in_bin_table_names_the_path() {
        let err = pkg(json!({ "bin": { "api": { "exposed-ports": [8080, 70000] } } }))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "invalid `exposed-ports[1]` in [package.metadata.containerize.bin.api] of crates/api/Cargo.toml: port 70000 is out of range 1-65535"
        );
        let err = pkg(json!({ "env": ["A=1"] })).unwrap_err().to_string();
        assert!(err.contains("invalid `env`"), "{err}");
    }

    /// Issue 20, item 11: values no container runtime can use are refused, naming the key.
    #[test]
    fn r20_values_a_runtime_cannot_use_are_refused_naming_the_key() {
        let resolve = |v: Value| {
            let cfg = pkg(v).unwrap();
            resolve_image(
                &[(
                    &cfg.package,
                    Source::Package("crates/api/Cargo.toml".into()),
                )],
                None,
            )
            .map(|_| ())
            .map_err(|e| e.to_string())
        };
        for (table, key, said) in [
            (json!({ "env": { "A\nB": "x" } }), "`env.A\\nB`", "newline"),
            (json!({ "env": { "A": "x\u{0}y" } }), "`env.A`", "NUL"),
            (
                json!({ "args": ["serve", "a\u{0}b"] }),
                "`args`",
                "argument 2",
            ),
            (json!({ "labels": { "": "x" } }), "`labels`", "empty key"),
            (
                json!({ "annotations": { " ": "x" } }),
                "`annotations`",
                "empty key",
            ),
            (
                json!({ "assets": "static", "assets-dest": "/" }),
                "`assets-dest`",
                "root",
            ),
            (
                json!({ "assets": "static", "assets-dest": "//" }),
                "`assets-dest`",
                "root",
            ),
        ] {
            let err = resolve(table.clone()).unwrap_err();
            assert!(err.contains(key) && err.contains(said), "{table}: {err}");
            assert!(err.contains("crates/api/Cargo.toml"), "{err}");
        }
        // What runtimes do take is kept.
        resolve(json!({ "env": { "A": "multi\nline" }, "args": ["a b"] })).unwrap();
        resolve(json!({ "assets": "static", "assets-outside-workspace": true })).unwrap();
    }

    #[test]
    fn layers_merge_with_precedence_and_maps_extend() {
        let ws = ImageLayer {
            env: Some([("A".into(), "ws".into()), ("B".into(), "ws".into())].into()),
            platforms: Some(vec!["all".into()]),
            user: Some("1000".into()),
            ..Default::default()
        };
        let cfg = pkg(json!({
            "env": { "A": "pkg" },
            "exposed-ports": ["9090/udp", 8080],
            "assets": "static",
            "bin": { "api": { "args": ["serve"], "user": "65532:65532" } }
        }))
        .unwrap();
        let m = "Cargo.toml".to_string();
        let s = resolve_image(
            &[
                (&ws, Source::Workspace(m.clone())),
                (&cfg.package, Source::Package(m.clone())),
                (&cfg.bins["api"], Source::Bin(m, "api".into())),
            ],
            None,
        )
        .unwrap();
        assert_eq!(s.env["A"], "pkg");
        assert_eq!(s.env["B"], "ws");
        assert_eq!(s.args, ["serve"]);
        assert_eq!(s.user, "65532:65532");
        assert_eq!(s.platforms, Platform::ALL);
        assert_eq!(s.exposed_ports[0].to_string(), "8080/tcp");
        assert_eq!(s.exposed_ports[1].to_string(), "9090/udp");
        assert_eq!(s.assets, Some(("static".into(), "/app/static".into())));

        let cli = resolve_image(
            &[(&ws, Source::Workspace("Cargo.toml".into()))],
            Some(&[Platform::LinuxArm64]),
        )
        .unwrap();
        assert_eq!(cli.platforms, [Platform::LinuxArm64]);
    }

    #[test]
    fn bad_values_name_their_source() {
        let layer = ImageLayer {
            platforms: Some(vec!["windows/amd64".into()]),
            ..Default::default()
        };
        let err = resolve_image(&[(&layer, Source::Workspace("Cargo.toml".into()))], None)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "invalid `platforms` in [workspace.metadata.containerize] of Cargo.toml: unsupported platform `windows/amd64` (supported: linux/amd64, linux/arm64, all)"
        );
        let layer = ImageLayer {
            workdir: Some("app".into()),
            ..Default::default()
        };
        assert!(
            resolve_image(&[(&layer, Source::Package("a/Cargo.toml".into()))], None)
                .unwrap_err()
                .to_string()
                .contains("`app` is not an absolute path")
        );
    }

    #[test]
    fn base_is_a_workspace_key_only() {
        let layer = ImageLayer {
            base: Some("gcr.io/distroless/static:nonroot".into()),
            ..Default::default()
        };
        assert!(resolve_image(&[(&layer, Source::Workspace("Cargo.toml".into()))], None).is_ok());
        let err = resolve_image(&[(&layer, Source::Package("a/Cargo.toml".into()))], None)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("invalid `base` in [package.metadata.containerize] of a/Cargo.toml")
                && err.contains("[workspace.metadata.containerize]"),
            "{err}"
        );
    }
}
