//! The testdata HTTP service, built for amd64 and arm64, validated as an OCI layout by
//! the ecosystem's tools and run with podman the way a pod would run it.

use crate::support::{Container, Fixture, json_blob, run_once, validate_layout};

#[test]
fn hello_http_multi_arch_layout_validates_and_serves_on_both_architectures() {
    let fx = Fixture::new("hello-http");
    let run = fx.run(&["--platform", "all"]).ok();

    // stdout: exactly one reference per image, by digest.
    let refs = run.refs();
    assert_eq!(refs.len(), 1, "{}", run.stdout);
    let summary = fx.image_json("hello-http");
    let digest = summary["digest"].as_str().unwrap().to_string();
    assert_eq!(refs[0], format!("hello-http:latest@{digest}"));
    assert!(
        run.stderr
            .contains("Packaged hello-http v0.1.0 (linux/amd64)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("Packaged hello-http v0.1.0 (linux/arm64)"),
        "{}",
        run.stderr
    );

    validate_layout(&fx.layout());

    // The index points at one manifest per platform; each config runs as nonroot with
    // the binary as entrypoint and the declared port.
    let index = json_blob(&fx.layout(), &digest);
    let manifests = index["manifests"].as_array().unwrap();
    let archs: Vec<&str> = manifests
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(archs, ["amd64", "arm64"]);
    let manifest = json_blob(&fx.layout(), manifests[0]["digest"].as_str().unwrap());
    assert_eq!(
        manifest["layers"].as_array().unwrap().len(),
        2,
        "base + binary"
    );
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.version"],
        "0.1.0"
    );
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.source"],
        "https://example.com/hello-http"
    );
    let config = json_blob(&fx.layout(), manifest["config"]["digest"].as_str().unwrap());
    assert_eq!(config["config"]["User"], "65532:65532");
    assert_eq!(config["config"]["Entrypoint"][0], "/app/hello-http");
    assert!(config["config"]["ExposedPorts"]["8080/tcp"].is_object());
    let env: Vec<&str> = config["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(env.contains(&"RUST_LOG=info"), "{env:?}");
    assert!(
        env.contains(&"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"),
        "{env:?}"
    );

    // Both architectures actually serve, as uid 65532, with a writable /tmp.
    let layout_ref = format!("oci:{}:hello-http:latest", fx.layout().display());
    for arch in ["amd64", "arm64"] {
        let c = Container::start(&layout_ref, arch, "/healthz", &[]);
        assert_eq!(c.get("/healthz"), (200, "ok".to_string()));
        let (code, body) = c.get("/");
        let expected = if arch == "amd64" { "x86_64" } else { "aarch64" };
        assert_eq!((code, body.contains(expected)), (200, true), "{body}");
        let (code, body) = c.get("/whoami");
        assert_eq!(code, 200);
        assert!(body.contains("65532"), "{body}");
        assert_eq!(c.get("/tmpcheck").0, 200);
    }
    assert_eq!(
        run_once(&layout_ref, "amd64", &["echo", "hi", "there"]).trim(),
        "hi there"
    );
}
