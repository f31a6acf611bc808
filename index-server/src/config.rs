//! The server's configuration: flags with environment fallbacks (SPEC §9).

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use clap::builder::BoolishValueParser;

use crate::ServeOptions;

/// Serves a devfile registry: the REST API of the devfile community registry, from an in-memory
/// snapshot of the index. In embedded mode the index is generated from SOURCE at startup and
/// devfiles are served from memory; in OCI mode (--oci-registry) the index published at
/// devfile-index:latest is served, and devfiles come from the registry.
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
}

impl Config {
    /// The source to load: --source, else REGISTRY_REPO_URL, else ./stacks.
    pub fn source(&self) -> &str {
        self.source.as_deref().or(self.repo_url.as_deref()).unwrap_or("./stacks")
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
    fn help_is_consistent() {
        use clap::CommandFactory;
        Config::command().debug_assert();
    }
}
