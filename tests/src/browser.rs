//! A real browser for the viewer's tests: headless Chromium driven over WebDriver
//! ([`fantoccini`]) through `chromedriver`, both from Debian (`chromium`, `chromium-driver`).
//!
//! One chromedriver serves the whole test binary ([`Browser::open`] starts it on first use);
//! each test gets its own Chromium session with a fresh profile and download folder. At most
//! [`MAX_SESSIONS`] sessions run at once, so a test binary never starts more browsers than two
//! cores can drive. Chromedriver runs behind a `sh` wrapper in a process group of its own whose
//! standard input is a pipe held by the test process: when that process exits, however it
//! exits, the wrapper kills the group (chromedriver and every Chromium it started).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::{Semaphore, SemaphorePermit};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Browsers open at once per test binary.
pub const MAX_SESSIONS: usize = 2;

/// How long a page may take to show what a test waits for.
pub const WAIT: Duration = Duration::from_secs(20);

/// `sh -c WRAPPER chromedriver-wrapper BINARY PORT`: starts chromedriver in the background and,
/// when standard input closes, kills the whole process group (the wrapper runs under `setsid`,
/// so the group is chromedriver, the browsers it started, and the wrapper itself).
const WRAPPER: &str =
    r#""$1" --port="$2" --allowed-ips=127.0.0.1 </dev/null >/dev/null 2>&1 & read -r line; kill -TERM 0"#;

/// The flags of NOTES.md "Headless Chromium": no sandbox as root, and nothing that reaches out
/// to the network on its own (the machine has no internet; refused connections flood it).
const FLAGS: [&str; 10] = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
];

struct Driver {
    url: String,
    /// The wrapper; its standard input is the pipe that keeps chromedriver alive.
    _process: Mutex<Child>,
}

fn driver() -> &'static Driver {
    static DRIVER: OnceLock<Driver> = OnceLock::new();
    DRIVER.get_or_init(|| {
        for (binary, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            assert!(
                Path::new(binary).exists(),
                "{binary} is missing: the browser tests need headless Chromium. Install it with \
                 scripts/setup.sh, or as root: apt-get install -y chromium chromium-driver (Debian package {package})"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let process = Command::new("setsid")
            .args(["sh", "-c", WRAPPER, "chromedriver-wrapper", CHROMEDRIVER, &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver (setsid and sh are needed)");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ready(port) {
            assert!(Instant::now() < deadline, "chromedriver did not answer on {url}/status within 20 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver { url, _process: Mutex::new(process) }
    })
}

/// Whether chromedriver answers `/status` with `"ready": true`.
fn ready(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if write!(stream, "GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.contains("\"ready\":true") || answer.contains("\"ready\": true")
}

static SESSIONS: Semaphore = Semaphore::const_new(MAX_SESSIONS);

/// One Chromium session with its own profile and download folder. Call [`Browser::close`] at
/// the end of a test; a session left open (a failed test) ends with the test binary.
pub struct Browser {
    pub client: Client,
    downloads: TempDir,
    _profile: TempDir,
    _permit: SemaphorePermit<'static>,
}

impl Browser {
    /// A new session in a window of `width` x `height` pixels.
    pub async fn open(width: u32, height: u32) -> Browser {
        let driver = driver();
        let permit = SESSIONS.acquire().await.expect("the session semaphore is never closed");
        let profile = tempfile::tempdir().unwrap();
        let downloads = tempfile::tempdir().unwrap();
        let mut args: Vec<String> = FLAGS.iter().map(|f| f.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        args.push(format!("--window-size={width},{height}"));
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": args,
                "prefs": {
                    "download.default_directory": downloads.path(),
                    "download.prompt_for_download": false,
                    "download.directory_upgrade": true,
                    "safebrowsing.enabled": false,
                },
            },
        });
        let Value::Object(capabilities) = capabilities else { unreachable!() };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client =
            ClientBuilder::new(connector).capabilities(capabilities).connect(&driver.url).await.unwrap_or_else(|e| {
                panic!("cannot open a Chromium session through chromedriver at {}: {e}", driver.url)
            });
        let browser = Browser { client, downloads, _profile: profile, _permit: permit };
        // Downloads in headless Chromium need to be allowed explicitly (CDP).
        browser
            .cdp(
                "Browser.setDownloadBehavior",
                json!({ "behavior": "allow", "downloadPath": browser.downloads.path() }),
            )
            .await;
        browser
    }

    /// Sends a Chrome DevTools Protocol command through chromedriver.
    pub async fn cdp(&self, command: &str, params: Value) -> Value {
        let session = self.client.session_id().await.unwrap().expect("a session");
        let url = format!("{}/session/{session}/goog/cdp/execute", driver().url);
        let body = json!({ "cmd": command, "params": params }).to_string();
        let answer = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .post(url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("CDP {command}: {e}"));
        assert!(answer.status().is_success(), "CDP {command}: {}", answer.text().await.unwrap_or_default());
        answer.json().await.unwrap()
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("opening {url}: {e}"));
    }

    /// Waits until `css` matches an element, and returns it.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css} within {WAIT:?}: {e}"))
    }

    /// How many elements match `css` now.
    pub async fn count(&self, css: &str) -> usize {
        self.client.find_all(Locator::Css(css)).await.unwrap().len()
    }

    /// Runs `script` (a function body; `arguments` are `args`) and returns its value.
    pub async fn eval(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute(script, args).await.unwrap_or_else(|e| panic!("running {script}: {e}"))
    }

    /// Polls `script` until it returns `true`; panics with `what` after [`WAIT`].
    pub async fn wait_until(&self, what: &str, script: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            if self.eval(script, Vec::new()).await == Value::Bool(true) {
                return;
            }
            assert!(Instant::now() < deadline, "{what}: not true within {WAIT:?} ({script})");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn current_url(&self) -> String {
        self.client.current_url().await.unwrap().to_string()
    }

    /// Saves a screenshot of the window as `target/viewer-screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.unwrap();
        let dir = screenshots_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Resizes the window (to look at a page on a phone's width, say).
    pub async fn resize(&self, width: u32, height: u32) {
        self.client.set_window_size(width, height).await.unwrap();
    }

    /// Waits for a finished download named `name` and returns its bytes.
    pub async fn download(&self, name: &str) -> Vec<u8> {
        let path = self.downloads.path().join(name);
        let deadline = Instant::now() + WAIT;
        loop {
            // Chromium writes `<name>.crdownload` and renames it when done.
            if let Ok(bytes) = std::fs::read(&path) {
                if !bytes.is_empty() {
                    return bytes;
                }
            }
            let present: Vec<String> = std::fs::read_dir(self.downloads.path())
                .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
                .unwrap_or_default();
            assert!(Instant::now() < deadline, "no download {name} within {WAIT:?}; the folder holds {present:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Ends the session (and its Chromium).
    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}

/// `target/viewer-screenshots`, where browser tests leave their screenshots.
pub fn screenshots_dir() -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| crate::workspace().join("target"));
    target.join("viewer-screenshots")
}
