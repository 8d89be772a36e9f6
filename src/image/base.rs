//! The built-in distroless base, generated in-process: users and groups (root and
//! `nonroot` 65532), Mozilla's CA bundle (from the `webpki-root-certs` crate), `/tmp`,
//! `nsswitch.conf` and `os-release`. The same tool version always produces the same
//! bytes, so the layer is shared (and mountable) across all images and all users.

use base64::Engine;

use crate::image::tar::{Entry, EntryKind};
use crate::{TOOL_NAME, TOOL_VERSION};

/// Where the CA bundle goes (Debian's path, which distroless and most TLS stacks use).
pub const CA_BUNDLE_PATH: &str = "etc/ssl/certs/ca-certificates.crt";

/// The base layer's tar mtime: fixed, so the layer does not depend on the project's time.
pub const BASE_MTIME: u64 = 0;

const PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n";
const NSSWITCH: &str = "# Static binaries read /etc/hosts first, then DNS.\nhosts: files dns\npasswd: files\ngroup: files\n";

/// The CA bundle as PEM, one certificate per Mozilla root, in the crate's order.
pub fn ca_bundle_pem() -> String {
    let mut out = String::new();
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
    out
}

fn os_release() -> String {
    [
        format!("NAME=\"{TOOL_NAME} static\""),
        "ID=containerize-static".to_string(),
        format!("VERSION_ID=\"{TOOL_VERSION}\""),
        format!("PRETTY_NAME=\"{TOOL_NAME} static base {TOOL_VERSION} (distroless)\""),
        String::new(),
    ]
    .join("\n")
}

/// The entries of the base layer.
pub fn base_entries() -> Vec<Entry> {
    vec![
        Entry::bytes("etc/passwd", 0o644, PASSWD),
        Entry::bytes("etc/group", 0o644, GROUP),
        Entry::bytes("etc/nsswitch.conf", 0o644, NSSWITCH),
        Entry::bytes("etc/os-release", 0o644, os_release()),
        Entry::bytes(CA_BUNDLE_PATH, 0o644, ca_bundle_pem()),
        Entry::dir("tmp", 0o1777),
        Entry::dir("root", 0o700),
        Entry {
            path: "home/nonroot".into(),
            mode: 0o700,
            uid: 65532,
            gid: 65532,
            kind: EntryKind::Dir,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_bundle_is_pem_with_every_root() {
        let pem = ca_bundle_pem();
        let n = pem.matches("-----BEGIN CERTIFICATE-----").count();
        assert_eq!(n, webpki_root_certs::TLS_SERVER_ROOT_CERTS.len());
        assert!(n > 100, "{n} roots");
        assert!(pem.lines().all(|l| l.len() <= 64));
    }

    #[test]
    fn nonroot_is_65532() {
        assert!(PASSWD.contains("nonroot:x:65532:65532:"));
        assert!(GROUP.contains("nonroot:x:65532:"));
    }
}
