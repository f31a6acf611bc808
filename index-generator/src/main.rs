//! `index-generator`: builds and checks the devfile index of a registry repository.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use index_generator::{Checkout, DevfileSchemas, Generated, Options, Progress, source};
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
}

#[derive(clap::Args)]
struct SourceArgs {
    /// A registry repository: a folder (plain or in a Git work tree) or a Git URL.
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
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
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
    }
}

/// Opens, scans and validates a source, printing problems and a summary to standard error.
fn build(args: &SourceArgs) -> Result<Generated> {
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
    Ok(generated)
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
