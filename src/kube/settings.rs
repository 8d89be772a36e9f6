//! `[*.metadata.containerize.kubernetes]` layers → [`KubeSettings`] for one image.
//!
//! Same two steps as `config`: raw layers with all-`Option` fields ([`KubeLayer`]) are
//! validated one by one against the table they came from (so an error names the key and the
//! `Cargo.toml`), then overlaid (workspace < package < bin) onto the defaults of issue 5.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use crate::config::{ConfigError, Port, Source};

/// Replicas: two, so a rolling update or a node drain never takes the service down.
pub const DEFAULT_REPLICAS: i32 = 2;
/// Old ReplicaSets kept for `kubectl rollout undo`; the API default (10) mostly adds clutter.
pub const DEFAULT_REVISION_HISTORY_LIMIT: i32 = 5;
/// The API default, written out so it is visible and reviewable.
pub const DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS: i64 = 30;
/// Container port used when something needs a port but none is declared.
pub const DEFAULT_PORT: u16 = 8080;
/// The Service's port (the conventional HTTP port, mapped to the container's `http`).
pub const DEFAULT_SERVICE_PORT: u16 = 80;
/// Requests that schedule a small service anywhere.
pub const DEFAULT_CPU_REQUEST: &str = "100m";
/// See [`DEFAULT_CPU_REQUEST`].
pub const DEFAULT_MEMORY_REQUEST: &str = "128Mi";
/// A memory limit bounds a leak to one pod; no CPU limit by default (throttling hurts tail
/// latency more than it protects neighbours, which requests already do).
pub const DEFAULT_MEMORY_LIMIT: &str = "512Mi";

/// An integer or a percentage (`1`, `"25%"`), as `maxSurge` and PDB budgets take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntOrPercent {
    /// An absolute number of pods.
    Int(i32),
    /// `"25%"`, kept as written.
    Percent(String),
}

