//! The server's configuration: flags with environment fallbacks (SPEC §9).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use clap::builder::BoolishValueParser;

use crate::ServeOptions;

/// Serves a devfile registry: the REST API of the devfile community registry, from an in-memory
/// snapshot of the index. In embedded mode the index is generated from SOURCE at startup and
/// devfiles are served from memory; in OCI mode (--oci-registry) the index published at
/// devfile-index:latest is served, and devfiles come from the registry; in prebuilt mode
/// (--index) an index.json built elsewhere is served with the stacks and samples folders laid
/// out as in the reference's registry image. Precedence: --oci-registry, then --source or
/// REGISTRY_REPO_URL, then --index, then ./stacks.
#[derive(Debug, Clone, Parser)]
#[command(name = "index-server", version, about)]
pub struct Config {
    /// Address and port to listen on.
    #[arg(long, env = "LISTEN_ADDR", value_name = "ADDR:PORT", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// The registry repository to serve: a folder (plain or in a Git work tree) or a Git URL.
    /// Defaults to REGISTRY_REPO_URL when set, else ./stacks (the default registry of this
    /// repository, run from its root).
    #[arg(long, value_name = "DIR|GIT-URL")]
    pub source: Option<String>,

    /// The Git repository of the registry, used as SOURCE when --source is not given; a GitHub
    /// repository (https://github.com/OWNER/REPO) is read through the GitHub API, with the token
    /// in GITHUB_TOKEN.
    #[arg(long, env = "REGISTRY_REPO_URL", value_name = "GIT-URL")]
    pub repo_url: Option<String>,

    /// Read the source at this branch, tag or commit (Git sources only).
    #[arg(long = "ref", env = "REGISTRY_REPO_BRANCH", value_name = "REF")]
    pub reference: Option<String>,

    /// OCI mode: serve the index published to this registry (`[http://|https://]host[:port][/namespace]`,
    /// as given to `index-generator publish`); devfiles and /v2 content come from it.
    #[arg(long, env = "OCI_REGISTRY_URL", value_name = "URL")]
    pub oci_registry: Option<String>,

    /// User name for the OCI registry's basic authentication; the password is read from
    /// OCI_REGISTRY_PASSWORD (never a flag).
    #[arg(long, env = "OCI_REGISTRY_USERNAME", value_name = "USER")]
    pub oci_username: Option<String>,

    /// Serve no viewer: /viewer answers 400.
    #[arg(long, env = "REGISTRY_HEADLESS", value_parser = BoolishValueParser::new(), default_value_t = false,
          num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub headless: bool,

    /// How often the server compares what it serves with devfile-index:latest in the OCI registry
    /// and with the head of the monitored repository (REGISTRY_REPO_URL): `30s`, `500ms`, `2m`.
    #[arg(long, env = "REFRESH_INTERVAL", value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub refresh_interval: Duration,

    /// The registry's name, as the viewer shows it.
    #[arg(long, env = "REGISTRY_NAME", default_value = "Community")]
    pub registry_name: String,

    /// Prebuilt mode: serve this index.json as it is (the reference's bare array of entries, or
    /// the `{"commit_hash", "stacks"}` document), without generating or validating anything.
    #[arg(long, env = "DEVFILE_INDEX", value_name = "FILE")]
    pub index: Option<PathBuf>,

    /// Prebuilt mode: the stacks folder (`<name>/<version>/` or `<name>/` per stack version),
    /// packed into memory at startup. Default: `stacks` next to the index file.
    #[arg(long, env = "DEVFILE_STACKS", value_name = "DIR")]
    pub stacks: Option<PathBuf>,

    /// Prebuilt mode: the samples folder (`<name>/devfile.yaml` or `<name>/<version>/devfile.yaml`).
    /// Default: `samples` next to the index file.
    #[arg(long, env = "DEVFILE_SAMPLES", value_name = "DIR")]
    pub samples: Option<PathBuf>,

    /// Embedded mode: how long fetching one sample devfile from its Git remote may take before
    /// it is abandoned (the sample then answers 404).
    #[arg(long, env = "SAMPLE_FETCH_TIMEOUT", value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub sample_fetch_timeout: Duration,

