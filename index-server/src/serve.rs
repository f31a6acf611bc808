//! Serving the API over TCP: HTTP/1.1 connections spread over one single-threaded runtime per
//! core, as nginx spreads them over one worker process per core.
//!
//! One listener accepts on the caller's runtime and hands each connection, in turn, to a worker:
//! a thread running a current-thread tokio runtime that serves the connection from start to end.
//! A request is then parsed, answered and written on one thread, with no hand-over between
//! threads and no work stealing; on a small machine that was most of the difference with nginx
//! (`scripts/bench-server.sh`). Background work (updates, the reconciler, sample fetches) stays on
//! the caller's runtime. A handler that spawns a task spawns it on its connection's worker.
//!
//! HTTP/1.1 only, as the reference (a Go `net/http` server without TLS) answers; no HTTP/2 over
//! cleartext.

use std::future::Future;
use std::io;
use std::time::Duration;

use std::convert::Infallible;

use axum::response::Response;
use hyper::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::watch;
use tower::Service;

/// A client must send a request's headers within this time (slow clients hold a connection).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How the server stops.
#[derive(Debug, Clone, Copy)]
pub struct Grace {
    /// How long requests in flight when the shutdown starts may take to finish.
    pub requests: Duration,
    /// How long tasks still running after that (spawned by handlers) get before they are dropped.
    pub background: Duration,
}

/// Serves `app` (the router, or [`crate::service`]) on `listener` with `workers` worker threads
/// until `shutdown` resolves; then stops accepting, lets requests in flight finish (within
/// `grace.requests`), and returns.
pub async fn serve<S>(
    listener: TcpListener,
    app: S,
    workers: usize,
    shutdown: impl Future<Output = ()>,
    grace: Grace,
) -> io::Result<()>
where
    S: Service<Request<Incoming>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let pool = Workers::start(workers.max(1), grace.background)?;
    let connections = GracefulShutdown::new();
    let mut next = 0;
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Responses go out at once, as nginx's `tcp_nodelay on` does: a body written in several
        // segments must not wait for the client's acknowledgement of the previous one.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        // Taken off this runtime's reactor, to be registered with the worker's.
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!(error = %e, "cannot hand a connection over");
                continue;
            }
        };
        let service = TowerToHyperService::new(app.clone());
        let watcher = connections.watcher();
        pool.handles[next % pool.handles.len()].spawn(async move {
            let stream = match TcpStream::from_std(stream) {
                Ok(stream) => stream,
                Err(e) => return tracing::debug!(error = %e, "cannot register a connection"),
            };
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
        next = next.wrapping_add(1);
    }
    drop(listener);
    let open = connections.count();
    if tokio::time::timeout(grace.requests, connections.shutdown()).await.is_err() {
        tracing::warn!(
            grace_ms = grace.requests.as_millis() as u64,
            "requests still running after the shutdown grace period are cut"
        );
    } else {
        tracing::debug!(connections = open, "connections closed");
    }
    pool.stop();
    Ok(())
}

/// Errors of `accept` about one connection (the client gave up) are skipped; others (too many
/// open files) would repeat at once, so the listener pauses, as `axum::serve` does.
async fn accept_failed(error: io::Error) {
    use io::ErrorKind::*;
    if matches!(error.kind(), ConnectionAborted | ConnectionReset | ConnectionRefused) {
        return;
    }
    tracing::error!(error = %error, "cannot accept connections; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// The worker threads, each driving a current-thread runtime until told to stop (or dropped).
struct Workers {
    handles: Vec<Handle>,
    threads: Vec<std::thread::JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

impl Workers {
    fn start(count: usize, background_grace: Duration) -> io::Result<Workers> {
        let (stop, stopped) = watch::channel(false);
        let mut handles = Vec::with_capacity(count);
        let mut threads = Vec::with_capacity(count);
        for n in 0..count {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            handles.push(runtime.handle().clone());
            let mut stopped = stopped.clone();
            let thread = std::thread::Builder::new().name(format!("http-worker-{n}")).spawn(move || {
                // Runs the connections' tasks until the stop; then those left get a moment.
                runtime.block_on(async {
                    let _ = stopped.wait_for(|stop| *stop).await;
                });
                runtime.shutdown_timeout(background_grace);
            })?;
            threads.push(thread);
        }
        Ok(Workers { handles, threads, stop })
    }

    /// Stops every worker and waits for their threads.
    fn stop(self) {
        let _ = self.stop.send(true);
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// Worker threads to use: one per core the process may use.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
