//! The server as a process while background work hangs: sample devfile fetches whose Git remote
//! never answers time out with a log line saying so, and SIGTERM stops the server promptly, after
//! the requests in flight, abandoning the fetches (their `git` processes are killed).
//!
//! The remotes are on this machine: a TCP listener that accepts connections and never answers
//! (a Git remote over HTTP that hangs), and a small HTTP server whose answer waits for the test.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tests::ServerProcess;

const BIN: &str = env!("CARGO_BIN_EXE_index-server");
/// `git` may reach the hanging remote over HTTP.
const GIT_HTTP: (&str, &str) = ("GIT_ALLOW_PROTOCOL", "file:http");

/// A TCP listener that accepts every connection and never answers; keeps the connections.
struct Hang {
    addr: String,
    accepted: Arc<Mutex<Vec<TcpStream>>>,
}

impl Hang {
    fn start() -> Hang {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&accepted);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                kept.lock().unwrap().push(stream);
            }
        });
        Hang { addr, accepted }
    }

    fn url(&self) -> String {
        format!("http://{}/sample.git", self.addr)
    }

    /// Waits until some client connected.
    fn wait_for_connection(&self, within: Duration) {
        let deadline = Instant::now() + within;
        while self.accepted.lock().unwrap().is_empty() {
            assert!(Instant::now() < deadline, "nothing connected to the hanging remote within {within:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether every connection was closed by its client within `within` (the client process
    /// is gone, or gave up).
    fn all_closed_within(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let mut streams = self.accepted.lock().unwrap();
        streams.iter_mut().all(|stream| {
            let mut buffer = [0u8; 4096];
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return false;
                }
                stream.set_read_timeout(Some(left.min(Duration::from_millis(200)))).unwrap();
                match stream.read(&mut buffer) {
                    Ok(0) => return true,
                    Ok(_) => {}
                    Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                    Err(_) => return true,
                }
            }
        })
    }
}

/// An HTTP server answering one request for `/slow.zip` with `body`, once the test says so.
struct SlowZip {
    addr: String,
    requested: mpsc::Receiver<()>,
    release: mpsc::Sender<()>,
}

impl SlowZip {
    fn start(body: &'static [u8]) -> SlowZip {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (requested_tx, requested) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let _ = requested_tx.send(());
            let _ = released.recv();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(body);
        });
        SlowZip { addr, requested, release }
    }
}

/// A registry with one stack, `slow`, whose starter project `sp` is the zip at `zip_url`, and
/// one sample, `hanging`, whose Git remote is `sample_url`.
fn registry(dir: &Path, zip_url: &str, sample_url: &str) -> PathBuf {
    let stack = dir.join("stacks/slow");
    std::fs::create_dir_all(&stack).unwrap();
    std::fs::write(
        stack.join("devfile.yaml"),
        format!(
            "schemaVersion: 2.2.0
metadata:
  name: slow
  version: 1.0.0
  displayName: Slow
  description: a stack whose starter project takes its time
  language: Go
  projectType: Go
  provider: Tests
  supportUrl: https://example.invalid/support
  architectures: [amd64]
starterProjects:
  - name: sp
    zip:
      location: {zip_url}
components:
  - name: runtime
    container:
      image: example.invalid/runtime:1
"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("extraDevfileEntries.yaml"),
        format!(
            "schemaVersion: 1.0.0
samples:
  - name: hanging
    displayName: Hanging
    description: a sample whose remote never answers
    icon: https://example.invalid/icon.svg
    tags: [Go]
    projectType: Go
    language: Go
    provider: Tests
    supportUrl: https://example.invalid/support
    architectures: [amd64]
    git:
      remotes:
        origin: {sample_url}
"
        ),
    )
    .unwrap();
    dir.to_path_buf()
}

/// `GET path` over a new connection; the status line and the body.
fn get(addr: &str, path: &str) -> (String, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete response");
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    (head.lines().next().unwrap_or_default().to_string(), response[split + 4..].to_vec())
}

/// SIGTERM in another thread; returns whether the server exited successfully, and how long it took.
fn terminate(mut server: ServerProcess) -> (bool, Duration, ServerProcess) {
    let started = Instant::now();
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let clean = server.terminate();
        let _ = done.send((clean, server));
    });
    let (clean, server) =
        finished.recv_timeout(Duration::from_secs(30)).expect("the server stops within 30 s of SIGTERM");
    (clean, started.elapsed(), server)
}

// Before: a sample whose remote hung kept `git` (and the server's blocking thread) forever.
#[test]
fn a_sample_fetch_that_hangs_times_out_with_a_clear_log_line() {
    let hang = Hang::start();
    let dir = tempfile::tempdir().unwrap();
    let source = registry(dir.path(), "http://127.0.0.1:9/unused.zip", &hang.url());
    let server = ServerProcess::start(
        Path::new(BIN),
        &["--source", source.to_str().unwrap(), "--sample-fetch-timeout", "1s"],
        &[GIT_HTTP],
    );
    hang.wait_for_connection(Duration::from_secs(10));
    let log = server.wait_for_log("sample devfiles fetched", Duration::from_secs(20));
    assert!(
        log.contains("1 sample devfile fetch(es) took longer than the sample fetch timeout (--sample-fetch-timeout, SAMPLE_FETCH_TIMEOUT)"),
        "{log}"
    );
    assert!(
        log.contains("the devfile of sample hanging latest cannot be fetched") && log.contains("timed out after 1 s"),
        "{log}"
    );
    assert!(hang.all_closed_within(Duration::from_secs(5)), "git still holds its connection to the remote");
    let (status, body) = get(server.addr(), "/devfiles/hanging");
    assert_eq!(status, "HTTP/1.1 404 Not Found", "{}", String::from_utf8_lossy(&body));
}

#[test]
fn sigterm_stops_promptly_after_requests_in_flight_while_a_sample_fetch_hangs() {
    let hang = Hang::start();
    let zip = SlowZip::start(b"PK\x05\x06 the zip");
    let dir = tempfile::tempdir().unwrap();
    let source = registry(dir.path(), &format!("http://{}/slow.zip", zip.addr), &hang.url());
    // The default timeout (60 s): the fetch is still hanging when the signal comes.
    let server = ServerProcess::start(Path::new(BIN), &["--source", source.to_str().unwrap()], &[GIT_HTTP]);
    hang.wait_for_connection(Duration::from_secs(10));
    let addr = server.addr().to_string();
    let request = std::thread::spawn(move || get(&addr, "/devfiles/slow/starter-projects/sp"));
    zip.requested.recv_timeout(Duration::from_secs(10)).expect("the server asks for the zip");
    // The signal comes while the request waits for the zip; the zip comes a little later.
    let release = zip.release.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        let _ = release.send(());
    });
    let (clean, took, server) = terminate(server);
    let (status, body) = request.join().unwrap();
    assert_eq!(status, "HTTP/1.1 202 Accepted", "the request in flight finished; log:\n{}", server.log());
    assert_eq!(body, b"PK\x05\x06 the zip");
    assert!(clean, "the server exits successfully; its log:\n{}", server.log());
    assert!(took < Duration::from_secs(5), "the server took {took:?} to stop; its log:\n{}", server.log());
    assert!(took >= Duration::from_millis(400), "the server did not wait for the request in flight ({took:?})");
    assert!(hang.all_closed_within(Duration::from_secs(5)), "the abandoned fetch left git running");
    let log = server.log();
    assert!(log.contains("shutting down") && log.contains("stopped"), "{log}");
}
