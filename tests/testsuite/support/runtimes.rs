//! Real container runtimes for the `--load` tests: Debian's `dockerd` and `containerd`,
//! each started as root in a temp dir of its own (data, state, socket), and podman with
//! its own storage. Daemons are stopped by PID on drop (SIGTERM, a bounded wait, then
//! SIGKILL); nothing is ever killed by name. Every wait is bounded; a daemon that does not
//! answer fails the test with its log.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::require;

/// How long a daemon gets to answer after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a daemon gets to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// A temp dir for a daemon. Short and lowercase: unix socket paths are limited to 108
/// bytes, and podman's `oci:` transport rejects uppercase.
fn daemon_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .rand_bytes(8)
        .tempdir_in("/tmp")
        .unwrap()
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Formats a command's output for a failure message.
pub fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        lossy(&out.stdout),
        lossy(&out.stderr)
    )
}

fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Is `pid` a live process (not a zombie)?
pub fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/status")) {
        Ok(s) => s
            .lines()
            .find_map(|l| l.strip_prefix("State:"))
            .and_then(|st| st.split_whitespace().next())
            .is_some_and(|st| st != "Z" && st != "X"),
        Err(_) => false,
    }
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) with a PID this process started (or read from that daemon's pidfile
    // after checking it is still alive); no memory is involved.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// SIGTERM, wait up to STOP_TIMEOUT for the child to exit (reaping it), then SIGKILL.
fn stop_child(child: &mut Child) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    signal(child.id() as i32, libc::SIGTERM);
    let deadline = Instant::now() + STOP_TIMEOUT;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Stops a process that is not our child (e.g. the containerd dockerd started) by the PID
/// in its pidfile: SIGTERM, bounded wait, SIGKILL.
fn stop_pidfile(pidfile: &Path) {
    let Some(pid) = fs::read_to_string(pidfile)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
    else {
        return;
    };
    if pid <= 1 || !alive(pid) {
        return;
    }
    signal(pid, libc::SIGTERM);
    let deadline = Instant::now() + STOP_TIMEOUT;
    while Instant::now() < deadline && alive(pid) {
        std::thread::sleep(Duration::from_millis(100));
    }
    if alive(pid) {
        signal(pid, libc::SIGKILL);
    }
}

/// Unmounts whatever is still mounted below `dir` (deepest first, lazily): a daemon that
/// had to be killed can leave container shm/rootfs mounts behind, and removing the dir
/// would then fail with EBUSY.
fn unmount_below(dir: &Path) {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = dir.to_string_lossy().into_owned();
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        // mountinfo escapes spaces etc. as octal; our dirs have none.
        .filter(|p| p.starts_with(&prefix))
        .map(String::from)
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = Command::new("umount").args(["-l", &p]).output();
    }
}

/// Removes a daemon's dir; vfs/native snapshot data can be hundreds of MB.
fn remove_dir(dir: &Path) {
    unmount_below(dir);
    let _ = fs::remove_dir_all(dir);
}