    /// Threads serving HTTP connections, each with its own single-threaded runtime. Default: one
    /// per core the process may use.
    #[arg(long, env = "SERVER_WORKERS", value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub workers: Option<u16>,

    /// Pin each worker to a CPU and hand a connection to the worker on the CPU that received
    /// it, when the process may run on as many CPUs as there are workers (the README's
    /// "Serving"). `false` leaves workers to the scheduler (a host whose cores other busy
    /// processes share).
    #[arg(long, env = "SERVER_PIN_WORKERS", value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub pin_workers: bool,
}

/// Where the index being served comes from, after precedence (see [`Config::mode`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// `--oci-registry`: the index published at `devfile-index:latest`.
    Oci { url: String },
    /// `--source`, `REGISTRY_REPO_URL` or `./stacks`: generated at startup from a registry repository.
    Embedded { source: String },
    /// `--index`: an index.json built elsewhere, with its stacks and samples folders.
    Prebuilt(Prebuilt),
}

impl Mode {
    /// `oci`, `embedded` or `prebuilt`, for the log.
    pub fn name(&self) -> &'static str {
        match self {
            Mode::Oci { .. } => "oci",
            Mode::Embedded { .. } => "embedded",
            Mode::Prebuilt(_) => "prebuilt",
        }
    }
}

/// The files of the prebuilt mode (SPEC §9 `DEVFILE_INDEX`, `DEVFILE_STACKS`, `DEVFILE_SAMPLES`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prebuilt {
    pub index: PathBuf,
    /// `None` when neither given nor present next to the index: stack devfiles answer 404.
    pub stacks: Option<PathBuf>,
    /// `None` when neither given nor present next to the index: sample devfiles answer 404.
    pub samples: Option<PathBuf>,
}

/// A setting that was given but has no effect in the chosen mode, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    /// The flag and its variable, as the user may have spelled either: `--index (DEVFILE_INDEX)`.
    pub setting: &'static str,
    pub reason: &'static str,
}

impl Config {
    /// The source to load: --source, else REGISTRY_REPO_URL, else ./stacks.
    pub fn source(&self) -> &str {
        self.source.as_deref().or(self.repo_url.as_deref()).unwrap_or("./stacks")
    }

    /// What to serve, and the settings that the choice leaves without effect. Precedence: an OCI
    /// registry (`--oci-registry`), then a registry repository named explicitly (`--source`,
    /// `REGISTRY_REPO_URL`), then a prebuilt index (`--index`), then the default `./stacks`.
    /// Explicit sources beat the prebuilt index because they are what updates follow.
    pub fn mode(&self) -> (Mode, Vec<Ignored>) {
        let mut ignored = Vec::new();
        let mut ignore = |given: bool, setting: &'static str, reason: &'static str| {
            if given {
                ignored.push(Ignored { setting, reason });
            }
        };
        let prebuilt_given = self.index.is_some() || self.stacks.is_some() || self.samples.is_some();
        let mode = if let Some(url) = &self.oci_registry {
            const WHY: &str = "the OCI mode (--oci-registry) serves the index published to the registry";
            ignore(self.source.is_some(), "--source", WHY);
            ignore(self.index.is_some(), "--index (DEVFILE_INDEX)", WHY);
            ignore(self.stacks.is_some(), "--stacks (DEVFILE_STACKS)", WHY);
            ignore(self.samples.is_some(), "--samples (DEVFILE_SAMPLES)", WHY);
            Mode::Oci { url: url.clone() }
        } else if self.source.is_some() || self.repo_url.is_some() {
            const WHY: &str = "the index is generated from the registry repository (--source or REGISTRY_REPO_URL)";
            ignore(self.index.is_some(), "--index (DEVFILE_INDEX)", WHY);
            ignore(self.stacks.is_some(), "--stacks (DEVFILE_STACKS)", WHY);
            ignore(self.samples.is_some(), "--samples (DEVFILE_SAMPLES)", WHY);
            Mode::Embedded { source: self.source().to_string() }
        } else if let Some(index) = &self.index {
            ignore(self.reference.is_some(), "--ref (REGISTRY_REPO_BRANCH)", "a prebuilt index is not read from Git");
            let beside = |name: &str| {
                let dir = index.parent().unwrap_or(Path::new(".")).join(name);
                dir.is_dir().then_some(dir)
            };
            Mode::Prebuilt(Prebuilt {
                index: index.clone(),
                stacks: self.stacks.clone().or_else(|| beside("stacks")),
                samples: self.samples.clone().or_else(|| beside("samples")),
            })
        } else {
            if prebuilt_given {
                const WHY: &str =
                    "the stacks and samples folders belong to a prebuilt index: give --index (DEVFILE_INDEX) too";
                ignore(self.stacks.is_some(), "--stacks (DEVFILE_STACKS)", WHY);
                ignore(self.samples.is_some(), "--samples (DEVFILE_SAMPLES)", WHY);
            }
            Mode::Embedded { source: self.source().to_string() }
        };
        if !matches!(mode, Mode::Embedded { .. }) {
            // Only the embedded mode fetches sample devfiles from Git.
            ignore(
                self.sample_fetch_timeout != DEFAULT_SAMPLE_FETCH_TIMEOUT,
                "--sample-fetch-timeout (SAMPLE_FETCH_TIMEOUT)",
                "only the embedded mode fetches sample devfiles from Git",
            );
        }
        (mode, ignored)
    }