impl<'de> Deserialize<'de> for IntOrPercent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = IntOrPercent;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number of pods (0 or more) or a percentage like \"25%\"")
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<IntOrPercent, E> {
                i32::try_from(n)
                    .ok()
                    .filter(|n| *n >= 0)
                    .map(IntOrPercent::Int)
                    .ok_or_else(|| E::custom(format!("{n} is not a number of pods (0 or more)")))
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<IntOrPercent, E> {
                self.visit_i64(i64::try_from(n).unwrap_or(i64::MAX))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<IntOrPercent, E> {
                match s.strip_suffix('%').map(str::parse::<u8>) {
                    Some(Ok(p)) if p <= 100 => Ok(IntOrPercent::Percent(s.to_string())),
                    _ => Err(E::custom(format!(
                        "\"{s}\" is not a percentage like \"25%\" (0-100)"
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// `[…containerize.kubernetes]` as written. Every field is optional; absent means
/// "inherit from the lower layer, else the default".
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KubeLayer {
    /// `false` writes no YAML for this image.
    pub enabled: Option<bool>,
    /// Object and container name (default: the image name with `_`/`.` turned into `-`).
    pub name: Option<String>,
    /// `metadata.namespace` (default: none, so `kubectl -n` decides).
    pub namespace: Option<String>,
    /// `app.kubernetes.io/component` (default `server` with a port, else `worker`).
    pub component: Option<String>,
    /// `app.kubernetes.io/part-of` (default: the package name).
    pub part_of: Option<String>,
    /// Extra labels on every object and pod (merged across layers).
    pub labels: Option<BTreeMap<String, String>>,
    /// Extra annotations on every object (merged across layers).
    pub annotations: Option<BTreeMap<String, String>>,
    /// Annotations on the pod template (merged across layers).
    pub pod_annotations: Option<BTreeMap<String, String>>,
    /// `spec.replicas` (ignored when autoscaling, which owns the count).
    pub replicas: Option<i64>,
    /// `spec.revisionHistoryLimit`.
    pub revision_history_limit: Option<i64>,
    /// `terminationGracePeriodSeconds`.
    pub termination_grace_period_seconds: Option<i64>,
    /// RollingUpdate `maxSurge`.
    pub max_surge: Option<IntOrPercent>,
    /// RollingUpdate `maxUnavailable`.
    pub max_unavailable: Option<IntOrPercent>,
    /// The container port named `http` (default: the first TCP `exposed-ports` entry).
    pub port: Option<i64>,
    /// The Service.
    pub service: Option<ServiceLayer>,
    /// Liveness, readiness and startup probes (none unless declared).
    pub probes: Option<ProbesLayer>,
    /// Requests and limits.
    pub resources: Option<ResourcesLayer>,
    /// Environment variables set by the pod (merged across layers; on top of the image's).
    pub env: Option<BTreeMap<String, String>>,
    /// ConfigMaps whose keys become environment variables (`envFrom`), by name.
    pub env_from_config_maps: Option<Vec<String>>,
    /// Secrets whose keys become environment variables (`envFrom`), by name.
    pub env_from_secrets: Option<Vec<String>>,
    /// A variable set to the CPU budget in whole cores (e.g. `TOKIO_WORKER_THREADS`).
    pub cpu_env: Option<String>,
    /// Prometheus scrape annotations.
    pub metrics: Option<MetricsLayer>,
    /// A HorizontalPodAutoscaler (autoscaling/v2, CPU target).
    pub autoscaling: Option<AutoscalingLayer>,
    /// A PodDisruptionBudget.
    pub disruption_budget: Option<DisruptionBudgetLayer>,
    /// An Ingress to the Service.
    pub ingress: Option<IngressLayer>,
    /// A directory of templates (`deployment.yaml`, `service.yaml`) replacing the built-in
    /// ones, relative to the Cargo.toml that sets it.
    pub templates: Option<String>,
}

/// `kubernetes.service`.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServiceLayer {
    /// `false`: no Service even with a port.
    pub enabled: Option<bool>,
    /// `ClusterIP`, `NodePort` or `LoadBalancer`.
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// The Service port (default 80).
    pub port: Option<i64>,
}

/// `kubernetes.probes`.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProbesLayer {
    /// Restarts the container when it fails (e.g. `/healthz`).
    pub liveness: Option<ProbeLayer>,
    /// Takes the pod out of the Service when it fails (e.g. `/readyz`).
    pub readiness: Option<ProbeLayer>,
    /// Holds the other probes back until the app has started (for slow starters).
    pub startup: Option<ProbeLayer>,
}

/// One probe: an HTTP GET of `path`, or a TCP connect without one.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProbeLayer {
    /// HTTP path; without it the probe is a TCP connect.
    pub path: Option<String>,
    /// Container port number (default: the `http` port).
    pub port: Option<i64>,
    /// `initialDelaySeconds` (default 0: use a startup probe for slow starters).
    pub initial_delay_seconds: Option<i64>,
    /// `periodSeconds`.
    pub period_seconds: Option<i64>,
    /// `timeoutSeconds`.
    pub timeout_seconds: Option<i64>,
    /// `failureThreshold`.
    pub failure_threshold: Option<i64>,
}

/// `kubernetes.resources`.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ResourcesLayer {
    /// `requests`.
    pub requests: Option<QuantitiesLayer>,
    /// `limits`.
    pub limits: Option<QuantitiesLayer>,
}

/// CPU and memory quantities (`"250m"`, `"1Gi"`; `"none"` removes a default limit).
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct QuantitiesLayer {
    /// CPU.
    pub cpu: Option<String>,
    /// Memory.
    pub memory: Option<String>,
}

/// `kubernetes.metrics`.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MetricsLayer {
    /// Port serving metrics (default: the `http` port).
    pub port: Option<i64>,
    /// Path (default `/metrics`).
    pub path: Option<String>,
}

/// `kubernetes.autoscaling`.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AutoscalingLayer {
    /// `false` turns off an autoscaler enabled by a lower layer.
    pub enabled: Option<bool>,
    /// Default: `replicas` (2).
    pub min_replicas: Option<i64>,
    /// Default 10.
    pub max_replicas: Option<i64>,
    /// Average CPU utilization target in percent of the request (default 80).
    pub cpu_utilization: Option<i64>,
}

/// `kubernetes.disruption-budget`.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DisruptionBudgetLayer {
    /// `false` turns off a budget enabled by a lower layer.
    pub enabled: Option<bool>,
    /// `minAvailable`.
    pub min_available: Option<IntOrPercent>,
    /// `maxUnavailable` (default 1 when neither is set).
    pub max_unavailable: Option<IntOrPercent>,
}

/// `kubernetes.ingress`.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct IngressLayer {
    /// `false` turns off an Ingress enabled by a lower layer.
    pub enabled: Option<bool>,
    /// Host name (required).
    pub host: Option<String>,
    /// Path prefix (default `/`).
    pub path: Option<String>,
    /// `ingressClassName`.
    pub class_name: Option<String>,
    /// A TLS Secret for the host (by name).
    pub tls_secret: Option<String>,
}

/// One resolved probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSettings {
    /// HTTP path, or `None` for a TCP probe.
    pub path: Option<String>,
    /// Port number; `None` means the `http` port (by name).
    pub port: Option<u16>,
    /// `initialDelaySeconds`, written only when set.
    pub initial_delay_seconds: Option<i32>,
    /// `periodSeconds`.
    pub period_seconds: i32,
    /// `timeoutSeconds`.
    pub timeout_seconds: i32,
    /// `failureThreshold`.
    pub failure_threshold: i32,
}

/// Resolved probes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probes {
    /// Liveness.
    pub liveness: Option<ProbeSettings>,
    /// Readiness.
    pub readiness: Option<ProbeSettings>,
    /// Startup.
    pub startup: Option<ProbeSettings>,
}

/// Resolved requests and limits (`None`: not written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    /// `requests.cpu`.
    pub cpu_request: Option<String>,
    /// `requests.memory`.
    pub memory_request: Option<String>,
    /// `limits.cpu`.
    pub cpu_limit: Option<String>,
    /// `limits.memory`.
    pub memory_limit: Option<String>,
}

