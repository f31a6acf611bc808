//! `index-generator`: builds and checks the devfile index of a registry repository.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::sync::Arc;

use index_generator::publish::{self, Credentials, LatestIndex, PublishProgress, Publisher, Target};
use index_generator::scan::VersionSource;
use index_generator::{Checkout, DevfileSchemas, Generated, Options, Progress, samples, source};
use indicatif::{ProgressBar, ProgressStyle};

/// Builds the devfile index (index.json) of a registry repository and checks every devfile.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate SOURCE and write its index document.
    Generate {
        #[command(flatten)]
        source: SourceArgs,
        /// Where to write the index; standard output when absent.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Write the reference's format: the bare array of entries, without `commit_hash`.
        #[arg(long)]
        legacy: bool,
    },
    /// Validate SOURCE and report its problems; exits with 1 when there is any error.
    Validate {
        #[command(flatten)]
        source: SourceArgs,
    },
    /// Validate SOURCE, then publish every stack version, every sample devfile and, last, the
    /// index document to an OCI registry. Only what the registry does not have yet is uploaded.
    Publish {
        #[command(flatten)]
        source: SourceArgs,
        #[command(flatten)]
        registry: RegistryArgs,
        /// How many artifacts are pushed at the same time.
        #[arg(long, default_value_t = 16, value_name = "N")]
        concurrency: usize,
        /// Print the summary as one JSON object on standard output.
        #[arg(long)]
        json: bool,
        /// Look every artifact up, and push what is missing, even when the registry already
        /// has this very index (by default that means everything is in place).
        #[arg(long)]
        verify: bool,
    },
}

#[derive(clap::Args)]
struct RegistryArgs {
    /// The OCI registry: `[http://|https://]host[:port][/namespace]` (plain HTTP for localhost
    /// and 127.0.0.1 without a scheme).
    #[arg(long = "registry", env = "OCI_REGISTRY_URL", value_name = "URL")]
    url: String,
    /// User name for the registry's basic authentication.
    #[arg(long, env = "OCI_REGISTRY_USERNAME", value_name = "USER")]
    username: Option<String>,
    /// Read the password from standard input (one line).
    #[arg(long, requires = "username")]
    password_stdin: bool,
    /// The password, from the environment only (never a flag: it would show in `ps`).
    #[arg(skip = std::env::var("OCI_REGISTRY_PASSWORD").ok())]
    password_env: Option<String>,
}

impl RegistryArgs {
    fn credentials(&self) -> Result<Credentials> {
        let Some(username) = self.username.clone() else {
            return Ok(Credentials::Anonymous);
        };
        let password = if self.password_stdin {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).context("cannot read the password from standard input")?;
            line.trim_end_matches(['\n', '\r']).to_string()
        } else {
            self.password_env.clone().context(
                "--username needs a password: give it on standard input with --password-stdin, or in OCI_REGISTRY_PASSWORD",
            )?
        };
        Ok(Credentials::Basic { username, password })
    }
}