/// Starts `cmd` with its output in `log`, waits until `ready` returns true (bounded),
/// failing with the log if the process exits or the time runs out.
fn spawn_daemon(
    what: &str,
    mut cmd: Command,
    log: &Path,
    mut ready: impl FnMut() -> bool,
) -> Child {
    let out = fs::File::create(log).unwrap();
    let err = out.try_clone().unwrap();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what} ({cmd:?}): {e}"));
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited ({status}) before it answered; {cmd:?}\nlog:\n{}",
                log_tail(log)
            );
        }
        if ready() {
            return child;
        }
        if Instant::now() > deadline {
            stop_child(&mut child);
            panic!(
                "{what} did not answer within {}s; {cmd:?}\nlog:\n{}",
                START_TIMEOUT.as_secs(),
                log_tail(log)
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Debian's dockerd, as root, with its own data root, exec root and socket, vfs storage,
/// no bridge and no iptables (this sandbox has neither): only `--network host` works.
pub struct Dockerd {
    dir: PathBuf,
    child: Child,
    host: String,
    _tmp: tempfile::TempDir,
}

impl Dockerd {
    /// Starts dockerd and waits (at most 60 s) until `docker info` answers.
    #[track_caller]
    pub fn start() -> Dockerd {
        require("dockerd");
        require("docker");
        require("containerd");
        let tmp = daemon_dir("ctz-dockerd-");
        let dir = tmp.path().to_path_buf();
        let host = format!("unix://{}/docker.sock", dir.display());
        let mut cmd = Command::new("dockerd");
        cmd.arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .args(["-H", &host])
            .arg("--pidfile")
            .arg(dir.join("docker.pid"))
            .args([
                "--storage-driver",
                "vfs",
                "--iptables=false",
                "--bridge=none",
            ])
            // Not the caller's DOCKER_HOST or config: dockerd reads neither, the CLI does.
            .env_remove("DOCKER_HOST");
        let probe_host = host.clone();
        let child = spawn_daemon("dockerd", cmd, &dir.join("dockerd.log"), || {
            Command::new("docker")
                .args(["info", "--format", "{{.ServerVersion}}"])
                .env("DOCKER_HOST", &probe_host)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        });
        Dockerd {
            dir,
            child,
            host,
            _tmp: tmp,
        }
    }

    /// `unix://…/docker.sock`, for `DOCKER_HOST`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// dockerd's PID.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The daemon log so far (for failure messages).
    pub fn log(&self) -> String {
        log_tail(&self.dir.join("dockerd.log"))
    }

    /// `docker ARGS` against this daemon (the docker CLI on PATH, `DOCKER_HOST` set).
    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", &self.host)
            .output()
            .unwrap()
    }

    /// `docker ARGS`, asserting success; returns stdout.
    #[track_caller]
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed: {}\ndockerd log:\n{}",
            describe(&out),
            self.log()
        );
        lossy(&out.stdout)
    }

    /// `repository:tag` of every image, sorted.
    pub fn images(&self) -> Vec<String> {
        sorted_lines(&self.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]))
    }

    /// Runs `image` detached with `--network host` and `PORT=port`, and waits until
    /// `GET /healthz` answers 200. The container is removed on drop.
    #[track_caller]
    pub fn serve(&self, image: &str, port: u16) -> DockerContainer<'_> {
        let name = format!("ctz-{port}");
        let env = format!("PORT={port}");
        self.docker_ok(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "host",
            "-e",
            &env,
            image,
        ]);
        let c = DockerContainer { d: self, name };
        if let Err(e) = wait_http(port, "/healthz") {
            let logs = self.docker(&["logs", &c.name]);
            panic!(
                "{image} under docker: {e}\ncontainer log: {}\ndockerd log:\n{}",
                describe(&logs),
                self.log()
            );
        }
        c
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        stop_child(&mut self.child);
        // dockerd runs its own containerd (pidfile under the exec root); after a SIGKILL
        // of dockerd it would be left running.
        stop_pidfile(&self.dir.join("exec/containerd/containerd.pid"));
        remove_dir(&self.dir);
    }
}

/// A container run by [`Dockerd::serve`]; removed (`docker rm -f`) on drop.
pub struct DockerContainer<'a> {
    d: &'a Dockerd,
    name: String,
}

impl Drop for DockerContainer<'_> {
    fn drop(&mut self) {
        let _ = self.d.docker(&["rm", "-f", &self.name]);
    }
}

/// Debian's containerd, as root, with a config of its own (root, state, gRPC socket, opt
/// dir) and the CRI plugin disabled. Images are unpacked with the `native` snapshotter
/// (`CONTAINERD_SNAPSHOTTER=native` for ctr; overlayfs is not available everywhere).
pub struct Containerd {
    dir: PathBuf,
    child: Child,
    address: String,
    _tmp: tempfile::TempDir,
}