/// The resolved Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSettings {
    /// `spec.type`.
    pub type_: String,
    /// The Service port.
    pub port: u16,
}

/// Resolved Prometheus scrape target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metrics {
    /// Port number.
    pub port: u16,
    /// Path.
    pub path: String,
}

/// Resolved autoscaler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Autoscaling {
    /// `minReplicas`.
    pub min_replicas: i32,
    /// `maxReplicas`.
    pub max_replicas: i32,
    /// Average CPU utilization target, percent.
    pub cpu_utilization: i32,
}

/// Resolved disruption budget: exactly one of the two.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisruptionBudget {
    /// `minAvailable`.
    MinAvailable(IntOrPercent),
    /// `maxUnavailable`.
    MaxUnavailable(IntOrPercent),
}

/// Resolved Ingress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingress {
    /// Host.
    pub host: String,
    /// Path prefix.
    pub path: String,
    /// `ingressClassName`.
    pub class_name: Option<String>,
    /// TLS Secret name.
    pub tls_secret: Option<String>,
}

/// Everything the Kubernetes YAML of one image needs from the metadata, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct KubeSettings {
    /// Write YAML for this image.
    pub enabled: bool,
    /// Object name override.
    pub name: Option<String>,
    /// `metadata.namespace`.
    pub namespace: Option<String>,
    /// `app.kubernetes.io/component` override.
    pub component: Option<String>,
    /// `app.kubernetes.io/part-of` override.
    pub part_of: Option<String>,
    /// Extra labels.
    pub labels: BTreeMap<String, String>,
    /// Extra object annotations.
    pub annotations: BTreeMap<String, String>,
    /// Pod template annotations.
    pub pod_annotations: BTreeMap<String, String>,
    /// `spec.replicas`.
    pub replicas: i32,
    /// `spec.revisionHistoryLimit`.
    pub revision_history_limit: i32,
    /// `terminationGracePeriodSeconds`.
    pub termination_grace_period_seconds: i64,
    /// RollingUpdate `maxSurge`.
    pub max_surge: IntOrPercent,
    /// RollingUpdate `maxUnavailable`.
    pub max_unavailable: IntOrPercent,
    /// The `http` container port, if the image serves one.
    pub port: Option<u16>,
    /// Every declared port (`exposed-ports`), sorted.
    pub exposed_ports: Vec<Port>,
    /// The Service, if any.
    pub service: Option<ServiceSettings>,
    /// Probes.
    pub probes: Probes,
    /// Requests and limits.
    pub resources: Resources,
    /// Pod environment.
    pub env: BTreeMap<String, String>,
    /// `envFrom` ConfigMaps.
    pub env_from_config_maps: Vec<String>,
    /// `envFrom` Secrets.
    pub env_from_secrets: Vec<String>,
    /// Variable receiving the CPU budget.
    pub cpu_env: Option<String>,
    /// Prometheus scraping.
    pub metrics: Option<Metrics>,
    /// HorizontalPodAutoscaler.
    pub autoscaling: Option<Autoscaling>,
    /// PodDisruptionBudget.
    pub disruption_budget: Option<DisruptionBudget>,
    /// Ingress.
    pub ingress: Option<Ingress>,
    /// Template directory as written, and the table that set it.
    pub templates: Option<(String, Source)>,
}

impl Default for KubeSettings {
    fn default() -> Self {
        KubeSettings {
            enabled: true,
            name: None,
            namespace: None,
            component: None,
            part_of: None,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            pod_annotations: BTreeMap::new(),
            replicas: DEFAULT_REPLICAS,
            revision_history_limit: DEFAULT_REVISION_HISTORY_LIMIT,
            termination_grace_period_seconds: DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS,
            max_surge: IntOrPercent::Int(1),
            max_unavailable: IntOrPercent::Int(0),
            port: None,
            exposed_ports: Vec::new(),
            service: None,
            probes: Probes::default(),
            resources: Resources {
                cpu_request: Some(DEFAULT_CPU_REQUEST.into()),
                memory_request: Some(DEFAULT_MEMORY_REQUEST.into()),
                cpu_limit: None,
                memory_limit: Some(DEFAULT_MEMORY_LIMIT.into()),
            },
            env: BTreeMap::new(),
            env_from_config_maps: Vec::new(),
            env_from_secrets: Vec::new(),
            cpu_env: None,
            metrics: None,
            autoscaling: None,
            disruption_budget: None,
            ingress: None,
            templates: None,
        }
    }
}

/// Overlays `Some` fields of `$from` onto `$into` (both layers of the same type).
macro_rules! overlay {
    ($into:expr, $from:expr; $($f:ident),+) => {
        { $( if let Some(v) = &$from.$f { $into.$f = Some(v.clone()); } )+ }
    };
}

fn nested<T: Clone + Default>(into: &mut Option<T>, from: &Option<T>, merge: impl Fn(&mut T, &T)) {
    if let Some(f) = from {
        merge(into.get_or_insert_with(T::default), f);
    }
}

