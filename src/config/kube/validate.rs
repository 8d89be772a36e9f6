//! One [`KubeLayer`] and the table it came from → `Ok`, or a [`ConfigError`] naming the key.
//!
//! In: a raw layer and its [`Source`]. Out: nothing but the verdict; values are checked one
//! layer at a time, before merging, so an error names the `Cargo.toml` that set the value.
//! The name, label, environment and quantity validators are shared with `render`.

use crate::config::{ConfigError, Source};

use super::{KubeLayer, PeerLayer};

/// Checks every value present in one layer, naming the key and the layer's table.
pub(super) fn validate_layer(l: &KubeLayer, src: &Source) -> Result<(), ConfigError> {
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
    if let Some(c) = &l.schedule {
        cron_schedule(c).map_err(|m| err("schedule", m))?;
    }
    if let Some(c) = &l.concurrency_policy
        && !matches!(c.as_str(), "Forbid" | "Allow" | "Replace")
    {
        return Err(err(
            "concurrency-policy",
            format!("`{c}` is not one of Forbid, Allow, Replace"),
        ));
    }
    range("backoff-limit", l.backoff_limit, 0, i32max)?;
    range(
        "ttl-seconds-after-finished",
        l.ttl_seconds_after_finished,
        0,
        i32max,
    )?;
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
    for (key, volumes) in [
        ("secret-volumes", &l.secret_volumes),
        ("config-map-volumes", &l.config_map_volumes),
    ] {
        for (i, v) in volumes.iter().flatten().enumerate() {
            let at = |k: &str| format!("{key}[{i}].{k}");
            match &v.name {
                None => {
                    return Err(err(
                        &at("name"),
                        "a volume needs `name`, the Secret's or ConfigMap's name".into(),
                    ));
                }
                Some(n) => dns_subdomain(n).map_err(|m| err(&at("name"), m))?,
            }
            match v.mount.as_deref() {
                None => {
                    return Err(err(
                        &at("mount"),
                        "a volume needs `mount`, the directory its files appear in, e.g. mount = \"/etc/tls\"".into(),
                    ));
                }
                Some(m)
                    if !m.starts_with('/')
                        || m == "/"
                        || m.split('/').any(|c| c == "..")
                        || m == "/tmp"
                        || m.starts_with("/tmp/") =>
                {
                    return Err(err(
                        &at("mount"),
                        format!(
                            "`{m}` must be an absolute directory other than / and /tmp (the writable emptyDir)"
                        ),
                    ));
                }
                Some(_) => {}
            }
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
    if let Some(n) = &l.network_policy {
        for (list, v) in [("from", &n.from), ("egress-allow", &n.egress_allow)] {
            for (i, peer) in v.iter().flatten().enumerate() {
                let at = format!("network-policy.{list}[{i}]");
                validate_peer(peer, list == "egress-allow").map_err(|(k, m)| {
                    err(
                        &if k.is_empty() {
                            at.clone()
                        } else {
                            format!("{at}.{k}")
                        },
                        m,
                    )
                })?;
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

/// One NetworkPolicy peer: selectors that Kubernetes accepts, or a CIDR; the error is the
/// key below the peer (empty for the peer itself) and what is wrong.
fn validate_peer(p: &PeerLayer, egress: bool) -> Result<(), (String, String)> {
    for (key, map) in [("pods", &p.pods), ("namespaces", &p.namespaces)] {
        for (k, v) in map.iter().flatten() {
            let at = || format!("{key}.{k}");
            qualified_key(k).map_err(|m| (at(), m))?;
            label_value(v).map_err(|m| (at(), m))?;
        }
    }
    if p.pods.is_none() && p.namespaces.is_none() && p.cidr.is_none() {
        return Err((
            String::new(),
            "a peer needs `pods`, `namespaces` (label selectors) or `cidr`, e.g. { namespaces = { \"kubernetes.io/metadata.name\" = \"monitoring\" } }".into(),
        ));
    }
    if let Some(c) = &p.cidr {
        if p.pods.is_some() || p.namespaces.is_some() {
            return Err((
                "cidr".into(),
                "a peer is either an IP range or pods/namespaces; write two entries".into(),
            ));
        }
        cidr(c).map_err(|m| ("cidr".to_string(), m))?;
    }
    if p.ports.is_some() && !egress {
        return Err((
            "ports".into(),
            "ingress is allowed to the pod's declared ports only; `ports` belongs in egress-allow"
                .into(),
        ));
    }
    Ok(())
}

/// A CronJob schedule as Kubernetes parses it (robfig/cron's standard parser): five
/// fields (minute hour day-of-month month day-of-week) of `*`, numbers, ranges, lists and
/// steps, month and day names, or one of the `@hourly`…`@yearly` macros.
pub fn cron_schedule(s: &str) -> Result<(), String> {
    let bad = |why: String| Err(format!("`{s}` is not a cron schedule: {why}"));
    let t = s.trim();
    if let Some(d) = t.strip_prefix("@every ") {
        // A Go duration: numbers with units, e.g. 90s, 1h30m.
        let d = d.trim();
        let mut rest = d;
        while !rest.is_empty() {
            let num = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            let unit = rest[num..]
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len() - num);
            let ok = num > 0
                && matches!(
                    &rest[num..num + unit],
                    "ns" | "us" | "µs" | "ms" | "s" | "m" | "h"
                );
            if !ok {
                return bad(format!("`{d}` is not a duration like 90s, 15m or 1h30m"));
            }
            rest = &rest[num + unit..];
        }
        return if d.is_empty() {
            bad("@every needs a duration like 15m".into())
        } else {
            Ok(())
        };
    }
    if let Some(m) = t.strip_prefix('@') {
        return match m {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => {
                Ok(())
            }
            _ => bad(format!(
                "`@{m}` is not one of @hourly, @daily, @midnight, @weekly, @monthly, @yearly, @every <duration>"
            )),
        };
    }
    if t.starts_with("TZ=") || t.starts_with("CRON_TZ=") {
        return bad("Kubernetes refuses a time zone in the schedule".into());
    }
    let fields: Vec<&str> = t.split_whitespace().collect();
    if fields.len() != 5 {
        return bad(format!(
            "it has {} field(s); a schedule has 5 (minute hour day-of-month month day-of-week), e.g. \"0 3 * * *\"",
            fields.len()
        ));
    }
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    let specs: [(&str, u32, u32, &[&str], u32); 5] = [
        ("minute", 0, 59, &[], 0),
        ("hour", 0, 23, &[], 0),
        ("day of month", 1, 31, &[], 0),
        ("month", 1, 12, &MONTHS, 1),
        ("day of week", 0, 7, &DAYS, 0),
    ];
    for (field, (what, lo, hi, names, first)) in fields.iter().zip(specs) {
        for part in field.split(',') {
            let (range, step) = match part.split_once('/') {
                Some((r, st)) => (r, Some(st)),
                None => (part, None),
            };
            if let Some(st) = step
                && st.parse::<u32>().map_or(true, |n| n == 0)
            {
                return bad(format!("{what} step `{st}` is not a number above 0"));
            }
            let value = |v: &str| -> Result<u32, String> {
                let by_name = names
                    .iter()
                    .position(|n| n.eq_ignore_ascii_case(v))
                    .map(|i| i as u32 + first);
                match by_name.or_else(|| v.parse::<u32>().ok()) {
                    Some(n) if (lo..=hi).contains(&n) => Ok(n),
                    Some(_) => Err(format!("{what} `{v}` is out of range {lo}-{hi}")),
                    None => Err(format!("{what} `{v}` is not a number")),
                }
            };
            // `?` means "any" in the two day fields only.
            let wildcard =
                range == "*" || (range == "?" && matches!(what, "day of month" | "day of week"));
            if wildcard {
                continue;
            }
            let (a, b) = match range.split_once('-') {
                Some((a, b)) => (value(a), value(b)),
                None => (value(range), Ok(0)),
            };
            match (a, b) {
                (Err(e), _) | (_, Err(e)) => return bad(e),
                (Ok(a), Ok(b)) if range.contains('-') && b < a => {
                    return bad(format!("{what} range `{range}` ends before it starts"));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// An IPv4 or IPv6 range like `10.0.0.0/8`.
pub fn cidr(s: &str) -> Result<(), String> {
    let ok = s.split_once('/').is_some_and(|(ip, bits)| {
        match (ip.parse::<std::net::IpAddr>(), bits.parse::<u8>()) {
            (Ok(std::net::IpAddr::V4(_)), Ok(b)) => b <= 32,
            (Ok(std::net::IpAddr::V6(_)), Ok(b)) => b <= 128,
            _ => false,
        }
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not an IP range like 10.0.0.0/8 or fd00::/8"
        ))
    }
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

    #[test]
    fn cron_schedules_as_kubernetes_reads_them() {
        for ok in [
            "0 3 * * *",
            "*/15 * * * *",
            "0 9-17/2 * * MON-FRI",
            "30 1 1,15 * ?",
            "0 0 1 jan *",
            "@daily",
            "@every 1h30m",
            "5 4 * * 7",
        ] {
            assert!(cron_schedule(ok).is_ok(), "{ok}: {:?}", cron_schedule(ok));
        }
        for (bad, why) in [
            ("61 * * * *", "minute `61` is out of range 0-59"),
            ("* * * *", "it has 4 field(s)"),
            ("0 3 * * * *", "it has 6 field(s)"),
            ("*/0 * * * *", "step `0`"),
            ("0 5-3 * * *", "ends before it starts"),
            ("0 0 * foo *", "month `foo` is not a number"),
            ("@weekdays", "`@weekdays` is not one of"),
            ("@every 5x", "`5x` is not a duration"),
            ("TZ=UTC 0 3 * * *", "time zone"),
        ] {
            let e = cron_schedule(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
