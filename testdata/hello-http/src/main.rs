//! A tiny HTTP/1.1 server on std::net: /healthz, /readyz, /, /tmpcheck, /whoami.
//! `hello-http echo ARGS...` prints ARGS and exits (for run-once tests).
//! `hello-http --health-check` asks the running server's /healthz and exits 0 when it
//! answers 200: a distroless image has no shell or curl, so the binary checks itself.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};

fn respond(stream: &mut TcpStream, status: &str, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn tmp_check() -> Result<(), std::io::Error> {
    let path = std::env::temp_dir().join(format!("hello-http-{}", std::process::id()));
    std::fs::write(&path, b"tmp")?;
    std::fs::remove_file(&path)
}

fn handle(mut stream: TcpStream) {
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => break,
            Ok(_) if header == "\r\n" || header == "\n" => break,
            Ok(_) => {}
        }
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    match path {
        "/healthz" => respond(&mut stream, "200 OK", "ok"),
        "/readyz" => respond(&mut stream, "200 OK", "ready"),
        "/" => respond(
            &mut stream,
            "200 OK",
            &format!("hello from {}", std::env::consts::ARCH),
        ),
        "/tmpcheck" => match tmp_check() {
            Ok(()) => respond(&mut stream, "200 OK", "tmp ok"),
            Err(e) => respond(&mut stream, "500 Internal Server Error", &e.to_string()),
        },
        "/whoami" => {
            let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            let uid = status
                .lines()
                .find(|l| l.starts_with("Uid:"))
                .unwrap_or("Uid: ?");
            respond(&mut stream, "200 OK", uid)
        }
        _ => respond(&mut stream, "404 Not Found", "not found"),
    }
}

fn health_check(port: &str) -> bool {
    use std::io::Read;
    use std::time::Duration;
    let Ok(addr) = format!("127.0.0.1:{port}").parse() else {
        return false;
    };
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut response = String::new();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .and_then(|()| stream.read_to_string(&mut response))
        .is_ok()
        && response.starts_with("HTTP/1.1 200")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".to_string());
    match args.first().map(String::as_str) {
        Some("echo") => {
            println!("{}", args[1..].join(" "));
            return;
        }
        Some("--health-check") => std::process::exit(if health_check(&port) { 0 } else { 1 }),
        _ => {}
    }
    let listener = TcpListener::bind(format!("0.0.0.0:{port}")).expect("bind");
    eprintln!("listening on :{port}");
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || handle(stream));
    }
}