/// Resolves the layers (lowest precedence first) of one image on top of the defaults.
/// `exposed_ports` are the image's resolved `exposed-ports`.
pub fn resolve(
    layers: &[(&KubeLayer, &Source)],
    exposed_ports: &[Port],
) -> Result<KubeSettings, ConfigError> {
    let mut s = KubeSettings {
        exposed_ports: exposed_ports.to_vec(),
        ..KubeSettings::default()
    };
    // The merged layer; maps extend key by key, everything else replaces.
    let mut m = KubeLayer::default();
    // Where the last `autoscaling`/`disruption-budget`/`ingress`/`service` came from, for
    // errors that involve several keys.
    let mut last = Source::Default;
    for (layer, source) in layers {
        validate_layer(layer, source)?;
        last = (*source).clone();
        overlay!(m, layer; enabled, name, namespace, component, part_of, replicas,
            revision_history_limit, termination_grace_period_seconds, max_surge,
            max_unavailable, port, env_from_config_maps, env_from_secrets, cpu_env);
        for (into, from) in [
            (&mut s.labels, &layer.labels),
            (&mut s.annotations, &layer.annotations),
            (&mut s.pod_annotations, &layer.pod_annotations),
            (&mut s.env, &layer.env),
        ] {
            if let Some(map) = from {
                into.extend(map.clone());
            }
        }
        nested(
            &mut m.service,
            &layer.service,
            |i, f| overlay!(i, f; enabled, type_, port),
        );
        nested(&mut m.probes, &layer.probes, |i, f| {
            for (into, from) in [
                (&mut i.liveness, &f.liveness),
                (&mut i.readiness, &f.readiness),
                (&mut i.startup, &f.startup),
            ] {
                nested(into, from, |i, f| {
                    overlay!(i, f; path, port, initial_delay_seconds, period_seconds,
                        timeout_seconds, failure_threshold)
                });
            }
        });
        nested(&mut m.resources, &layer.resources, |i, f| {
            for (into, from) in [(&mut i.requests, &f.requests), (&mut i.limits, &f.limits)] {
                nested(into, from, |i, f| overlay!(i, f; cpu, memory));
            }
        });
        nested(
            &mut m.metrics,
            &layer.metrics,
            |i, f| overlay!(i, f; port, path),
        );
        nested(
            &mut m.autoscaling,
            &layer.autoscaling,
            |i, f| overlay!(i, f; enabled, min_replicas, max_replicas, cpu_utilization),
        );
        nested(
            &mut m.disruption_budget,
            &layer.disruption_budget,
            |i, f| {
                // The two budgets exclude each other: a layer setting one drops the other.
                if f.min_available.is_some() || f.max_unavailable.is_some() {
                    i.min_available = f.min_available.clone();
                    i.max_unavailable = f.max_unavailable.clone();
                }
                overlay!(i, f; enabled)
            },
        );
        nested(
            &mut m.ingress,
            &layer.ingress,
            |i, f| overlay!(i, f; enabled, host, path, class_name, tls_secret),
        );
        if let Some(t) = &layer.templates {
            s.templates = Some((t.clone(), (*source).clone()));
        }
    }

    let int = |v: Option<i64>, default: i32| v.map_or(default, |v| v as i32);
    s.enabled = m.enabled.unwrap_or(true);
    s.name = m.name;
    s.namespace = m.namespace;
    s.component = m.component;
    s.part_of = m.part_of;
    s.replicas = int(m.replicas, DEFAULT_REPLICAS);
    s.revision_history_limit = int(m.revision_history_limit, DEFAULT_REVISION_HISTORY_LIMIT);
    s.termination_grace_period_seconds = m
        .termination_grace_period_seconds
        .unwrap_or(DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS);
    s.max_surge = m.max_surge.unwrap_or(IntOrPercent::Int(1));
    s.max_unavailable = m.max_unavailable.unwrap_or(IntOrPercent::Int(0));
    if s.max_surge == IntOrPercent::Int(0) && s.max_unavailable == IntOrPercent::Int(0) {
        return Err(last.error(
            "kubernetes.max-surge",
            "max-surge and max-unavailable are both 0, so a rollout could never make progress",
        ));
    }
    s.env_from_config_maps = m.env_from_config_maps.unwrap_or_default();
    s.env_from_secrets = m.env_from_secrets.unwrap_or_default();
    s.cpu_env = m.cpu_env;

    let service_layer = m.service.unwrap_or_default();
    let probes = m.probes.unwrap_or_default();
    let ingress = m.ingress.filter(|i| i.enabled != Some(false));
    let wants_port = service_layer.enabled == Some(true)
        || probes.liveness.is_some()
        || probes.readiness.is_some()
        || probes.startup.is_some()
        || ingress.is_some();
    let first_tcp = exposed_ports.iter().find(|p| !p.udp).map(|p| p.number);
    s.port = match m.port {
        Some(p) => Some(p as u16),
        None => first_tcp.or(wants_port.then_some(DEFAULT_PORT)),
    };
    if s.port.is_some() && service_layer.enabled != Some(false) {
        s.service = Some(ServiceSettings {
            type_: service_layer.type_.unwrap_or_else(|| "ClusterIP".into()),
            port: service_layer
                .port
                .map_or(DEFAULT_SERVICE_PORT, |p| p as u16),
        });
    }

    let probe = |p: Option<ProbeLayer>, startup: bool| {
        p.map(|p| ProbeSettings {
            path: p.path,
            port: p.port.map(|n| n as u16),
            initial_delay_seconds: p.initial_delay_seconds.map(|n| n as i32),
            // A startup probe checks often and for long (5 s × 60 = 5 minutes), so a slow
            // starter gets time without delaying a fast one.
            period_seconds: int(p.period_seconds, if startup { 5 } else { 10 }),
            timeout_seconds: int(p.timeout_seconds, 2),
            failure_threshold: int(p.failure_threshold, if startup { 60 } else { 3 }),
        })
    };
    s.probes = Probes {
        liveness: probe(probes.liveness, false),
        readiness: probe(probes.readiness, false),
        startup: probe(probes.startup, true),
    };

    let res = m.resources.unwrap_or_default();
    let (req, lim) = (
        res.requests.unwrap_or_default(),
        res.limits.unwrap_or_default(),
    );
    let pick = |v: Option<String>, default: Option<&str>| match v.as_deref() {
        Some("none") => None,
        Some(q) => Some(q.to_string()),
        None => default.map(String::from),
    };
    s.resources = Resources {
        cpu_request: pick(req.cpu, Some(DEFAULT_CPU_REQUEST)),
        memory_request: pick(req.memory, Some(DEFAULT_MEMORY_REQUEST)),
        cpu_limit: pick(lim.cpu, None),
        memory_limit: pick(lim.memory, Some(DEFAULT_MEMORY_LIMIT)),
    };

    s.metrics = match m.metrics {
        None => None,
        Some(mt) => {
            let port = mt.port.map(|p| p as u16).or(s.port).ok_or_else(|| {
                last.error(
                    "kubernetes.metrics.port",
                    "no port to scrape: set metrics.port, kubernetes.port or exposed-ports",
                )
            })?;
            Some(Metrics {
                port,
                path: mt.path.unwrap_or_else(|| "/metrics".into()),
            })
        }
    };

    s.autoscaling = match m.autoscaling.filter(|a| a.enabled != Some(false)) {
        None => None,
        Some(a) => {
            let min = int(a.min_replicas, s.replicas.max(1));
            let max = int(a.max_replicas, 10.max(min));
            if max < min {
                return Err(last.error(
                    "kubernetes.autoscaling.max-replicas",
                    format!("max-replicas ({max}) is below min-replicas ({min})"),
                ));
            }
            if s.resources.cpu_request.is_none() {
                return Err(last.error(
                    "kubernetes.autoscaling",
                    "a CPU utilization target needs a CPU request (resources.requests.cpu)",
                ));
            }
            Some(Autoscaling {
                min_replicas: min,
                max_replicas: max,
                cpu_utilization: int(a.cpu_utilization, 80),
            })
        }
    };

    s.disruption_budget = match m.disruption_budget.filter(|d| d.enabled != Some(false)) {
        None => None,
        Some(d) => Some(match (d.min_available, d.max_unavailable) {
            (Some(_), Some(_)) => {
                return Err(last.error(
                    "kubernetes.disruption-budget",
                    "set min-available or max-unavailable, not both",
                ));
            }
            (Some(n), None) => DisruptionBudget::MinAvailable(n),
            (None, n) => DisruptionBudget::MaxUnavailable(n.unwrap_or(IntOrPercent::Int(1))),
        }),
    };

    s.ingress = match ingress {
        None => None,
        Some(i) => {
            let Some(host) = i.host else {
                return Err(last.error("kubernetes.ingress.host", "an Ingress needs a host"));
            };
            if s.service.is_none() {
                return Err(last.error(
                    "kubernetes.ingress",
                    "an Ingress needs the Service (a port, and service.enabled not false)",
                ));
            }
            Some(Ingress {
                host,
                path: i.path.unwrap_or_else(|| "/".into()),
                class_name: i.class_name,
                tls_secret: i.tls_secret,
            })
        }
    };
    Ok(s)
}

