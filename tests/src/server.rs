//! The `index-server` binary as a process: started on a free loopback port with the arguments
//! and environment a test gives, its standard error kept for the failure message, stopped with
//! SIGTERM or killed with SIGKILL, and killed on drop.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a server may take to answer `/health`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

pub struct ServerProcess {
    binary: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    addr: String,
    child: Option<Child>,
    log: Arc<Mutex<String>>,
}

impl ServerProcess {
    /// Starts `binary` (`env!("CARGO_BIN_EXE_index-server")`) with `args` and `env` on a free
    /// port and waits until `/health` answers 200. Environment variables of the server that the
    /// test does not set are removed, so the caller's environment cannot change the test; `RUST_LOG`
    /// is `SERVER_LOG` or `info`, and `git` reaches only local repositories
    /// (`GIT_ALLOW_PROTOCOL=file`), unless `env` says otherwise.
    pub fn start(binary: &Path, args: &[&str], env: &[(&str, &str)]) -> ServerProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server = ServerProcess {
            binary: binary.to_path_buf(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            addr: format!("127.0.0.1:{port}"),
            child: None,
            log: Arc::new(Mutex::new(String::new())),
        };
        server.spawn();
        server
    }

    /// Runs `binary` with `args` and `env` as [`ServerProcess::start`] would, expecting it to
    /// exit with a failure before serving (bad configuration, unreadable index); returns its
    /// exit code and standard error.
    pub fn run_to_failure(binary: &Path, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let output = command(binary, &env)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stderr(Stdio::piped())
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", binary.display()));
        let log = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(!output.status.success(), "index-server was expected to fail; its log:\n{log}");
        (output.status.code(), log)
    }

    fn spawn(&mut self) {
        let mut child = command(&self.binary, &self.env)
            .args(["--listen", &self.addr])
            .args(&self.args)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("running {}: {e}", self.binary.display()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::clone(&self.log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut log = log.lock().expect("log lock");
                log.push_str(&line);
                log.push('\n');
            }
        });
        self.child = Some(child);
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                std::thread::sleep(Duration::from_millis(100));
                panic!("index-server exited with {status}; its log:\n{}", self.log());
            }
            if health(&self.addr) {
                return;
            }
            assert!(Instant::now() < deadline, "index-server did not answer /health in time; its log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }

    /// Waits until the log has a line containing `text`, for `timeout` at most; returns the log.
    pub fn wait_for_log(&self, text: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log();
            if log.lines().any(|l| l.contains(text)) {
                return log;
            }
            assert!(Instant::now() < deadline, "the server did not log {text:?} within {timeout:?}; its log:\n{log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: the server gets no chance to finish anything.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for the exit; returns whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        let Some(mut child) = self.child.take() else { return false };
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        child.wait().map(|s| s.success()).unwrap_or(false)
    }

    /// Starts the server again with the same arguments, environment and port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The command that runs the server: the server's environment variables the test does not set
/// are removed, so the caller's environment cannot change the test; `git` may only use local
/// repositories unless the test says otherwise (`GIT_ALLOW_PROTOCOL`).
fn command(binary: &Path, env: &[(String, String)]) -> Command {
    let mut command = Command::new(binary);
    for name in [
        "OCI_REGISTRY_URL",
        "OCI_REGISTRY_USERNAME",
        "OCI_REGISTRY_PASSWORD",
        "REGISTRY_REPO_URL",
        "REGISTRY_REPO_BRANCH",
        "UPDATE_WEBHOOK_SECRET",
        "UPDATE_TOKEN",
        "REFRESH_INTERVAL",
        "GITHUB_TOKEN",
        "GITHUB_API_URL",
        "LISTEN_ADDR",
        "REGISTRY_HEADLESS",
        "REGISTRY_NAME",
        "DEVFILE_INDEX",
        "DEVFILE_STACKS",
        "DEVFILE_SAMPLES",
        "SAMPLE_FETCH_TIMEOUT",
    ] {
        command.env_remove(name);
    }
    command
        .env("RUST_LOG", std::env::var("SERVER_LOG").unwrap_or_else(|_| "info".to_string()))
        .env("GIT_ALLOW_PROTOCOL", "file")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null());
    command
}

/// Whether `GET /health` answers 200, over a plain TCP connection.
fn health(addr: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if write!(stream, "GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}
