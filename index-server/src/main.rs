//! `index-server`: serves the devfile registry REST API.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;
use index_generator::publish::Target;
use index_server::config::Config;
use index_server::oci::OciStore;
use index_server::{AppState, Snapshot, app, embedded};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let config = Config::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(config: Config) -> Result<()> {
    let state = match &config.oci_registry {
        Some(url) => oci_mode(&config, url).await?,
        None => embedded_mode(&config).await?,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(address = %config.listen, headless = config.headless, "serving the registry");
    axum::serve(listener, app(state)).with_graceful_shutdown(shutdown()).await.context("the server failed")?;
    tracing::info!("stopped");
    Ok(())
}

/// Serves what is published at `devfile-index:latest`; never pushes anything.
async fn oci_mode(config: &Config, url: &str) -> Result<AppState> {
    let started = std::time::Instant::now();
    let target: Target = url.parse()?;
    let store = OciStore::connect(target, &config.oci_credentials()).await;
    let published =
        store.index().await.with_context(|| format!("cannot read the index from {url}"))?.with_context(|| {
            format!("{url} has no devfile-index:latest: publish it first with `index-generator publish`")
        })?;
    tracing::info!(
        registry = %store.target(),
        commit = %published.document.commit_hash,
        digest = %published.manifest_digest,
        entries = published.document.stacks.len(),
        duration_ms = started.elapsed().as_millis() as u64,
        "loaded the published index"
    );
    let snapshot = Snapshot::new(published.document, None).with_published_digest(published.manifest_digest);
    Ok(AppState::new(snapshot, Arc::new(store), config.serve_options()))
}

/// Generates the index of the source in process and serves it from memory.
async fn embedded_mode(config: &Config) -> Result<AppState> {
    let source = config.source().to_string();
    let reference = config.reference.clone();
    let loaded = tokio::task::spawn_blocking(move || embedded::load(&source, reference.as_deref()))
        .await
        .context("loading the registry repository panicked")??;
    let store = Arc::clone(&loaded.store);
    let state = AppState::new(loaded.snapshot, loaded.store, config.serve_options());
    // Sample devfiles come from the network: serve at once, add them when they arrive.
    let snapshot = state.snapshots.current();
    tokio::task::spawn_blocking(move || embedded::fetch_samples(&snapshot, &store));
    Ok(state)
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM; requests in flight are finished first.
async fn shutdown() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