#[derive(clap::Args)]
struct SourceArgs {
    /// A registry repository: a folder (plain or in a Git work tree), a Git URL, or
    /// https://github.com/OWNER/REPO[/tree/REF], read through the GitHub API (token in
    /// GITHUB_TOKEN, API at GITHUB_API_URL).
    #[arg(value_name = "SOURCE")]
    source: String,
    /// Read the files at this branch, tag or commit of the Git repository.
    #[arg(long = "ref", value_name = "REF")]
    reference: Option<String>,
    /// Fail on any error, and on uncommitted changes in a Git work tree; nothing is written then.
    #[arg(long)]
    strict: bool,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::builder()
                .with_default_directive(tracing_subscriber::filter::LevelFilter::WARN.into())
                .from_env_lossy(),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Generate { source, output, legacy } => {
            let generated = build(&source)?;
            if source.strict && generated.errors() > 0 {
                anyhow::bail!("{} error(s) in {}; --strict writes nothing", generated.errors(), source.source);
            }
            let text = if legacy { generated.document.to_legacy_json() } else { generated.document.to_pretty_json() };
            match &output {
                Some(path) => {
                    write_atomically(path, &text).with_context(|| format!("cannot write {}", path.display()))?
                }
                None => {
                    std::io::stdout().write_all(text.as_bytes()).context("cannot write the index to standard output")?
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate { source } => {
            let generated = build(&source)?;
            Ok(if generated.errors() > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
        Command::Publish { source, registry, concurrency, json, verify } => {
            publish(&source, &registry, concurrency, json, verify)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn publish(args: &SourceArgs, registry: &RegistryArgs, concurrency: usize, json: bool, verify: bool) -> Result<()> {
    let target: Target = registry.url.parse()?;
    let credentials = registry.credentials()?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    // Setting up the client (TLS roots, asking the registry whether it wants credentials) on the
    // runtime's threads while this one reads and validates the source.
    let connecting = runtime.spawn(Publisher::connect(target, credentials, concurrency));
    let (checkout, generated) = build_with_checkout(args)?;
    if args.strict && generated.errors() > 0 {
        anyhow::bail!("{} error(s) in {}; --strict publishes nothing", generated.errors(), args.source);
    }
    let index_json = generated.document.to_pretty_json();
    let commit_hash = &generated.document.commit_hash;
    let publisher = runtime.block_on(connecting).context("connecting to the registry panicked")?;
    let publisher = Arc::new(publisher.verify(verify));
    // The registry already serving this very index is the common case of a re-run: nothing to
    // fetch, pack or upload (sample devfiles are not fetched again either: --verify does).
    let (_, stack_versions, _, sample_versions) = generated.counts();
    let latest = runtime
        .block_on(publisher.latest_index(commit_hash, index_json.as_bytes(), stack_versions))
        .with_context(|| format!("cannot publish to {}", publisher.target()))?;
    let changed = match &latest {
        LatestIndex::Same(summary) => {
            print_summary(summary, json);
            return Ok(());
        }
        // Every artifact the published index names was in place before it was pushed: when Git
        // says which stacks changed since its commit, only those are packed and pushed.
        LatestIndex::Other { commit_hash: Some(old) } => checkout.changes_since(old),
        LatestIndex::Other { commit_hash: None } | LatestIndex::None => None,
    };
    let sources: Vec<&VersionSource> = match &changed {
        None => generated.sources.iter().collect(),
        Some(changes) => generated.sources.iter().filter(|s| changes.touch(&s.folder)).collect(),
    };
    let skipped = generated.sources.len() - sources.len();
    if changed.is_some() {
        tracing::info!(skipped, packed = sources.len(), "only the stacks changed since the published index");
    }
    // Sample devfiles are fetched (git, mostly waiting) while stack versions are packed (on
    // every core) and pushed as each is ready. With --strict a sample that cannot be fetched
    // stops the run before anything is pushed, so they are fetched first.
    let fetch_samples = || {
        let (samples, problems) = samples::fetch(&generated.document, args.strict);
        for problem in &problems {
            eprintln!("{problem}");
        }
        (samples, problems.iter().any(|p| p.is_error()).then_some(problems.len()))
    };
    let early_samples = if args.strict {
        let (samples, failed) = fetch_samples();
        if let Some(failed) = failed {
            anyhow::bail!("{failed} sample devfile(s) cannot be fetched; --strict publishes nothing");
        }
        Some(samples)
    } else {
        None
    };
    let bar = PublishBar::new();
    let samples = || match early_samples {
        Some(samples) => samples,
        None => fetch_samples().0,
    };
    let packing = publish::Packing { root: &checkout.root, sources: &sources, samples, sample_versions };
    let mut summary = publish::publish_packing(&runtime, &publisher, packing, commit_hash, index_json.as_bytes(), &bar)
        .with_context(|| format!("cannot publish to {}", publisher.target()))?;
    bar.bar.finish_and_clear();
    if changed.is_some() {
        summary.artifacts += skipped;
        summary.manifests_unchanged += skipped;
        summary.artifacts_checked = false;
    }
    print_summary(&summary, json);
    Ok(())
}

fn print_summary(summary: &publish::Summary, json: bool) {
    let index_state = match (summary.index_pushed, summary.artifacts_checked) {
        (true, true) => "pushed",
        (false, true) => "unchanged",
        (false, false) => "unchanged, so every artifact is in place (--verify checks each)",
        (true, false) => "pushed (only the stacks changed since the published index were packed; --verify checks each)",
    };
    eprintln!(
        "published {} artifact(s) to {} in {:.1} s: {} manifest(s) pushed, {} unchanged; {} blob(s) uploaded ({}), {} mounted, {} already there; index {index_state} ({})",
        summary.artifacts,
        summary.registry,
        summary.duration_ms as f64 / 1000.0,
        summary.manifests_pushed,
        summary.manifests_unchanged,
        summary.blobs_uploaded,
        indicatif::HumanBytes(summary.bytes_uploaded),
        summary.blobs_mounted,
        summary.blobs_present,
        summary.index_digest,
    );
    if json {
        println!("{}", serde_json::to_string(&summary).expect("a summary serializes"));
    }
}

/// Opens, scans and validates a source, printing problems and a summary to standard error.
fn build(args: &SourceArgs) -> Result<Generated> {
    build_with_checkout(args).map(|(_, generated)| generated)
}

fn build_with_checkout(args: &SourceArgs) -> Result<(Checkout, Generated)> {
    let checkout: Checkout = source::open(&args.source, args.reference.as_deref())
        .with_context(|| format!("cannot read the registry repository {}", args.source))?;
    let schemas = DevfileSchemas::new();
    let progress = Bar::new();
    let generated = index_generator::generate(&checkout, &schemas, Options { strict: args.strict }, &progress)
        .with_context(|| format!("cannot scan {}", args.source))?;
    progress.bar.finish_and_clear();
    for problem in &generated.problems {
        eprintln!("{problem}");
    }
    let (stacks, stack_versions, samples, sample_versions) = generated.counts();
    eprintln!(
        "{} devfile(s) checked: {stacks} stack(s) with {stack_versions} version(s), {samples} sample(s) with {sample_versions} version(s); {} error(s), {} warning(s){}",
        generated.devfiles,
        generated.errors(),
        generated.warnings(),
        if checkout.commit_hash.is_empty() { String::new() } else { format!("; commit {}", checkout.commit_hash) },
    );
    Ok((checkout, generated))
}

/// Writes through a temporary file in the same folder, so a reader never sees half an index.
/// The file gets the mode of the file it replaces, or 0644.
fn write_atomically(path: &std::path::Path, text: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    anyhow::ensure!(dir.is_dir(), "the folder {} does not exist", dir.display());
    let mode = std::fs::metadata(path).map(|m| m.permissions().mode()).unwrap_or(0o644);
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(text.as_bytes())?;
    file.as_file().set_permissions(std::fs::Permissions::from_mode(mode))?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// A progress bar on a terminal when there are more than a handful of devfiles; nothing when
/// standard error is not a terminal.
struct Bar {
    bar: ProgressBar,
}

impl Bar {
    fn new() -> Bar {
        Bar { bar: ProgressBar::hidden() }
    }
}

impl Progress for Bar {
    fn start(&self, devfiles: u64) {
        if devfiles > 8 && std::io::stderr().is_terminal() {
            self.bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            self.bar.set_length(devfiles);
            self.bar.set_style(
                ProgressStyle::with_template("{spinner} checking devfiles {bar:30} {pos}/{len} {wide_msg}")
                    .expect("a valid template"),
            );
        }
    }

    fn devfile_done(&self, file: &str) {
        self.bar.set_message(file.to_string());
        self.bar.inc(1);
    }
}

/// Artifacts done out of the total, and bytes uploaded, on a terminal only.
struct PublishBar {
    bar: ProgressBar,
    uploaded: std::sync::atomic::AtomicU64,
}

impl PublishBar {
    fn new() -> PublishBar {
        let bar = ProgressBar::hidden();
        if std::io::stderr().is_terminal() {
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} publishing {bar:30} {pos}/{len} artifacts, {msg} {wide_msg}")
                    .expect("a valid template"),
            );
            bar.set_message("0 B uploaded");
        }
        PublishBar { bar, uploaded: Default::default() }
    }
}

impl PublishProgress for PublishBar {
    fn start(&self, artifacts: u64) {
        self.bar.set_length(artifacts);
    }

    fn artifact_done(&self, _name: &str, bytes_uploaded: u64) {
        self.bar.inc(1);
        let uploaded = self.uploaded.fetch_add(bytes_uploaded, std::sync::atomic::Ordering::Relaxed) + bytes_uploaded;
        self.bar.set_message(format!("{} uploaded", indicatif::HumanBytes(uploaded)));
    }
}
