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
//! Where the process may run on as many CPUs as there are workers (the default: one worker per
//! core), each worker is pinned to one of them, and a connection goes to the worker on the CPU
//! whose network stack received it (`SO_INCOMING_CPU`): the kernel's work on its packets, the
//! worker's on its requests and, over loopback, the client's own reads then share one core's
//! caches. Over loopback that CPU is the client's: in `scripts/bench-server.sh`, a round in which
//! each of wrk's threads had its connections served on its own core ran 1.3 to 1.7 times the
//! requests per second of connections handed out in turn. So that one busy client core
//! cannot pile every connection onto one worker, a worker only takes a connection meant for it
//! while it holds at most [`STEERING_SLACK`] more than the least busy worker; otherwise, and when
//! workers are not pinned, the least busy worker takes it.
//!
//! HTTP/1.1 only, as the reference (a Go `net/http` server without TLS) answers; no HTTP/2 over
//! cleartext.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::response::Response;
use hyper::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::watch;

/// A client must send a request's headers within this time (slow clients hold a connection).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How many connections a pinned worker may hold beyond the least busy worker's and still take
/// the connections its CPU receives. A client whose threads all connect from one core, then
/// spread, leaves the workers at most this far apart; a smaller bound splits the burst of
/// connections of a client thread on the other core (measured with wrk's 16 per thread: 4 lost
/// most of the gain, and 2 × the least busy + 8 gave a 24/8 split slower than taking turns).
const STEERING_SLACK: usize = 8;

/// The worker threads to serve with.
#[derive(Debug, Clone, Copy)]
pub struct Threads {
    /// How many (at least one).
    pub workers: usize,
    /// Pin each worker to a CPU, and steer connections to the worker on the CPU that received
    /// them, when the process may run on exactly `workers` CPUs.
    pub pin: bool,
}

/// How the server stops.
#[derive(Debug, Clone, Copy)]
pub struct Grace {
    /// How long requests in flight when the shutdown starts may take to finish.
    pub requests: Duration,
    /// How long tasks still running after that (spawned by handlers) get before they are dropped.
    pub background: Duration,
}

