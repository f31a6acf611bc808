//! `index-server`: serves the devfile registry REST API.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;
use index_generator::publish::{Publisher, Target};
use index_server::config::Config;
use index_server::oci::OciStore;
use index_server::updates::{Backend, Updates};
use index_server::{AppState, Snapshot, app, embedded};

/// Artifacts pushed at once by an update.
const PUBLISH_CONCURRENCY: usize = 16;

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
    let (mut state, backend) = match &config.oci_registry {
        Some(url) => oci_mode(&config, url).await?,
        None => embedded_mode(&config).await?,
    };
    // The embedded mode takes updates from a monitored repository only; the OCI mode also
    // follows the registry, where other replicas publish.
    let monitored = config.monitored().context("cannot set up the monitored repository")?;
    if monitored.is_some() || matches!(backend, Backend::Oci { .. }) {
        let updates = Updates::new(
            monitored,
            backend,
            Arc::clone(&state.snapshots),
            Arc::clone(&state.events),
            config.update_auth(),
            config.refresh_interval,
        );
        tracing::info!(
            repository.url = updates.remote().map(|r| r.url()),
            repository.branch = updates.remote().and_then(|r| r.branch()),
            refresh_interval_ms = config.refresh_interval.as_millis() as u64,
            triggers = ?config.update_auth(),
            "taking updates"
        );
        updates.start();
        state.updates = Some(updates);
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(address = %config.listen, headless = config.headless, "serving the registry");
    let events = Arc::clone(&state.events);
    let stopping = async move {
        shutdown().await;
        // Open event streams would hold the graceful shutdown forever.
        events.close();
    };
    axum::serve(listener, app(state)).with_graceful_shutdown(stopping).await.context("the server failed")?;
    tracing::info!("stopped");
    Ok(())
}

/// Serves what is published at `devfile-index:latest`; never pushes anything at startup.
async fn oci_mode(config: &Config, url: &str) -> Result<(AppState, Backend)> {
    let started = std::time::Instant::now();
    let target: Target = url.parse()?;
    let store = Arc::new(OciStore::connect(target.clone(), &config.oci_credentials()).await);
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
    let publisher = Arc::new(Publisher::connect(target, config.oci_credentials(), PUBLISH_CONCURRENCY).await);
    let state = AppState::new(snapshot, Arc::clone(&store) as Arc<dyn index_server::Store>, config.serve_options());
    Ok((state, Backend::Oci { publisher, store }))
}

/// Generates the index of the source in process and serves it from memory.
async fn embedded_mode(config: &Config) -> Result<(AppState, Backend)> {
    let source = config.source().to_string();
    let reference = config.reference.clone();
    let loaded = tokio::task::spawn_blocking(move || embedded::load(&source, reference.as_deref()))
        .await
        .context("loading the registry repository panicked")??;
    let store = Arc::clone(&loaded.store);
    let state = AppState::new(loaded.snapshot, loaded.store, config.serve_options());
    // Sample devfiles come from the network: serve at once, add them when they arrive.
    let snapshot = state.snapshots.current();
    let samples_store = Arc::clone(&store);
    tokio::task::spawn_blocking(move || embedded::fetch_samples(&snapshot, &samples_store));
    Ok((state, Backend::Local { store }))
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