/// Checks every value present in one layer, naming the key and the layer's table.
fn validate_layer(l: &KubeLayer, src: &Source) -> Result<(), ConfigError> {
    let err = |key: &str, msg: String| src.error(&format!("kubernetes.{key}"), msg);
    let range = |key: &str, v: Option<i64>, min: i64, max: i64| match v {
        Some(n) if n < min || n > max => Err(err(
            key,
            if n < 0 && min >= 0 {
                format!("{n} is negative; use a number from {min} to {max}")
            } else {
                format!("{n} is out of range {min}-{max}")
            },
        )),
        _ => Ok(()),
    };
    let port = |key: &str, v: Option<i64>| range(key, v, 1, 65535);
    let i32max = i64::from(i32::MAX);
    if let Some(n) = &l.name {
        dns_label(n).map_err(|m| err("name", m))?;
    }
    if let Some(n) = &l.namespace {
        dns_label(n).map_err(|m| err("namespace", m))?;
    }
    for (key, v) in [("component", &l.component), ("part-of", &l.part_of)] {
        if let Some(v) = v {
            label_value(v).map_err(|m| err(key, m))?;
        }
    }
    for (key, map, values) in [
        ("labels", &l.labels, true),
        ("annotations", &l.annotations, false),
        ("pod-annotations", &l.pod_annotations, false),
    ] {
        for (k, v) in map.iter().flatten() {
            qualified_key(k).map_err(|m| err(&format!("{key}.{k}"), m))?;
            if values {
                label_value(v).map_err(|m| err(&format!("{key}.{k}"), m))?;
            }
            if k.starts_with("app.kubernetes.io/") && values {
                return Err(err(
                    &format!("{key}.{k}"),
                    "the app.kubernetes.io/ labels are written by cargo containerize; use name, component or part-of".into(),
                ));
            }
        }
    }
    range("replicas", l.replicas, 0, i32max)?;
    range(
        "revision-history-limit",
        l.revision_history_limit,
        0,
        i32max,
    )?;
    range(
        "termination-grace-period-seconds",
        l.termination_grace_period_seconds,
        0,
        i64::MAX,
    )?;
    port("port", l.port)?;
    if let Some(svc) = &l.service {
        port("service.port", svc.port)?;
        if let Some(t) = &svc.type_
            && !matches!(t.as_str(), "ClusterIP" | "NodePort" | "LoadBalancer")
        {
            return Err(err(
                "service.type",
                format!("`{t}` is not one of ClusterIP, NodePort, LoadBalancer"),
            ));
        }
    }
    if let Some(p) = &l.probes {
        for (name, probe) in [
            ("liveness", &p.liveness),
            ("readiness", &p.readiness),
            ("startup", &p.startup),
        ] {
            let Some(probe) = probe else { continue };
            let key = |k: &str| format!("probes.{name}.{k}");
            if let Some(path) = &probe.path
                && (!path.starts_with('/') || path.chars().any(char::is_whitespace))
            {
                return Err(err(
                    &key("path"),
                    format!("`{path}` must be an absolute HTTP path like /healthz"),
                ));
            }
            port(&key("port"), probe.port)?;
            range(
                &key("initial-delay-seconds"),
                probe.initial_delay_seconds,
                0,
                i32max,
            )?;
            range(&key("period-seconds"), probe.period_seconds, 1, i32max)?;
            range(&key("timeout-seconds"), probe.timeout_seconds, 1, i32max)?;
            range(
                &key("failure-threshold"),
                probe.failure_threshold,
                1,
                i32max,
            )?;
        }
    }
    if let Some(r) = &l.resources {
        for (kind, q) in [("requests", &r.requests), ("limits", &r.limits)] {
            let Some(q) = q else { continue };
            for (res, v) in [("cpu", &q.cpu), ("memory", &q.memory)] {
                if let Some(v) = v
                    && v != "none"
                {
                    quantity(v).map_err(|m| err(&format!("resources.{kind}.{res}"), m))?;
                }
            }
        }
    }
    for (k, _) in l.env.iter().flatten() {
        env_name(k).map_err(|m| err(&format!("env.{k}"), m))?;
    }
    if let Some(v) = &l.cpu_env {
        env_name(v).map_err(|m| err("cpu-env", m))?;
    }
    for (key, names) in [
        ("env-from-config-maps", &l.env_from_config_maps),
        ("env-from-secrets", &l.env_from_secrets),
    ] {
        for (i, n) in names.iter().flatten().enumerate() {
            dns_subdomain(n).map_err(|m| err(&format!("{key}[{i}]"), m))?;
        }
    }
    if let Some(m) = &l.metrics {
        port("metrics.port", m.port)?;
        if let Some(p) = &m.path
            && !p.starts_with('/')
        {
            return Err(err("metrics.path", format!("`{p}` must start with /")));
        }
    }
    if let Some(a) = &l.autoscaling {
        range("autoscaling.min-replicas", a.min_replicas, 1, i32max)?;
        range("autoscaling.max-replicas", a.max_replicas, 1, i32max)?;
        range("autoscaling.cpu-utilization", a.cpu_utilization, 1, 1000)?;
    }
    if let Some(i) = &l.ingress {
        if let Some(h) = &i.host {
            dns_subdomain(h.strip_prefix("*.").unwrap_or(h)).map_err(|m| err("ingress.host", m))?;
        }
        if let Some(p) = &i.path
            && !p.starts_with('/')
        {
            return Err(err("ingress.path", format!("`{p}` must start with /")));
        }
        for (key, v) in [
            ("ingress.class-name", &i.class_name),
            ("ingress.tls-secret", &i.tls_secret),
        ] {
            if let Some(v) = v {
                dns_subdomain(v).map_err(|m| err(key, m))?;
            }
        }
    }
    if let Some(t) = &l.templates
        && (t.is_empty() || t.starts_with('/'))
    {
        return Err(err(
            "templates",
            format!("`{t}` must be a directory relative to this Cargo.toml"),
        ));
    }
    Ok(())
}

