//! Property tests over the `[package.metadata.containerize]` parser and the settings it
//! resolves (including the Kubernetes table): whatever a Cargo.toml holds, the result is
//! settings or an error naming the key and the file, never a panic.

use cargo_containerize::config::{
    Source, parse_package_config, parse_workspace_config, resolve_image,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const KEYS: &[&str] = &[
    "args",
    "env",
    "workdir",
    "user",
    "exposed-ports",
    "labels",
    "annotations",
    "assets",
    "assets-dest",
    "platforms",
    "repository",
    "base",
    "kubernetes",
    "bin",
    "replicas",
    "liveness",
    "readiness",
    "startup",
    "path",
    "port",
    "resources",
    "requests",
    "limits",
    "cpu",
    "memory",
    "service",
    "ingress",
    "hpa",
    "pdb",
    "env-from",
    "metrics",
    "templates",
    "expose",
    "RUST_LOG",
    "api",
    "worker",
    "linux/amd64",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (0u32..70000).prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        prop::sample::select(KEYS).prop_map(|k| json!(k)),
        "[ -~]{0,12}".prop_map(Value::String),
        prop::sample::select(
            &[
                "8080/tcp",
                "53/udp",
                "1/sctp",
                "x/tcp",
                "all",
                "linux/arm64",
                "/abs",
                "../up",
                "100m",
                "1Gi",
                "65532:65532",
                "yes"
            ][..]
        )
        .prop_map(|s| json!(s)),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|kvs| {
                Value::Object(
                    kvs.into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

fn table() -> impl Strategy<Value = Value> {
    prop::collection::vec((prop::sample::select(KEYS), value()), 0..8).prop_map(|kvs| {
        Value::Object(
            kvs.into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect::<Map<_, _>>(),
        )
    })
}

fn assert_names_key(err: &str) {
    assert!(
        err.contains("Cargo.toml"),
        "error does not name the file: {err}"
    );
    assert!(
        err.contains('`') || err.contains("[package.metadata.containerize"),
        "error does not name the key: {err}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn package_tables_parse_or_name_the_key(pkg in table(), ws in table()) {
        let manifest = "crates/api/Cargo.toml";
        let ws_layer = match parse_workspace_config(&json!({ "containerize": ws }), "Cargo.toml") {
            Ok(l) => l,
            Err(e) => { assert_names_key(&e.to_string()); return Ok(()); }
        };
        match parse_package_config(&json!({ "containerize": pkg }), manifest) {
            Err(e) => assert_names_key(&e.to_string()),
            Ok(cfg) => {
                let mut layers = vec![(&ws_layer, Source::Workspace("Cargo.toml".into())), (&cfg.package, Source::Package(manifest.into()))];
                for (name, layer) in &cfg.bins {
                    layers.push((layer, Source::Bin(manifest.into(), name.clone())));
                }
                if let Err(e) = resolve_image(&layers, None) {
                    assert_names_key(&e.to_string());
                }
            }
        }
    }
}