impl Containerd {
    /// Starts containerd and waits (at most 60 s) until `ctr version` answers.
    #[track_caller]
    pub fn start() -> Containerd {
        require("containerd");
        require("ctr");
        let tmp = daemon_dir("ctz-ctrd-");
        let dir = tmp.path().to_path_buf();
        let address = dir.join("ctrd.sock").display().to_string();
        let config = dir.join("ctrd.toml");
        let d = dir.display();
        fs::write(
            &config,
            format!(
                "version = 2\n\
                 root = \"{d}/root\"\n\
                 state = \"{d}/state\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{address}\"\n\
                 [plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{d}/opt\"\n"
            ),
        )
        .unwrap();
        let mut cmd = Command::new("containerd");
        cmd.arg("--config").arg(&config);
        let probe = address.clone();
        let child = spawn_daemon("containerd", cmd, &dir.join("ctrd.log"), || {
            Command::new("ctr")
                .args(["--address", &probe, "version"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        });
        Containerd {
            dir,
            child,
            address,
            _tmp: tmp,
        }
    }

    /// The gRPC socket path, for `CONTAINERD_ADDRESS` / `ctr --address`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// containerd's PID.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The environment a client of this containerd needs: the address and the snapshotter.
    pub fn env(&self) -> [(&'static str, &str); 2] {
        [
            ("CONTAINERD_ADDRESS", self.address()),
            ("CONTAINERD_SNAPSHOTTER", "native"),
        ]
    }

    /// The daemon log so far.
    pub fn log(&self) -> String {
        log_tail(&self.dir.join("ctrd.log"))
    }

    fn ctr_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ctr");
        cmd.args(["--address", &self.address])
            .args(args)
            .env("CONTAINERD_SNAPSHOTTER", "native")
            .env_remove("CONTAINERD_NAMESPACE");
        cmd
    }

    /// `ctr --address ADDR ARGS` (e.g. `["-n", "k8s.io", "images", "ls", "-q"]`).
    pub fn ctr(&self, args: &[&str]) -> Output {
        self.ctr_cmd(args).output().unwrap()
    }

    /// `ctr ARGS`, asserting success; returns stdout.
    #[track_caller]
    pub fn ctr_ok(&self, args: &[&str]) -> String {
        let out = self.ctr(args);
        assert!(
            out.status.success(),
            "ctr {args:?} failed: {}\ncontainerd log:\n{}",
            describe(&out),
            self.log()
        );
        lossy(&out.stdout)
    }

    /// Image names in namespace `ns`, sorted.
    pub fn images(&self, ns: &str) -> Vec<String> {
        sorted_lines(&self.ctr_ok(&["-n", ns, "images", "ls", "-q"]))
    }

    /// `ctr run --rm --net-host --snapshotter native --env PORT=port IMAGE ID` in the
    /// background, waiting until `GET /healthz` answers 200; killed and removed on drop.
    #[track_caller]
    pub fn serve(&self, ns: &str, image: &str, port: u16) -> CtrTask<'_> {
        let id = format!("ctz-{port}");
        let env = format!("PORT={port}");
        let log = self.dir.join(format!("{id}.log"));
        let out = fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let child = self
            .ctr_cmd(&[
                "-n",
                ns,
                "run",
                "--rm",
                "--net-host",
                "--snapshotter",
                "native",
                "--env",
                &env,
                image,
                &id,
            ])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap();
        let mut task = CtrTask {
            c: self,
            ns: ns.to_string(),
            id,
            child,
        };
        if let Err(e) = wait_http(port, "/healthz") {
            let status = task.child.try_wait();
            panic!(
                "{image} under containerd: {e}\nctr run ({status:?}):\n{}\ncontainerd log:\n{}",
                log_tail(&log),
                self.log()
            );
        }
        task
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        stop_child(&mut self.child);
        remove_dir(&self.dir);
    }
}

/// A task started by [`Containerd::serve`].
pub struct CtrTask<'a> {
    c: &'a Containerd,
    ns: String,
    id: String,
    child: Child,
}

impl Drop for CtrTask<'_> {
    fn drop(&mut self) {
        // The server ignores SIGTERM as PID 1.
        let _ = self
            .c
            .ctr(&["-n", &self.ns, "tasks", "kill", "-s", "SIGKILL", &self.id]);
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // --rm removes the container when ctr run sees the exit; make sure.
        let _ = self.c.ctr(&["-n", &self.ns, "tasks", "rm", "-f", &self.id]);
        let _ = self.c.ctr(&["-n", &self.ns, "containers", "rm", &self.id]);
    }
}

/// podman with storage of its own (vfs) and runc, configured through the files its
/// usual environment points at: `CONTAINERS_STORAGE_CONF` and `CONTAINERS_CONF`.
pub struct Podman {
    dir: PathBuf,
    _tmp: tempfile::TempDir,
    storage_conf: String,
    containers_conf: String,
}