fn is_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// A DNS-1123 label (Service names, namespaces, container names): at most 63 lowercase
/// alphanumerics or `-`, starting with a letter (DNS-1035, which Service names need) and
/// ending with an alphanumeric.
pub fn dns_label(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.ends_with(is_alnum)
        && s.chars().all(|c| is_alnum(c) || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not a valid Kubernetes name (at most 63 lowercase letters, digits and `-`, starting with a letter)"
        ))
    }
}

/// A DNS-1123 subdomain (ConfigMap/Secret names, hosts).
pub fn dns_subdomain(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|p| {
            !p.is_empty()
                && p.starts_with(is_alnum)
                && p.ends_with(is_alnum)
                && p.chars().all(|c| is_alnum(c) || c == '-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not a valid DNS-1123 subdomain (lowercase letters, digits, `-` and `.`)"
        ))
    }
}

fn name_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A label or annotation key: `[prefix/]name`, prefix a DNS subdomain, name at most 63
/// alphanumerics, `-`, `_`, `.`.
pub fn qualified_key(k: &str) -> Result<(), String> {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    if name_part(name) && prefix.is_none_or(|p| dns_subdomain(p).is_ok()) {
        Ok(())
    } else {
        Err(format!(
            "`{k}` is not a valid key ([prefix/]name; name at most 63 letters, digits, `-`, `_`, `.`)"
        ))
    }
}