    /// The OCI registry's credentials: the user name with OCI_REGISTRY_PASSWORD, else anonymous.
    pub fn oci_credentials(&self) -> index_generator::publish::Credentials {
        match (&self.oci_username, std::env::var("OCI_REGISTRY_PASSWORD")) {
            (Some(username), Ok(password)) => {
                index_generator::publish::Credentials::Basic { username: username.clone(), password }
            }
            _ => index_generator::publish::Credentials::Anonymous,
        }
    }

    /// The secrets a post-merge trigger may prove it knows: UPDATE_WEBHOOK_SECRET and UPDATE_TOKEN
    /// (environment only, never flags: command lines are visible to every user of the machine).
    pub fn update_auth(&self) -> crate::updates::Auth {
        let non_empty = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        crate::updates::Auth { webhook_secret: non_empty("UPDATE_WEBHOOK_SECRET"), token: non_empty("UPDATE_TOKEN") }
    }

    /// The monitored repository: REGISTRY_REPO_URL at REGISTRY_REPO_BRANCH, read with `git`, or
    /// through the GitHub API for `https://github.com/OWNER/REPO` with the token in GITHUB_TOKEN
    /// (environment only, like every secret).
    pub fn monitored(&self) -> Result<Option<crate::updates::Remote>, index_generator::SourceError> {
        let Some(url) = self.repo_url.as_deref() else { return Ok(None) };
        let token = index_generator::github::token_from_env();
        crate::updates::Remote::new(url, self.reference.as_deref(), token.as_deref()).map(Some)
    }

    pub fn serve_options(&self) -> ServeOptions {
        ServeOptions { headless: self.headless, registry_name: self.registry_name.clone() }
    }
}

