//! Raw layers (lowest precedence first) + the image's `exposed-ports` → [`KubeSettings`].
//!
//! In: [`KubeLayer`]s with the [`Source`] each came from. Out: resolved settings, no
//! `Option` left where a default exists. Each layer is validated first, then the layers are
//! overlaid field by field (maps merge key by key) onto the defaults of issue 5, and checks
//! that involve several keys (autoscaling, budgets, ingress) run on the merged result.

use crate::config::{ConfigError, Port, Source};

use super::validate::validate_layer;
use super::{
    Autoscaling, DEFAULT_CPU_REQUEST, DEFAULT_MEMORY_LIMIT, DEFAULT_MEMORY_REQUEST, DEFAULT_PORT,
    DEFAULT_REPLICAS, DEFAULT_REVISION_HISTORY_LIMIT, DEFAULT_SERVICE_PORT,
    DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS, DisruptionBudget, EgressMode, Ingress, IntOrPercent,
    KubeLayer, KubeSettings, Metrics, NetworkPolicy, Peer, PeerLayer, ProbeLayer, ProbeSettings,
    Probes, Resources, ServiceSettings,
};
use super::{
    DEFAULT_BACKOFF_LIMIT, DEFAULT_TTL_SECONDS_AFTER_FINISHED, FileVolume, FileVolumeLayer,
    JobSettings, Workload, WorkloadKind,
};

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
        overlay!(m, layer; enabled, kind, schedule, backoff_limit, ttl_seconds_after_finished,
            concurrency_policy, name, namespace, create_namespace, component, part_of, replicas,
            revision_history_limit, termination_grace_period_seconds, max_surge,
            max_unavailable, port, env_from_config_maps, env_from_secrets, secret_volumes,
            config_map_volumes, cpu_env);
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
            overlay!(i, f; enabled);
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
        nested(
            &mut m.network_policy,
            &layer.network_policy,
            |i, f| overlay!(i, f; enabled, from, egress, egress_allow),
        );
        if let Some(t) = &layer.templates {
            s.templates = Some((t.clone(), (*source).clone()));
        }
    }

    let int = |v: Option<i64>, default: i32| v.map_or(default, |v| v as i32);
    s.enabled = m.enabled.unwrap_or(true);
    s.workload = workload(&m, &last)?;
    let completes = s.workload.runs_to_completion();
    s.name = m.name;
    s.namespace = m.namespace;
    s.create_namespace = m.create_namespace.unwrap_or(true);
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
    let files = |v: Option<Vec<FileVolumeLayer>>| -> Vec<FileVolume> {
        v.unwrap_or_default()
            .into_iter()
            .filter_map(|f| {
                Some(FileVolume {
                    name: f.name?,
                    mount: f.mount?,
                })
            })
            .collect()
    };
    s.secret_volumes = files(m.secret_volumes);
    s.config_map_volumes = files(m.config_map_volumes);
    let mut mounts: Vec<&str> = s
        .secret_volumes
        .iter()
        .chain(&s.config_map_volumes)
        .map(|f| f.mount.as_str())
        .collect();
    mounts.sort_unstable();
    if let Some(w) = mounts.windows(2).find(|w| w[0] == w[1]) {
        return Err(last.error(
            "kubernetes.secret-volumes",
            format!(
                "two volumes are mounted at `{}`; give each its own directory",
                w[0]
            ),
        ));
    }

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
    // A Job's pods come and go: nothing to put behind a Service.
    if s.port.is_some() && service_layer.enabled != Some(false) && !completes {
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
    s.probes = if probes.enabled == Some(false) {
        Probes::default()
    } else {
        Probes {
            liveness: probe(probes.liveness, false),
            // A failing readiness probe only takes the pod out of the Service; it never
            // restarts it, so unlike a default liveness probe it cannot cause restart
            // storms under load. A TCP connect needs nothing from the app.
            readiness: probe(probes.readiness, false).or_else(|| {
                s.port
                    .filter(|_| !completes)
                    .and(probe(Some(ProbeLayer::default()), false))
            }),
            startup: probe(probes.startup, true),
        }
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
        Some(_) if completes => {
            return Err(last.error(
                "kubernetes.autoscaling",
                "a Job or CronJob runs to completion: it has no replicas to keep; remove autoscaling or use kind = \"deployment\"",
            ));
        }
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
        Some(_) if completes => {
            return Err(last.error(
                "kubernetes.disruption-budget",
                "a Job or CronJob runs to completion: it has no replicas to keep; remove disruption-budget or use kind = \"deployment\"",
            ));
        }
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

    s.network_policy = match m.network_policy.unwrap_or_default() {
        n if n.enabled == Some(false) => None,
        n => {
            let peers = |v: Vec<PeerLayer>| {
                v.into_iter()
                    .map(|p| Peer {
                        pods: p.pods.unwrap_or_default(),
                        namespaces: p.namespaces,
                        cidr: p.cidr,
                        ports: p.ports.unwrap_or_default(),
                    })
                    .collect::<Vec<_>>()
            };
            let egress_allow = match n.egress {
                Some(EgressMode::Deny) => Some(peers(n.egress_allow.unwrap_or_default())),
                _ if n.egress_allow.is_some() => {
                    return Err(last.error(
                        "kubernetes.network-policy.egress-allow",
                        "egress-allow lists what a pod may reach when egress = \"deny\"; egress is unrestricted without it",
                    ));
                }
                _ => None,
            };
            Some(NetworkPolicy {
                from: n.from.map(peers),
                egress_allow,
            })
        }
    };

    s.ingress = match ingress {
        None => None,
        Some(_) if completes => {
            return Err(last.error(
                "kubernetes.ingress",
                "a Job or CronJob has no Service to route to; remove ingress or use kind = \"deployment\"",
            ));
        }
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

/// `kind` and the keys that belong to one kind only.
fn workload(m: &KubeLayer, last: &Source) -> Result<Workload, ConfigError> {
    let kind = m.kind.unwrap_or_default();
    let only = |key: &str, set: bool, kinds: &str| {
        if set {
            Err(last.error(
                &format!("kubernetes.{key}"),
                format!("{key} applies to {kinds} only; set kind = \"cronjob\" or \"job\" for a binary that runs to completion"),
            ))
        } else {
            Ok(())
        }
    };
    let job = JobSettings {
        backoff_limit: m.backoff_limit.map_or(DEFAULT_BACKOFF_LIMIT, |n| n as i32),
        ttl_seconds_after_finished: m
            .ttl_seconds_after_finished
            .map_or(DEFAULT_TTL_SECONDS_AFTER_FINISHED, |n| n as i32),
    };
    if kind != WorkloadKind::Cronjob {
        only("schedule", m.schedule.is_some(), "kind = \"cronjob\"")?;
        only(
            "concurrency-policy",
            m.concurrency_policy.is_some(),
            "kind = \"cronjob\"",
        )?;
    }
    Ok(match kind {
        WorkloadKind::Deployment => {
            only(
                "backoff-limit",
                m.backoff_limit.is_some(),
                "Jobs and CronJobs",
            )?;
            only(
                "ttl-seconds-after-finished",
                m.ttl_seconds_after_finished.is_some(),
                "Jobs and CronJobs",
            )?;
            Workload::Deployment
        }
        WorkloadKind::Job => Workload::Job(job),
        WorkloadKind::Cronjob => Workload::CronJob {
            schedule: m.schedule.clone().ok_or_else(|| {
                last.error(
                    "kubernetes.schedule",
                    "a CronJob needs a schedule, e.g. schedule = \"0 3 * * *\" (03:00 every day)",
                )
            })?,
            // A run that takes longer than the interval must not pile up behind itself.
            concurrency_policy: m
                .concurrency_policy
                .clone()
                .unwrap_or_else(|| "Forbid".into()),
            job,
        },
    })
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
        let readiness = s.probes.readiness.clone().unwrap();
        assert_eq!(
            (readiness.path, readiness.port, readiness.period_seconds),
            (None, None, 10),
            "a TCP readiness probe on the http port"
        );
        assert!(s.probes.liveness.is_none() && s.probes.startup.is_none());
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
    fn probes_false_drops_the_default_readiness_probe_and_network_policy_false_the_policy() {
        let s = resolve_one(
            serde_json::json!({ "probes": false, "network-policy": false }),
            &[HTTP],
        )
        .unwrap();
        assert_eq!(s.probes, Probes::default());
        assert_eq!(s.network_policy, None);
        let s = resolve_one(serde_json::json!({}), &[]).unwrap();
        assert_eq!(s.probes.readiness, None, "no port, no default probe");
        let e = resolve_one(
            serde_json::json!({ "network-policy": { "egress-allow": [{ "cidr": "10.0.0.0/8" }] } }),
            &[HTTP],
        )
        .unwrap_err();
        assert!(
            e.contains("`kubernetes.network-policy.egress-allow`"),
            "{e}"
        );
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
}
