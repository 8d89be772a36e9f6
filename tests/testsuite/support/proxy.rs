//! A fault-injecting HTTP proxy in front of a real registry, on 127.0.0.1: it answers 429
//! and 503 on demand, drops connections in the middle of blob uploads, and counts the blob
//! bytes clients send. One request per connection (`Connection: close`), which keeps it
//! small; reqwest reconnects as needed.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Faults to inject; counters are decremented as faults fire.
#[derive(Debug, Default, Clone)]
pub struct Faults {
    /// Answer the next N requests with 429 and `Retry-After: 1`.
    pub too_many: usize,
    /// Answer the next N requests with 503.
    pub unavailable: usize,
    /// Drop the connection halfway through the body of the next N blob uploads.
    pub drop_blob_uploads: usize,
    /// Answer every blob upload with 503, forever.
    pub always_fail_blob_uploads: bool,
    /// Report a wrong `Docker-Content-Digest` for uploaded blobs.
    pub wrong_blob_digest: bool,
    /// Forward only the first half of each blob upload (the registry sees a truncated blob).
    pub truncate_blob_uploads: bool,
    /// Answer 201 Created to blob uploads without storing anything.
    pub fake_blob_success: bool,
    /// Blob storage on another host, as S3 or GCS behind a registry: upload sessions get a
    /// `Location` on this `127.0.0.1:PORT`, and blob GETs a 307 redirect to it.
    pub storage_host: Option<String>,
    /// As that storage host: add this `Authorization` value when forwarding (what a
    /// pre-signed URL carries), so the client needs no credentials here.
    pub presigned_authorization: Option<String>,
    /// Hold the first manifest PUT this long before forwarding it (long enough for the
    /// client's bearer token to expire on the way).
    pub stall_first_manifest_put: Option<Duration>,
    /// Read each blob upload's body, then never answer (the connection stays open, up to
    /// [`HOLD`]).
    pub silent_blob_uploads: bool,
    /// Send manifest GET answers one byte a second (up to [`HOLD`]).
    pub trickle_manifest_gets: bool,
    /// Answer manifest GETs with a `Content-Length` of 300 MB (and then junk).
    pub huge_manifest_gets: bool,
    /// Send only the first half of the body of the next N blob GETs, then close.
    pub truncate_blob_gets: usize,
    /// Let this many tag PUTs (manifests PUT under a name that is no digest and no
    /// `sha256-` referrers tag) through, then answer every further one with 503.
    pub fail_tag_puts_after: Option<usize>,
}

/// The longest a fault holds a connection (every wait in the tests is bounded).
pub const HOLD: Duration = Duration::from_secs(120);

/// What went through.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Bytes of request bodies received on blob upload requests (PUT/PATCH to
    /// `/blobs/uploads/`), including dropped ones.
    pub blob_bytes: u64,
    /// `METHOD path -> status` per request (status 0: dropped).
    pub log: Vec<String>,
    /// Requests that arrived with an `Authorization` header.
    pub with_authorization: usize,
}

struct Shared {
    faults: Faults,
    stats: Stats,
}