/// The default of `--sample-fetch-timeout`, which its `default_value` spells.
const DEFAULT_SAMPLE_FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// `30s`, `500ms`, `2m`, `1h`, or a number of seconds; at least 100 ms.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| format!("{text} is not a duration such as 30s, 500ms or 2m"))?;
    let duration = match unit {
        "ms" => Duration::from_millis(number),
        "" | "s" => Duration::from_secs(number),
        "m" => Duration::from_secs(number * 60),
        "h" => Duration::from_secs(number * 3600),
        _ => return Err(format!("{text} is not a duration such as 30s, 500ms or 2m")),
    };
    if duration < Duration::from_millis(100) {
        return Err(format!("{text} is too short: 100ms at least"));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Config;

    #[test]
    fn defaults() {
        let config = Config::try_parse_from(["index-server"]).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert!(!config.headless);
        assert_eq!(config.registry_name, "Community");
        assert_eq!(config.workers, None);
        assert!(config.pin_workers);
    }

    #[test]
    fn flags() {
        let config =
            Config::try_parse_from(["index-server", "--listen", "0.0.0.0:9000", "--headless", "--source", "/r"])
                .unwrap();
        assert_eq!(config.listen.to_string(), "0.0.0.0:9000");
        assert!(config.headless);
        assert_eq!(config.source(), "/r");
        let config = Config::try_parse_from(["index-server", "--headless", "false"]).unwrap();
        assert!(!config.headless);
        let config = Config::try_parse_from(["index-server", "--repo-url", "https://git.example/r.git"]).unwrap();
        assert_eq!(config.source(), "https://git.example/r.git");
        let config = Config::try_parse_from(["index-server", "--workers", "3", "--pin-workers", "false"]).unwrap();
        assert_eq!((config.workers, config.pin_workers), (Some(3), false));
        assert!(Config::try_parse_from(["index-server", "--workers", "0"]).is_err());
    }

    #[test]
    fn refresh_interval() {
        let parse =
            |v: &str| Config::try_parse_from(["index-server", "--refresh-interval", v]).map(|c| c.refresh_interval);
        assert_eq!(Config::try_parse_from(["index-server"]).unwrap().refresh_interval.as_secs(), 30);
        assert_eq!(parse("500ms").unwrap().as_millis(), 500);
        assert_eq!(parse("2m").unwrap().as_secs(), 120);
        assert_eq!(parse("7").unwrap().as_secs(), 7);
        for bad in ["", "s", "1d", "10ms", "-1s", "1.5s"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mode_precedence() {
        use super::{Mode, Prebuilt};
        let mode = |args: &[&str]| {
            let config = Config::try_parse_from(std::iter::once("index-server").chain(args.iter().copied())).unwrap();
            let (mode, ignored) = config.mode();
            (mode, ignored.iter().map(|i| i.setting).collect::<Vec<_>>())
        };
        let embedded = |source: &str| Mode::Embedded { source: source.to_string() };
        assert_eq!(mode(&[]), (embedded("./stacks"), vec![]));
        let (oci, ignored) =
            mode(&["--oci-registry", "r:5000", "--source", "s", "--index", "i.json", "--samples", "x"]);
        assert_eq!(oci, Mode::Oci { url: "r:5000".to_string() });
        assert_eq!(ignored, ["--source", "--index (DEVFILE_INDEX)", "--samples (DEVFILE_SAMPLES)"]);
        assert_eq!(
            mode(&["--repo-url", "https://git.example/r.git", "--index", "i.json", "--stacks", "s"]),
            (embedded("https://git.example/r.git"), vec!["--index (DEVFILE_INDEX)", "--stacks (DEVFILE_STACKS)"])
        );
        assert_eq!(
            mode(&["--index", "/nowhere/index.json", "--stacks", "/s", "--ref", "main"]),
            (
                Mode::Prebuilt(Prebuilt {
                    index: "/nowhere/index.json".into(),
                    stacks: Some("/s".into()),
                    samples: None
                }),
                vec!["--ref (REGISTRY_REPO_BRANCH)"]
            )
        );
        // Folders and no index: the default registry, and the folders are said to be ignored.
        assert_eq!(
            mode(&["--stacks", "/s", "--samples", "/x"]),
            (embedded("./stacks"), vec!["--stacks (DEVFILE_STACKS)", "--samples (DEVFILE_SAMPLES)"])
        );
        assert_eq!(
            mode(&["--index", "i.json", "--sample-fetch-timeout", "5s"]).1,
            ["--sample-fetch-timeout (SAMPLE_FETCH_TIMEOUT)"]
        );
    }

    #[test]
    fn prebuilt_folders_default_to_the_index_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("stacks")).unwrap();
        let index = dir.path().join("index.json");
        let config = Config::try_parse_from(["index-server", "--index", index.to_str().unwrap()]).unwrap();
        let super::Mode::Prebuilt(prebuilt) = config.mode().0 else { panic!("not the prebuilt mode") };
        assert_eq!(prebuilt.stacks, Some(dir.path().join("stacks")));
        // No samples folder there: none.
        assert_eq!(prebuilt.samples, None);
    }

    #[test]
    fn help_is_consistent() {
        use clap::CommandFactory;
        Config::command().debug_assert();
    }
}