/// A label value: empty, or at most 63 alphanumerics, `-`, `_`, `.`, starting and ending
/// with an alphanumeric.
pub fn label_value(v: &str) -> Result<(), String> {
    if v.is_empty() || name_part(v) {
        Ok(())
    } else {
        Err(format!(
            "`{v}` is not a valid label value (at most 63 letters, digits, `-`, `_`, `.`, starting and ending with a letter or digit)"
        ))
    }
}

/// An environment variable name as Kubernetes accepts it: printable ASCII without `=`.
pub fn env_name(k: &str) -> Result<(), String> {
    if !k.is_empty() && k.chars().all(|c| c.is_ascii_graphic() && c != '=') {
        Ok(())
    } else {
        Err(format!("`{k}` is not a valid environment variable name"))
    }
}

/// A non-negative Kubernetes quantity: `100m`, `0.5`, `128Mi`, `1G`, `1e3`.
pub fn quantity(q: &str) -> Result<(), String> {
    let bad = || {
        Err(format!(
            "`{q}` is not a Kubernetes quantity (like 100m, 0.5, 128Mi, 1Gi)"
        ))
    };
    let num_end = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(num_end);
    let digits_ok = !num.is_empty()
        && num != "."
        && num.matches('.').count() <= 1
        && num.chars().any(|c| c.is_ascii_digit());
    let suffix_ok = matches!(
        suffix,
        "" | "Ki"
            | "Mi"
            | "Gi"
            | "Ti"
            | "Pi"
            | "Ei"
            | "n"
            | "u"
            | "m"
            | "k"
            | "M"
            | "G"
            | "T"
            | "P"
            | "E"
    ) || suffix
        .strip_prefix(['e', 'E'])
        .map(|e| e.strip_prefix(['+', '-']).unwrap_or(e))
        .is_some_and(|e| !e.is_empty() && e.chars().all(|c| c.is_ascii_digit()));
    if digits_ok && suffix_ok {
        Ok(())
    } else {
        bad()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(toml: serde_json::Value) -> KubeLayer {
        serde_json::from_value(toml).unwrap()
    }

    fn resolve_one(v: serde_json::Value, ports: &[Port]) -> Result<KubeSettings, String> {
        let l = layer(v);
        let src = Source::Package("Cargo.toml".into());
        resolve(&[(&l, &src)], ports).map_err(|e| e.to_string())
    }

    const HTTP: Port = Port {
        number: 8080,
        udp: false,
    };

    #[test]
    fn defaults_follow_issue_5() {
        let s = resolve_one(serde_json::json!({}), &[HTTP]).unwrap();
        assert_eq!(s.replicas, 2);
        assert_eq!(s.revision_history_limit, 5);
        assert_eq!(s.termination_grace_period_seconds, 30);
        assert_eq!(
            (s.max_surge, s.max_unavailable),
            (IntOrPercent::Int(1), IntOrPercent::Int(0))
        );
        assert_eq!(s.port, Some(8080));
        assert_eq!(
            s.service,
            Some(ServiceSettings {
                type_: "ClusterIP".into(),
                port: 80
            })
        );
        assert_eq!(s.probes, Probes::default());
        assert_eq!(s.resources.cpu_request.as_deref(), Some("100m"));
        assert_eq!(s.resources.memory_request.as_deref(), Some("128Mi"));
        assert_eq!(s.resources.memory_limit.as_deref(), Some("512Mi"));
        assert_eq!(s.resources.cpu_limit, None);
        assert!(s.autoscaling.is_none() && s.disruption_budget.is_none() && s.ingress.is_none());
    }

    #[test]
    fn no_port_means_no_service_unless_something_needs_one() {
        let s = resolve_one(serde_json::json!({}), &[]).unwrap();
        assert_eq!((s.port, s.service), (None, None));
        let s = resolve_one(
            serde_json::json!({ "probes": { "liveness": { "path": "/healthz" } } }),
            &[],
        )
        .unwrap();
        assert_eq!(s.port, Some(DEFAULT_PORT));
        let p = s.probes.liveness.unwrap();
        assert_eq!(
            (p.period_seconds, p.timeout_seconds, p.failure_threshold),
            (10, 2, 3)
        );
        let s = resolve_one(
            serde_json::json!({ "port": 9000, "service": { "enabled": false } }),
            &[HTTP],
        )
        .unwrap();
        assert_eq!((s.port, s.service), (Some(9000), None));
    }

    #[test]
    fn layers_overlay_field_by_field() {
        let ws = layer(serde_json::json!({
            "replicas": 3,
            "labels": { "team": "a" },
            "probes": { "liveness": { "path": "/healthz", "period-seconds": 20 } },
            "resources": { "limits": { "cpu": "1" } },
            "autoscaling": { "max-replicas": 5 }
        }));
        let bin = layer(serde_json::json!({
            "labels": { "tier": "b" },
            "probes": { "liveness": { "timeout-seconds": 5 } },
            "resources": { "limits": { "memory": "none" } },
            "autoscaling": { "enabled": false }
        }));
        let (a, b) = (
            Source::Workspace("Cargo.toml".into()),
            Source::Bin("api/Cargo.toml".into(), "api".into()),
        );
        let s = resolve(&[(&ws, &a), (&bin, &b)], &[HTTP]).unwrap();
        assert_eq!(s.replicas, 3);
        assert_eq!(s.labels.len(), 2);
        let p = s.probes.liveness.unwrap();
        assert_eq!(
            (p.path.as_deref(), p.period_seconds, p.timeout_seconds),
            (Some("/healthz"), 20, 5)
        );
        assert_eq!(s.resources.cpu_limit.as_deref(), Some("1"));
        assert_eq!(s.resources.memory_limit, None);
        assert_eq!(s.autoscaling, None);
    }

    #[test]
    fn bad_values_name_the_key_and_the_table() {
        let e = resolve_one(serde_json::json!({ "replicas": -1 }), &[]).unwrap_err();
        assert_eq!(
            e,
            "invalid `kubernetes.replicas` in [package.metadata.containerize] of Cargo.toml: -1 is negative; use a number from 0 to 2147483647"
        );
        let e = resolve_one(serde_json::json!({ "port": 70000 }), &[]).unwrap_err();
        assert!(
            e.contains("`kubernetes.port`") && e.contains("70000 is out of range 1-65535"),
            "{e}"
        );
        let e = resolve_one(
            serde_json::json!({ "resources": { "requests": { "cpu": "100mm" } } }),
            &[],
        )
        .unwrap_err();
        assert!(
            e.contains("`kubernetes.resources.requests.cpu`")
                && e.contains("`100mm` is not a Kubernetes quantity"),
            "{e}"
        );
        let e = resolve_one(serde_json::json!({ "name": "My_App" }), &[]).unwrap_err();
        assert!(e.contains("`kubernetes.name`"), "{e}");
        let e = resolve_one(serde_json::json!({ "labels": { "a": ": x" } }), &[]).unwrap_err();
        assert!(e.contains("`kubernetes.labels.a`"), "{e}");
        let e =
            resolve_one(serde_json::json!({ "ingress": { "path": "/" } }), &[HTTP]).unwrap_err();
        assert!(e.contains("an Ingress needs a host"), "{e}");
        let e = resolve_one(
            serde_json::json!({ "max-unavailable": 0, "max-surge": 0 }),
            &[],
        )
        .unwrap_err();
        assert!(e.contains("never make progress"), "{e}");
    }

    #[test]
    fn unknown_probe_keys_and_bad_percentages_are_rejected_by_serde() {
        let e = serde_json::from_value::<KubeLayer>(serde_json::json!({
            "probes": { "liveness": { "pth": "/healthz" } }
        }))
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown field `pth`"), "{e}");
        let e = serde_json::from_value::<KubeLayer>(serde_json::json!({ "max-surge": "150%" }))
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"150%\" is not a percentage"), "{e}");
    }

    #[test]
    fn quantities_names_and_keys() {
        for q in ["100m", "0.5", "1", "128Mi", "1G", "1e3", ".5", "2E-2"] {
            assert!(quantity(q).is_ok(), "{q}");
        }
        for q in ["", "100mm", "-1", "1.2.3", "Mi", "1 Gi", "1x"] {
            assert!(quantity(q).is_err(), "{q}");
        }
        assert!(dns_label("hello-http").is_ok());
        assert!(dns_label("hello_http").is_err());
        assert!(dns_label("9lives").is_err());
        assert!(qualified_key("example.com/team").is_ok());
        assert!(qualified_key("Example.com/team").is_err());
        assert!(label_value("012").is_ok() && label_value("yes").is_ok());
        assert!(label_value("-x").is_err());
    }
}
