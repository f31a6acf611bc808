//! Third-party OCI clients for interoperability checks: the Python `oras` library, which the
//! devfile tooling uses to pull stacks, and Debian's `skopeo`.
//!
//! `oras` is installed from PyPI at a pinned version into a virtualenv the tests create once,
//! beside the test binaries (`target/test-venv-oras-<version>`), shared by every test binary and
//! every parallel test: it is built in a folder of its own and renamed into place when complete.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow, bail};

/// The pinned version of the `oras` PyPI package.
pub const ORAS_VERSION: &str = "0.2.43";

/// Pulls `reference` (`repo:tag`, e.g. `devfile-catalog/go:1.0.2`) from the registry at
/// `registry_addr` (`127.0.0.1:PORT`) with the Python `oras` client into `outdir`, which it
/// creates; returns the files written (oras names them after their title annotation).
///
/// oras retries a failed request (an exception or a 500) five times, sleeping 3, 5, 11, 29 and
/// 83 s in between: a pull that fails would take over two minutes. The retries stay, the sleeps
/// are skipped, so that a failing pull fails at once.
pub fn oras_pull(
    registry_addr: &str,
    reference: &str,
    outdir: &Path,
    basic_auth: Option<(&str, &str)>,
) -> Result<Vec<PathBuf>> {
    const PULL: &str = r#"
import sys
import types
import oras.client
import oras.decorator

oras.decorator.time = types.SimpleNamespace(sleep=lambda seconds: None)

host, target, outdir, user, password = sys.argv[1:6]
if user:
    client = oras.client.OrasClient(hostname=host, insecure=True, auth_backend="basic")
    client.auth.set_basic_auth(user, password)
else:
    client = oras.client.OrasClient(hostname=host, insecure=True)
for path in client.pull(target=target, outdir=outdir):
    print(path)
"#;
    let (user, password) = basic_auth.unwrap_or_default();
    let target = format!("{registry_addr}/{reference}");
    let out = Command::new(python()?)
        .args(["-c", PULL, registry_addr, &target])
        .arg(outdir)
        .args([user, password])
        // The registry is on loopback: never through a proxy from the environment.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .output()
        .context("running the virtualenv's python")?;
    let stdout = checked(&out, &format!("oras pull {target}"))?;
    Ok(stdout.lines().filter(|l| !l.is_empty()).map(PathBuf::from).collect())
}

/// The manifest bytes of `reference` (`repo:tag` or `repo@digest`) exactly as `skopeo inspect
/// --raw` reads them from the registry at `registry_addr`.
pub fn skopeo_inspect_raw(registry_addr: &str, reference: &str, creds: Option<(&str, &str)>) -> Result<Vec<u8>> {
    let mut cmd = Command::new("skopeo");
    cmd.args(["inspect", "--raw", "--tls-verify=false"]);
    match creds {
        Some((user, password)) => cmd.arg(format!("--creds={user}:{password}")),
        // Not whatever a developer's auth files hold.
        None => cmd.arg("--no-creds"),
    };
    let out = cmd
        .arg(format!("docker://{registry_addr}/{reference}"))
        .output()
        .map_err(|e| anyhow!("running skopeo: {e}: install it with scripts/setup.sh (Debian package skopeo)"))?;
    checked(&out, &format!("skopeo inspect --raw {registry_addr}/{reference}"))?;
    Ok(out.stdout)
}

/// Standard output of a finished command, or an error with its standard error.
fn checked(out: &Output, what: &str) -> Result<String> {
    if !out.status.success() {
        bail!("{what} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The virtualenv's python, once the virtualenv exists with `oras` installed.
pub fn python() -> Result<PathBuf> {
    // One attempt per process: a failure (no network, no venv module) is reported to every test.
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PYTHON.get_or_init(|| create_venv().map_err(|e| format!("{e:#}"))).clone().map_err(|e| anyhow!(e))
}

fn create_venv() -> Result<PathBuf> {
    let parent = venv_parent()?;
    let venv = parent.join(format!("test-venv-oras-{ORAS_VERSION}"));
    let python = venv.join("bin/python");
    if python.exists() {
        return Ok(python);
    }
    // Built aside and renamed when complete, so that a folder under the final name is always
    // usable, whichever process (test binaries may run in parallel) gets there first.
    let building = parent.join(format!("test-venv-oras-{ORAS_VERSION}.building-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&building);
    if let Err(e) = install_oras(&building) {
        let _ = std::fs::remove_dir_all(&building);
        return Err(e);
    }
    // The venv's python finds its packages relative to its own path, so the rename is safe (the
    // scripts pip wrote carry the old path in their shebang, but nothing here runs them).
    if let Err(e) = std::fs::rename(&building, &venv) {
        let _ = std::fs::remove_dir_all(&building);
        if !python.exists() {
            return Err(e).with_context(|| format!("moving the virtualenv to {}", venv.display()));
        }
    }
    Ok(python)
}

/// `python3 -m venv <dir>`, then `pip install oras==<pinned>` in it.
fn install_oras(dir: &Path) -> Result<()> {
    let out =
        Command::new("python3").args(["-m", "venv"]).arg(dir).output().map_err(|e| {
            anyhow!("running python3: {e}: install Python 3 with its venv module (run scripts/setup.sh)")
        })?;
    checked(&out, "python3 -m venv").context(
        "creating the virtualenv for the oras client: on Debian install python3-venv (run scripts/setup.sh)",
    )?;
    let out = Command::new(dir.join("bin/python"))
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
        .arg(format!("oras=={ORAS_VERSION}"))
        .output()
        .context("running the virtualenv's pip")?;
    checked(&out, &format!("pip install oras=={ORAS_VERSION}"))
        .context("installing oras from PyPI (is PyPI reachable?)")?;
    Ok(())
}

/// The target folder (or `target/<triple>`) of the running test binary, which lives in
/// `<target>/<profile>/deps/`; the system temp folder for binaries elsewhere.
fn venv_parent() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the test binary")?;
    let deps = exe.parent().filter(|dir| dir.file_name().is_some_and(|name| name == "deps"));
    Ok(deps.and_then(|deps| deps.parent()?.parent()).map_or_else(std::env::temp_dir, Path::to_path_buf))
}