/// A running proxy; stopped on drop.
pub struct FaultProxy {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

fn find_header_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// A client connection: plain TCP, or TLS over it.
trait Conn: Read + Write {
    /// Ends the connection (also mid-request, to simulate a dropped one).
    fn close(&mut self);
    /// `X-Forwarded-Proto` for the upstream, so the registry writes `Location`s with the
    /// scheme its clients use, as behind any TLS-terminating proxy.
    const PROTO: &'static str;
}

impl Conn for TcpStream {
    const PROTO: &'static str = "http";
    fn close(&mut self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}

impl Conn for rustls::StreamOwned<rustls::ServerConnection, TcpStream> {
    const PROTO: &'static str = "https";
    fn close(&mut self) {
        self.conn.send_close_notify();
        let _ = self.flush();
        let _ = self.sock.shutdown(Shutdown::Both);
    }
}

/// A manifest PUT under a tag (not a digest, not the `sha256-<hex>` referrers tag).
fn is_tag_put(method: &str, path: &str) -> bool {
    method == "PUT"
        && path
            .split_once("/manifests/")
            .is_some_and(|(_, r)| !r.starts_with("sha256:") && !r.starts_with("sha256-"))
}

fn respond(client: &mut impl Write, status: &str, extra: &str) {
    let _ = write!(
        client,
        "HTTP/1.1 {status}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
}

fn handle<C: Conn>(mut client: C, upstream: &str, shared: &Mutex<Shared>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    let head_end = loop {
        if let Some(end) = find_header_end(&buf) {
            break end;
        }
        match client.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_string();
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    let content_length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let is_blob_upload = (method == "PUT" || method == "PATCH") && path.contains("/blobs/uploads/");
    let mut body = buf[head_end..].to_vec();
    let authorized = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("authorization"));
    let (storage_host, presigned) = {
        let mut s = shared.lock().unwrap();
        if authorized {
            s.stats.with_authorization += 1;
        }
        (
            s.faults.storage_host.clone(),
            s.faults.presigned_authorization.clone(),
        )
    };
    let is_blob_get = method == "GET" && path.contains("/blobs/sha256:");
    if let (Some(storage), true) = (&storage_host, is_blob_get) {
        shared
            .lock()
            .unwrap()
            .stats
            .log
            .push(format!("{method} {path} -> 307"));
        let location = format!("Location: http://{storage}{path}\r\n");
        respond(&mut client, "307 Temporary Redirect", &location);
        return;
    }

    // Decide on a fault before reading the body, as a real overloaded server would.
    let fault = {
        let mut s = shared.lock().unwrap();
        if s.faults.too_many > 0 {
            s.faults.too_many -= 1;
            Some("429")
        } else if s.faults.unavailable > 0 {
            s.faults.unavailable -= 1;
            Some("503")
        } else if (is_tag_put(&method, &path) && s.faults.fail_tag_puts_after == Some(0))
            || (is_blob_upload && s.faults.always_fail_blob_uploads)
        {
            Some("503")
        } else if is_blob_upload && s.faults.fake_blob_success {
            Some("fake")
        } else if is_blob_upload && s.faults.drop_blob_uploads > 0 {
            s.faults.drop_blob_uploads -= 1;
            Some("drop")
        } else {
            None
        }
    };
    if fault.is_none() && is_tag_put(&method, &path) {
        let mut s = shared.lock().unwrap();
        if let Some(n) = s.faults.fail_tag_puts_after.as_mut() {
            *n = n.saturating_sub(1);
        }
    }
    let limit = if fault == Some("drop") {
        content_length / 2
    } else {
        content_length
    };
    while body.len() < limit {
        match client.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    let log = |status: &str, body_len: usize| {
        let mut s = shared.lock().unwrap();
        if is_blob_upload {
            s.stats.blob_bytes += body_len as u64;
        }
        s.stats.log.push(format!("{method} {path} -> {status}"));
    };
    match fault {
        Some("429") => {
            log("429", body.len());
            respond(&mut client, "429 Too Many Requests", "Retry-After: 1\r\n");
            return;
        }
        Some("503") => {
            log("503", body.len());
            respond(&mut client, "503 Service Unavailable", "");
            return;
        }
        Some("fake") => {
            log("201 (fake)", body.len());
            respond(&mut client, "201 Created", "");
            return;
        }
        Some(_) => {
            log("0", body.len());
            client.close();
            return;
        }
        None => {}
    }
    if is_blob_upload && shared.lock().unwrap().faults.silent_blob_uploads {
        log("silent", body.len());
        let until = std::time::Instant::now() + HOLD;
        while std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(100));
        }
        return;
    }
    let is_manifest_get = method == "GET" && path.contains("/manifests/");
    if is_manifest_get && shared.lock().unwrap().faults.huge_manifest_gets {
        log("200 (300 MB)", 0);
        let _ = client.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.index.v1+json\r\nContent-Length: 314572800\r\nConnection: close\r\n\r\n",
        );
        let junk = vec![b' '; 64 * 1024];
        for _ in 0..64 {
            if client.write_all(&junk).is_err() {
                break;
            }
        }
        client.close();
        return;
    }
    if method == "PUT" && path.contains("/manifests/") {
        let stall = shared
            .lock()
            .unwrap()
            .faults
            .stall_first_manifest_put
            .take();
        if let Some(stall) = stall {
            std::thread::sleep(stall);
        }
    }
    let Ok(mut up) = TcpStream::connect(upstream) else {
        respond(&mut client, "502 Bad Gateway", "");
        return;
    };
    let mut out = format!("{request_line}\r\n");
    for (k, v) in &headers {
        let presigned_replaces = presigned.is_some() && k.eq_ignore_ascii_case("authorization");
        if !k.eq_ignore_ascii_case("connection") && !presigned_replaces {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    if let Some(auth) = &presigned {
        out.push_str(&format!("Authorization: {auth}\r\n"));
    }
    out.push_str(&format!("X-Forwarded-Proto: {}\r\n", C::PROTO));
    let (truncate, wrong_digest) = {
        let s = shared.lock().unwrap();
        (
            is_blob_upload && s.faults.truncate_blob_uploads,
            is_blob_upload && s.faults.wrong_blob_digest,
        )
    };
    let mut forward = &body[..content_length.min(body.len())];
    if truncate {
        forward = &forward[..forward.len() / 2];
        out = out.replace(
            &format!("Content-Length: {content_length}"),
            &format!("Content-Length: {}", forward.len()),
        );
        out = out.replace(
            &format!("content-length: {content_length}"),
            &format!("content-length: {}", forward.len()),
        );
    }
    out.push_str("Connection: close\r\n\r\n");
    if up
        .write_all(out.as_bytes())
        .and_then(|_| up.write_all(forward))
        .is_err()
    {
        return;
    }
    let mut response = Vec::new();
    let _ = up.read_to_end(&mut response);
    if wrong_digest {
        let text = String::from_utf8_lossy(&response).into_owned();
        let bad = format!("sha256:{}", "0".repeat(64));
        let rewritten: Vec<String> = text
            .split("\r\n")
            .map(|l| {
                if l.to_ascii_lowercase().starts_with("docker-content-digest:") {
                    format!("Docker-Content-Digest: {bad}")
                } else {
                    l.to_string()
                }
            })
            .collect();
        response = rewritten.join("\r\n").into_bytes();
    }
    if let Some(storage) = &storage_host {
        response = with_storage_location(&response, storage);
    }
    let status = String::from_utf8_lossy(&response)
        .split(' ')
        .nth(1)
        .unwrap_or("?")
        .to_string();
    let (trickle, truncate_get) = {
        let mut s = shared.lock().unwrap();
        let trickle = is_manifest_get && s.faults.trickle_manifest_gets;
        let is_blob_get = method == "GET" && path.contains("/blobs/sha256:");
        let truncate = is_blob_get && status == "200" && s.faults.truncate_blob_gets > 0;
        if truncate {
            s.faults.truncate_blob_gets -= 1;
        }
        (trickle, truncate)
    };
    if trickle {
        log(&format!("{status} (1 byte/s)"), body.len());
        let until = std::time::Instant::now() + HOLD;
        for b in &response {
            if std::time::Instant::now() > until || client.write_all(&[*b]).is_err() {
                break;
            }
            let _ = client.flush();
            std::thread::sleep(Duration::from_secs(1));
        }
        client.close();
        return;
    }
    if truncate_get {
        log(&format!("{status} (truncated)"), body.len());
        let end = find_header_end(&response).unwrap_or(0);
        let half = end + (response.len() - end) / 2;
        let _ = client.write_all(&response[..half]);
        client.close();
        return;
    }
    log(&status, body.len());
    let _ = client.write_all(&response);
    client.close();
}

/// Points an upload session's `Location` (absolute or relative) at `storage`.
fn with_storage_location(response: &[u8], storage: &str) -> Vec<u8> {
    let Some(end) = find_header_end(response) else {
        return response.to_vec();
    };
    let head = String::from_utf8_lossy(&response[..end]).into_owned();
    let head: Vec<String> = head
        .split("\r\n")
        .map(|l| match l.split_once(':') {
            Some((k, v)) if k.eq_ignore_ascii_case("location") && v.contains("/blobs/uploads/") => {
                let v = v.trim();
                let path = v.find("/v2/").map_or(v, |i| &v[i..]);
                format!("Location: http://{storage}{path}")
            }
            _ => l.to_string(),
        })
        .collect();
    let mut out = head.join("\r\n").into_bytes();
    out.extend_from_slice(&response[end..]);
    out
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`127.0.0.1:PORT`).
    pub fn start(upstream: &str, faults: Faults) -> FaultProxy {
        Self::spawn(upstream, faults, None)
    }

    /// Starts a proxy that speaks HTTPS to its clients (with the PEM certificate chain and
    /// key given) and plain HTTP to `upstream`: a TLS registry.
    pub fn start_tls(
        upstream: &str,
        cert_pem: &std::path::Path,
        key_pem: &std::path::Path,
    ) -> FaultProxy {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let _ = rustls::crypto::ring::default_provider().install_default();
        let certs = CertificateDer::pem_file_iter(cert_pem)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(key_pem).unwrap();
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        Self::spawn(upstream, Faults::default(), Some(Arc::new(config)))
    }

    fn spawn(upstream: &str, faults: Faults, tls: Option<Arc<rustls::ServerConfig>>) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let shared = Arc::new(Mutex::new(Shared {
            faults,
            stats: Stats::default(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (s2, stop2, up) = (shared.clone(), stop.clone(), upstream.to_string());
        let handle = std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).ok();
                        stream.set_read_timeout(Some(Duration::from_secs(30))).ok();
                        let (s3, up2, tls) = (s2.clone(), up.clone(), tls.clone());
                        std::thread::spawn(move || match tls {
                            None => handle(stream, &up2, &s3),
                            Some(config) => {
                                let Ok(conn) = rustls::ServerConnection::new(config) else {
                                    return;
                                };
                                handle(rustls::StreamOwned::new(conn, stream), &up2, &s3)
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FaultProxy {
            addr,
            shared,
            stop,
            handle: Some(handle),
        }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.shared.lock().unwrap().stats.clone()
    }

    /// Resets the counters.
    pub fn reset_stats(&self) {
        self.shared.lock().unwrap().stats = Stats::default();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
