//! The server's configuration: flags with environment fallbacks (SPEC §9).

use std::net::SocketAddr;

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

    /// The Git repository of the registry, used as SOURCE when --source is not given.
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

    pub fn serve_options(&self) -> ServeOptions {
        ServeOptions { headless: self.headless, registry_name: self.registry_name.clone() }
    }
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
    fn help_is_consistent() {
        use clap::CommandFactory;
        Config::command().debug_assert();
    }
}
