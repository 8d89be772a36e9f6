//! [`Workload`] → [`Pieces`]: the names, labels, ports, probes, security settings and
//! volumes of one image's objects, decided once. `render` builds the objects from them,
//! and templates see the same values, so both give the same objects.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DeploymentStrategy, RollingUpdateDeployment};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapEnvSource, ConfigMapVolumeSource, Container, ContainerPort,
    EmptyDirVolumeSource, EnvFromSource, EnvVar, EnvVarSource, HTTPGetAction, PodSecurityContext,
    Probe, ResourceFieldSelector, ResourceRequirements, SeccompProfile, SecretEnvSource,
    SecretVolumeSource, SecurityContext, TCPSocketAction, TopologySpreadConstraint, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;

use super::KubeError;
use crate::config::kube::{FileVolume, IntOrPercent, KubeSettings, ProbeSettings, dns_label};

/// The name of the container port the Service and the probes point at.
pub const HTTP_PORT_NAME: &str = "http";
/// Label keys of the Kubernetes recommended labels
/// (<https://kubernetes.io/docs/concepts/overview/working-with-objects/common-labels/>).
pub mod labels {
    /// The application's name; stable, in the selector.
    pub const NAME: &str = "app.kubernetes.io/name";
    /// This instance of it; stable, in the selector.
    pub const INSTANCE: &str = "app.kubernetes.io/instance";
    /// The crate version; changes every release, so never in the selector.
    pub const VERSION: &str = "app.kubernetes.io/version";
    /// `server`, `worker`, ...
    pub const COMPONENT: &str = "app.kubernetes.io/component";
    /// The larger application (the package).
    pub const PART_OF: &str = "app.kubernetes.io/part-of";
    /// The tool that wrote the YAML.
    pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
    /// The Pod Security Standard a Namespace enforces
    /// (<https://kubernetes.io/docs/concepts/security/pod-security-admission/>).
    pub const POD_SECURITY_ENFORCE: &str = "pod-security.kubernetes.io/enforce";
}
/// Mode of Secret and ConfigMap files: read by the owner and the pod's group, nobody else.
pub const FILE_MODE: i32 = 0o440;
/// The uid and gid of the built-in base's `nonroot` user.
pub const NONROOT_ID: i64 = 65532;

/// One image to write YAML for: plain values, so tests build a literal.
#[derive(Debug, Clone)]
pub struct Workload<'a> {
    /// Image name (the binary, lowercased).
    pub image_name: &'a str,
    /// Package name.
    pub package: &'a str,
    /// Package version.
    pub version: &'a str,
    /// The image's `user` (`uid[:gid]` or a name).
    pub user: &'a str,
    /// The `image:` value: a pushed `registry/repo@sha256:…`, or the local reference.
    pub image: &'a str,
    /// Resolved settings.
    pub settings: &'a KubeSettings,
}

/// The Service as templates see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServicePieces {
    /// `ClusterIP`, `NodePort`, `LoadBalancer`.
    #[serde(rename = "type")]
    pub type_: String,
    /// The Service port.
    pub port: i32,
}

/// The parts the objects are assembled from; the context of templates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pieces {
    /// Object and container name.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: Option<String>,
    /// The container image reference.
    pub image: String,
    /// Labels of every object and of the pods.
    pub labels: BTreeMap<String, String>,
    /// The stable subset of `labels` used by selectors.
    pub selector: BTreeMap<String, String>,
    /// Object annotations.
    pub annotations: BTreeMap<String, String>,
    /// Pod template annotations (Prometheus, user's).
    pub pod_annotations: BTreeMap<String, String>,
    /// `spec.replicas`; `None` when an autoscaler owns it.
    pub replicas: Option<i32>,
    /// `spec.revisionHistoryLimit`.
    pub revision_history_limit: i32,
    /// `spec.strategy`.
    pub strategy: DeploymentStrategy,
    /// `terminationGracePeriodSeconds`.
    pub termination_grace_period_seconds: i64,
    /// The pod's securityContext.
    pub security_context: PodSecurityContext,
    /// The one container.
    pub container: Container,
    /// Pod volumes (the `/tmp` emptyDir).
    pub volumes: Vec<Volume>,
    /// Spread over nodes, when there is more than one pod.
    pub topology_spread_constraints: Option<Vec<TopologySpreadConstraint>>,
    /// The Service, if any.
    pub service: Option<ServicePieces>,
}