impl Podman {
    /// Writes the config files (nothing is started).
    #[track_caller]
    pub fn new() -> Podman {
        require("podman");
        require("runc");
        let tmp = daemon_dir("ctz-podman-");
        let dir = tmp.path().to_path_buf();
        let d = dir.display();
        let storage = dir.join("storage.conf");
        fs::write(
            &storage,
            format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = \"{d}/root\"\nrunroot = \"{d}/runroot\"\n"
            ),
        )
        .unwrap();
        let containers = dir.join("containers.conf");
        // crun fails on these hosts (hybrid cgroups): runc. runc may not raise rlimits
        // above the hard limits here, so containers get those (`cargo containerize run`
        // starts its container with the defaults).
        let (nofile, nproc) = hard_ulimits();
        fs::write(
            &containers,
            format!(
                "[containers]\ndefault_ulimits = [\"nofile={nofile}:{nofile}\", \"nproc={nproc}:{nproc}\"]\n[engine]\nruntime = \"runc\"\ntmp_dir = \"{d}/tmp\"\n"
            ),
        )
        .unwrap();
        Podman {
            storage_conf: storage.display().to_string(),
            containers_conf: containers.display().to_string(),
            dir,
            _tmp: tmp,
        }
    }

    /// The environment that selects this storage and config (for podman and for
    /// `cargo containerize --load podman`).
    pub fn env(&self) -> [(&'static str, &str); 2] {
        [
            ("CONTAINERS_STORAGE_CONF", self.storage_conf.as_str()),
            ("CONTAINERS_CONF", self.containers_conf.as_str()),
        ]
    }

    /// `podman ARGS` with this storage.
    pub fn podman(&self, args: &[&str]) -> Output {
        Command::new("podman")
            .args(args)
            .envs(self.env())
            .output()
            .unwrap()
    }

    /// `podman ARGS`, asserting success; returns stdout.
    #[track_caller]
    pub fn podman_ok(&self, args: &[&str]) -> String {
        let out = self.podman(args);
        assert!(
            out.status.success(),
            "podman {args:?} failed: {}",
            describe(&out)
        );
        lossy(&out.stdout)
    }

    /// `repository:tag` of every image, sorted (podman prefixes short names with
    /// `localhost/`).
    pub fn images(&self) -> Vec<String> {
        sorted_lines(&self.podman_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]))
    }

    /// Runs `image` (runc, hard ulimits, `-p 127.0.0.1:port:8080`) and waits until
    /// `GET /healthz` answers 200; removed on drop.
    #[track_caller]
    pub fn serve(&self, image: &str, port: u16) -> PodmanContainer<'_> {
        let name = format!("ctz-{port}");
        let publish = format!("127.0.0.1:{port}:8080");
        let (nofile, nproc) = hard_ulimits();
        let nofile = format!("nofile={nofile}:{nofile}");
        let nproc = format!("nproc={nproc}:{nproc}");
        self.podman_ok(&[
            "run",
            "-d",
            "--name",
            &name,
            "--runtime",
            "runc",
            "--pull",
            "never",
            "--ulimit",
            &nofile,
            "--ulimit",
            &nproc,
            "-p",
            &publish,
            image,
        ]);
        let c = PodmanContainer { p: self, name };
        if let Err(e) = wait_http(port, "/healthz") {
            let logs = self.podman(&["logs", &c.name]);
            panic!(
                "{image} under podman: {e}\ncontainer log: {}",
                describe(&logs)
            );
        }
        c
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.podman(&["rm", "-a", "-f", "-t", "0"]);
        remove_dir(&self.dir);
    }
}

/// A container run by [`Podman::serve`]; removed on drop.
pub struct PodmanContainer<'a> {
    p: &'a Podman,
    name: String,
}

impl Drop for PodmanContainer<'_> {
    fn drop(&mut self) {
        let _ = self.p.podman(&["rm", "-f", "-t", "0", &self.name]);
    }
}

/// The hard nofile / nproc limits, capped (podman's defaults exceed them here and runc
/// then fails with `error setting rlimit type 7`).
fn hard_ulimits() -> (u64, u64) {
    let get = |res| {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct we pass.
        let ok = unsafe { libc::getrlimit(res, &mut lim) } == 0;
        if ok { lim.rlim_max } else { 1024 }
    };
    (
        get(libc::RLIMIT_NOFILE).min(65536),
        get(libc::RLIMIT_NPROC).min(4096),
    )
}

fn sorted_lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    v.sort();
    v
}

/// A free TCP port on 127.0.0.1 (bound and released; good enough for one test run).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One `GET path` on 127.0.0.1:port; returns (status, body).
pub fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = lossy(&buf);
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((code, body))
}

/// Polls `GET path` until it answers 200 (at most 60 s).
pub fn wait_http(port: u16, path: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = String::from("no attempt");
    while Instant::now() < deadline {
        match http_get(port, path) {
            Ok((200, _)) => return Ok(()),
            Ok((code, body)) => last = format!("HTTP {code}: {body}"),
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Err(format!(
        "GET http://127.0.0.1:{port}{path} gave no 200 within 60 s (last: {last})"
    ))
}