/// Serves `app` ([`crate::service`], or a router in hyper-util's `TowerToHyperService`) on
/// `listener` with `threads` until `shutdown` resolves; then stops accepting, lets requests in
/// flight finish (within `grace.requests`), and returns. A connection calls `app` by reference
/// for each request (a tower service would be cloned per request, with its `Arc`s).
pub async fn serve<S>(
    listener: TcpListener,
    app: S,
    threads: Threads,
    shutdown: impl Future<Output = ()>,
    grace: Grace,
) -> io::Result<()>
where
    S: Service<Request<Incoming>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let pool = Workers::start(threads, grace.background)?;
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
        let service = app.clone();
        let watcher = connections.watcher();
        let received_on = pool.pinned.then(|| socket2::SockRef::from(&stream).cpu_affinity().ok()).flatten();
        let loads: Vec<usize> = pool.workers.iter().map(|w| w.open.load(Ordering::Relaxed)).collect();
        let chosen = choose_worker(received_on.and_then(|cpu| pool.worker_on(cpu)), &loads, next);
        let worker = &pool.workers[chosen];
        let open = Open::count(&worker.open);
        tracing::trace!(worker = chosen, cpu = received_on, open = loads[chosen] + 1, "connection accepted");
        worker.handle.spawn(async move {
            let _open = open;
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

/// The worker that takes a connection: `preferred` (the one on the CPU that received it) unless
/// it holds more than [`STEERING_SLACK`] connections beyond the least busy one; else the least
/// busy one, looking from `next` on (so that ties take turns).
fn choose_worker(preferred: Option<usize>, loads: &[usize], next: usize) -> usize {
    let count = loads.len();
    let least = (0..count).map(|i| (next + i) % count).min_by_key(|w| loads[*w]).unwrap_or(0);
    match preferred {
        Some(w) if w < count && loads[w] <= loads[least] + STEERING_SLACK => w,
        _ => least,
    }
}

/// The CPUs to pin `workers` workers to, one each, when `pin` is asked for and the process may
/// run on exactly that many CPUs (`allowed`); otherwise none. Fewer workers than CPUs would leave
/// the connections received on the others to whichever worker; more would share CPUs.
fn pinned_cpus(pin: bool, workers: usize, allowed: &[usize]) -> Option<Vec<usize>> {
    (pin && workers > 1 && allowed.len() == workers).then(|| allowed.to_vec())
}

/// The CPUs this process may run on.
fn allowed_cpus() -> Vec<usize> {
    use rustix::thread::{CpuSet, sched_getaffinity};
    match sched_getaffinity(None) {
        Ok(set) => (0..CpuSet::MAX_CPU).filter(|cpu| set.is_set(*cpu)).collect(),
        Err(e) => {
            tracing::debug!(error = %e, "cannot read the CPUs the process may run on");
            Vec::new()
        }
    }
}

/// One open connection of a worker, counted while it lives.
struct Open(Arc<AtomicUsize>);

impl Open {
    fn count(open: &Arc<AtomicUsize>) -> Open {
        open.fetch_add(1, Ordering::Relaxed);
        Open(Arc::clone(open))
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A worker thread's runtime, CPU and open connections.
struct Worker {
    handle: Handle,
    cpu: Option<usize>,
    open: Arc<AtomicUsize>,
}

/// The worker threads, each driving a current-thread runtime until told to stop (or dropped).
struct Workers {
    workers: Vec<Worker>,
    /// Whether the workers are pinned, one per CPU.
    pinned: bool,
    threads: Vec<std::thread::JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

impl Workers {
    fn start(asked: Threads, background_grace: Duration) -> io::Result<Workers> {
        let count = asked.workers.max(1);
        let cpus = pinned_cpus(asked.pin, count, &allowed_cpus());
        tracing::debug!(workers = count, pinned = ?cpus, "HTTP workers");
        let (stop, stopped) = watch::channel(false);
        let mut workers = Vec::with_capacity(count);
        let mut threads = Vec::with_capacity(count);
        for n in 0..count {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let cpu = cpus.as_ref().map(|cpus| cpus[n]);
            workers.push(Worker { handle: runtime.handle().clone(), cpu, open: Arc::default() });
            let mut stopped = stopped.clone();
            let thread = std::thread::Builder::new().name(format!("http-worker-{n}")).spawn(move || {
                if let Some(cpu) = cpu {
                    pin_to(cpu);
                }
                // Runs the connections' tasks until the stop; then those left get a moment.
                runtime.block_on(async {
                    let _ = stopped.wait_for(|stop| *stop).await;
                });
                runtime.shutdown_timeout(background_grace);
            })?;
            threads.push(thread);
        }
        Ok(Workers { workers, pinned: cpus.is_some(), threads, stop })
    }

    /// The worker pinned to `cpu`.
    fn worker_on(&self, cpu: usize) -> Option<usize> {
        self.workers.iter().position(|w| w.cpu == Some(cpu))
    }

    /// Stops every worker and waits for their threads.
    fn stop(self) {
        let _ = self.stop.send(true);
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// Pins the calling thread to `cpu`; a thread that cannot be pinned serves where it runs.
fn pin_to(cpu: usize) {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    if let Err(e) = rustix::thread::sched_setaffinity(None, &set) {
        tracing::warn!(cpu, error = %e, "cannot pin an HTTP worker to its CPU");
    }
}

/// Worker threads to use: one per core the process may use.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_goes_to_the_worker_on_its_cpu_while_the_workers_stay_within_the_slack() {
        // Idle workers: the preferred one.
        assert_eq!(choose_worker(Some(1), &[0, 0], 0), 1);
        // Up to the slack beyond the least busy worker, still the preferred one...
        assert_eq!(choose_worker(Some(0), &[STEERING_SLACK, 0], 1), 0);
        assert_eq!(choose_worker(Some(1), &[10, 10 + STEERING_SLACK], 0), 1);
        // ...past it, the least busy one.
        assert_eq!(choose_worker(Some(0), &[STEERING_SLACK + 1, 0], 0), 1);
        assert_eq!(choose_worker(Some(2), &[4, 3, 3 + STEERING_SLACK + 1], 0), 1);
        // A CPU with no worker of its own, or workers not pinned: the least busy, ties in turn.
        assert_eq!(choose_worker(None, &[2, 1, 1], 0), 1);
        assert_eq!(choose_worker(None, &[2, 1, 1], 2), 2);
        assert_eq!(choose_worker(None, &[0, 0, 0], 5), 2);
        assert_eq!(choose_worker(Some(7), &[3, 0], 0), 1);
    }

    #[test]
    fn workers_are_pinned_only_when_they_are_as_many_as_the_cpus_the_process_may_use() {
        assert_eq!(pinned_cpus(true, 2, &[0, 1]), Some(vec![0, 1]));
        // The CPUs a container may use need not start at 0.
        assert_eq!(pinned_cpus(true, 3, &[2, 5, 7]), Some(vec![2, 5, 7]));
        assert_eq!(pinned_cpus(false, 2, &[0, 1]), None);
        // Fewer workers than CPUs (a CPU quota below the CPUs, or `--workers`), or more: none.
        assert_eq!(pinned_cpus(true, 2, &[0, 1, 2, 3]), None);
        assert_eq!(pinned_cpus(true, 4, &[0, 1]), None);
        // One worker needs no steering.
        assert_eq!(pinned_cpus(true, 1, &[0]), None);
        // The affinity could not be read.
        assert_eq!(pinned_cpus(true, 2, &[]), None);
    }
}