/// The Kubernetes object name of an image: its name with `_` and `.` (valid in image names,
/// not in Service names) turned into `-`, or the `kubernetes.name` override.
pub fn object_name(w: &Workload) -> Result<String, KubeError> {
    if let Some(n) = &w.settings.name {
        return Ok(n.clone());
    }
    let name = w.image_name.replace(['_', '.'], "-");
    dns_label(&name).map_err(|message| KubeError::Name {
        image: w.image_name.to_string(),
        message,
    })?;
    Ok(name)
}

/// A label value from free text: invalid characters become `_`, trimmed to 63.
fn label_safe(v: &str) -> String {
    let s: String = v
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(63)
        .collect();
    s.trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// `uid[:gid]` of the image user, for runAsUser/runAsGroup.
fn ids(w: &Workload) -> Result<(i64, i64), KubeError> {
    let (uid, gid) = match w.user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (w.user, None),
    };
    let num = |s: &str| match s {
        "nonroot" => Some(NONROOT_ID),
        "root" => Some(0),
        n => n.parse::<i64>().ok(),
    };
    match (num(uid), gid.map(num)) {
        (Some(0), _) | (_, Some(Some(0))) => Err(KubeError::RootUser {
            image: w.image_name.to_string(),
        }),
        (Some(u), None) => Ok((u, u)),
        (Some(u), Some(Some(g))) => Ok((u, g)),
        _ => Err(KubeError::NamedUser {
            image: w.image_name.to_string(),
            user: w.user.to_string(),
        }),
    }
}

pub(crate) fn int_or_string(v: &IntOrPercent) -> IntOrString {
    match v {
        IntOrPercent::Int(n) => IntOrString::Int(*n),
        IntOrPercent::Percent(p) => IntOrString::String(p.clone()),
    }
}

fn probe(p: &ProbeSettings) -> Probe {
    let port = p
        .port
        .map_or(IntOrString::String(HTTP_PORT_NAME.into()), |n| {
            IntOrString::Int(i32::from(n))
        });
    let (http_get, tcp_socket) = match &p.path {
        Some(path) => (
            Some(HTTPGetAction {
                path: Some(path.clone()),
                port,
                ..Default::default()
            }),
            None,
        ),
        None => (
            None,
            Some(TCPSocketAction {
                port,
                ..Default::default()
            }),
        ),
    };
    Probe {
        http_get,
        tcp_socket,
        initial_delay_seconds: p.initial_delay_seconds,
        period_seconds: Some(p.period_seconds),
        timeout_seconds: Some(p.timeout_seconds),
        failure_threshold: Some(p.failure_threshold),
        ..Default::default()
    }
}

/// Computes the pieces of one image's objects.
pub fn pieces(w: &Workload) -> Result<Pieces, KubeError> {
    let s = w.settings;
    let name = object_name(w)?;
    let (uid, gid) = ids(w)?;

    let mut selector = BTreeMap::new();
    selector.insert(labels::NAME.to_string(), name.clone());
    selector.insert(labels::INSTANCE.to_string(), name.clone());
    let mut all = s.labels.clone();
    all.extend(selector.clone());
    let version = label_safe(w.version);
    if !version.is_empty() {
        all.insert(labels::VERSION.into(), version);
    }
    let component = s
        .component
        .clone()
        .unwrap_or_else(|| if s.port.is_some() { "server" } else { "worker" }.to_string());
    all.insert(labels::COMPONENT.into(), component);
    let part_of = s.part_of.clone().unwrap_or_else(|| label_safe(w.package));
    if !part_of.is_empty() {
        all.insert(labels::PART_OF.into(), part_of);
    }
    all.insert(labels::MANAGED_BY.into(), crate::TOOL_NAME.into());

    let mut pod_annotations = s.pod_annotations.clone();
    if let Some(m) = &s.metrics {
        pod_annotations.insert("prometheus.io/scrape".into(), "true".into());
        pod_annotations.insert("prometheus.io/port".into(), m.port.to_string());
        pod_annotations.insert("prometheus.io/path".into(), m.path.clone());
    }

    // Ports: `http` first, then the other declared ports, then a separate metrics port.
    let mut ports = Vec::new();
    let mut port_numbers = Vec::new();
    let mut push_port = |ports: &mut Vec<ContainerPort>, number: u16, udp: bool, pname: String| {
        if !port_numbers.contains(&(number, udp)) {
            port_numbers.push((number, udp));
            ports.push(ContainerPort {
                name: Some(pname),
                container_port: i32::from(number),
                protocol: Some(if udp { "UDP" } else { "TCP" }.into()),
                ..Default::default()
            });
        }
    };
    if let Some(p) = s.port {
        push_port(&mut ports, p, false, HTTP_PORT_NAME.into());
    }
    if let Some(m) = &s.metrics {
        push_port(&mut ports, m.port, false, "metrics".into());
    }
    for p in &s.exposed_ports {
        let prefix = if p.udp { "udp" } else { "tcp" };
        push_port(
            &mut ports,
            p.number,
            p.udp,
            format!("{prefix}-{}", p.number),
        );
    }

    let mut env: Vec<EnvVar> = s
        .env
        .iter()
        .map(|(k, v)| EnvVar {
            name: k.clone(),
            value: Some(v.clone()),
            ..Default::default()
        })
        .collect();
    if let Some(var) = &s.cpu_env {
        // Whole cores (divisor 1 rounds up), from the limit when there is one.
        let resource = if s.resources.cpu_limit.is_some() {
            "limits.cpu"
        } else {
            "requests.cpu"
        };
        env.retain(|e| &e.name != var);
        env.push(EnvVar {
            name: var.clone(),
            value_from: Some(EnvVarSource {
                resource_field_ref: Some(ResourceFieldSelector {
                    container_name: Some(name.clone()),
                    resource: resource.into(),
                    divisor: Some(Quantity("1".into())),
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
        env.sort_by(|a, b| a.name.cmp(&b.name));
    }
    let env_from: Vec<EnvFromSource> = s
        .env_from_config_maps
        .iter()
        .map(|n| EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource {
                name: n.clone(),
                optional: None,
            }),
            ..Default::default()
        })
        .chain(s.env_from_secrets.iter().map(|n| EnvFromSource {
            secret_ref: Some(SecretEnvSource {
                name: n.clone(),
                optional: None,
            }),
            ..Default::default()
        }))
        .collect();

    let quantities = |cpu: &Option<String>, memory: &Option<String>| {
        let mut m = BTreeMap::new();
        if let Some(c) = cpu {
            m.insert("cpu".to_string(), Quantity(c.clone()));
        }
        if let Some(mem) = memory {
            m.insert("memory".to_string(), Quantity(mem.clone()));
        }
        (!m.is_empty()).then_some(m)
    };
    let r = &s.resources;
    let resources = ResourceRequirements {
        requests: quantities(&r.cpu_request, &r.memory_request),
        limits: quantities(&r.cpu_limit, &r.memory_limit),
        ..Default::default()
    };

    // `/tmp` (the only writable place), then each Secret and ConfigMap as read-only files.
    let mut volumes = vec![Volume {
        name: "tmp".into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    }];
    let mut mounts = vec![VolumeMount {
        name: "tmp".into(),
        mount_path: "/tmp".into(),
        ..Default::default()
    }];
    let file_volumes: Vec<(&str, &FileVolume)> = s
        .secret_volumes
        .iter()
        .map(|v| ("secret", v))
        .chain(s.config_map_volumes.iter().map(|v| ("config", v)))
        .collect();
    for (i, (kind, v)) in file_volumes.iter().enumerate() {
        let readable = format!("{kind}-{}", v.name.replace('.', "-"));
        let vname = if dns_label(&readable).is_ok() {
            readable
        } else {
            format!("{kind}-{i}")
        };
        volumes.push(Volume {
            name: vname.clone(),
            secret: (*kind == "secret").then(|| SecretVolumeSource {
                secret_name: Some(v.name.clone()),
                default_mode: Some(FILE_MODE),
                ..Default::default()
            }),
            config_map: (*kind == "config").then(|| ConfigMapVolumeSource {
                name: v.name.clone(),
                default_mode: Some(FILE_MODE),
                ..Default::default()
            }),
            ..Default::default()
        });
        mounts.push(VolumeMount {
            name: vname,
            mount_path: v.mount.clone(),
            read_only: Some(true),
            ..Default::default()
        });
    }

    let container = Container {
        name: name.clone(),
        image: Some(w.image.to_string()),
        image_pull_policy: Some("IfNotPresent".into()),
        ports: (!ports.is_empty()).then_some(ports),
        env: (!env.is_empty()).then_some(env),
        env_from: (!env_from.is_empty()).then_some(env_from),
        resources: Some(resources),
        liveness_probe: s.probes.liveness.as_ref().map(probe),
        readiness_probe: s.probes.readiness.as_ref().map(probe),
        startup_probe: s.probes.startup.as_ref().map(probe),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                add: None,
            }),
            ..Default::default()
        }),
        // Crash output shows in `kubectl describe` even without a termination log file.
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        volume_mounts: Some(mounts),
        ..Default::default()
    };

    // Two replicas on one node survive a rollout but not the node (the PDB cannot help
    // there). ScheduleAnyway: a one-node cluster still runs every replica.

    let deployment = s.workload == crate::config::kube::Workload::Deployment;
    let spread = (deployment && (s.replicas > 1 || s.autoscaling.is_some())).then(|| {
        vec![TopologySpreadConstraint {
            max_skew: 1,
            topology_key: "kubernetes.io/hostname".into(),
            when_unsatisfiable: "ScheduleAnyway".into(),
            label_selector: Some(LabelSelector {
                match_labels: Some(selector.clone()),
                ..Default::default()
            }),
            // Counted per ReplicaSet, so a rollout spreads the new pods too.
            match_label_keys: Some(vec!["pod-template-hash".into()]),
            ..Default::default()
        }]
    });

    Ok(Pieces {
        name,
        namespace: s.namespace.clone(),
        image: w.image.to_string(),
        labels: all,
        selector,
        annotations: s.annotations.clone(),
        pod_annotations,
        replicas: s.autoscaling.is_none().then_some(s.replicas),
        revision_history_limit: s.revision_history_limit,
        strategy: DeploymentStrategy {
            type_: Some("RollingUpdate".into()),
            rolling_update: Some(RollingUpdateDeployment {
                max_surge: Some(int_or_string(&s.max_surge)),
                max_unavailable: Some(int_or_string(&s.max_unavailable)),
            }),
        },
        termination_grace_period_seconds: s.termination_grace_period_seconds,
        security_context: PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(uid),
            run_as_group: Some(gid),
            // Secret and ConfigMap files are root-owned unless the pod has an fsGroup: with
            // it they belong to the app's group, which mode 0440 lets read.
            fs_group: (!file_volumes.is_empty()).then_some(gid),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                localhost_profile: None,
            }),
            ..Default::default()
        },
        container,
        volumes,
        topology_spread_constraints: spread,
        service: s.service.as_ref().map(|svc| ServicePieces {
            type_: svc.type_.clone(),
            port: i32::from(svc.port),
        }),
    })
}
