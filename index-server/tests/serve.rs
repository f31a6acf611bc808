//! The serving loop over real TCP connections: with pinned workers, a connection is served on
//! the CPU that received it, which over loopback is the CPU of the client thread that opened it;
//! one client core cannot pile more than the slack onto its worker. The handler answers with
//! the CPU it runs on (`sched_getcpu`) and how many CPUs its worker thread may run on.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use hyper_util::service::TowerToHyperService;
use index_server::serve::{self, Grace, Threads};
use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};

/// The CPUs this test process may run on.
fn allowed_cpus() -> Vec<usize> {
    let set = sched_getaffinity(None).expect("the CPU affinity of the test process");
    (0..CpuSet::MAX_CPU).filter(|cpu| set.is_set(*cpu)).collect()
}

/// Starts the server with `workers` workers on a runtime of its own; returns its address and a
/// sender that stops it.
fn start(workers: usize, pin: bool) -> (String, tokio::sync::oneshot::Sender<()>) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (address_tx, address_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            address_tx.send(listener.local_addr().unwrap().to_string()).unwrap();
            let app = Router::new().route(
                "/cpu",
                get(|| async { format!("{} {}", rustix::thread::sched_getcpu(), allowed_cpus().len()) }),
            );
            let grace = Grace { requests: Duration::from_secs(1), background: Duration::from_millis(100) };
            let shutdown = async move {
                let _ = stopped.await;
            };
            serve::serve(listener, TowerToHyperService::new(app), Threads { workers, pin }, shutdown, grace)
                .await
                .unwrap();
        });
    });
    (address_rx.recv().unwrap(), stop)
}

/// A keep-alive connection opened by a thread pinned to one CPU.
struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    /// Opens a connection from `cpu` (the calling thread is pinned there for the rest of its life).
    fn connect_from(cpu: usize, address: &str) -> Client {
        let mut set = CpuSet::new();
        set.set(cpu);
        sched_setaffinity(None, &set).expect("pinning the client thread");
        let stream = TcpStream::connect(address).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Client { reader: BufReader::new(stream) }
    }

    /// The CPU the server answered `GET /cpu` on.
    fn served_on(&mut self) -> usize {
        self.ask().0
    }

    /// The CPU the server answered `GET /cpu` on, and how many CPUs its worker may run on.
    fn ask(&mut self) -> (usize, usize) {
        self.reader.get_mut().write_all(b"GET /cpu HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
        let mut length = None;
        let mut line = String::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = Some(value.trim().parse::<usize>().unwrap());
            }
        }
        let mut body = vec![0; length.expect("a content-length")];
        self.reader.read_exact(&mut body).unwrap();
        let body = String::from_utf8(body).unwrap();
        let (cpu, allowed) = body.split_once(' ').unwrap();
        (cpu.parse().unwrap(), allowed.parse().unwrap())
    }
}

#[test]
fn a_connection_is_served_on_the_cpu_of_the_client_that_opened_it() {
    let cpus = allowed_cpus();
    let (address, _stop) = start(cpus.len(), true);
    // Each CPU twice in a row, last to first: connections handed out in turn would not all
    // land on their client's CPU.
    for round in 0..3 {
        for &cpu in cpus.iter().rev().flat_map(|cpu| [cpu, cpu]) {
            let address = address.clone();
            let served = std::thread::spawn(move || {
                let mut client = Client::connect_from(cpu, &address);
                // Twice on one connection: it stays on its worker.
                [client.served_on(), client.served_on()]
            })
            .join()
            .unwrap();
            if cpus.len() > 1 {
                assert_eq!(served, [cpu, cpu], "round {round}: a connection from CPU {cpu} (CPUs {cpus:?})");
            } else {
                // One CPU: one worker, not pinned, and every answer comes from that CPU.
                assert_eq!(served, [cpus[0], cpus[0]]);
            }
        }
    }
}

#[test]
fn one_client_cpu_piles_at_most_the_slack_onto_its_worker() {
    let cpus = allowed_cpus();
    assert!(
        cpus.len() >= 2,
        "this test needs two CPUs to tell workers apart (this process may use {cpus:?}); run it on a machine with at least two cores"
    );
    let (address, _stop) = start(cpus.len(), true);
    let cpu = cpus[0];
    std::thread::spawn(move || {
        // Connections stay open: each counts for its worker.
        let mut open = Vec::new();
        // The worker on `cpu` takes connections until it holds 8 (the slack) more than the
        // others, which hold none: 9 in all.
        for n in 0..9 {
            let mut client = Client::connect_from(cpu, &address);
            assert_eq!(client.served_on(), cpu, "connection {n} from CPU {cpu}");
            open.push(client);
        }
        let mut client = Client::connect_from(cpu, &address);
        let other = client.served_on();
        assert_ne!(other, cpu, "the 10th connection from CPU {cpu} went to another worker");
        assert!(cpus.contains(&other));
        // Closed connections no longer count: the worker on `cpu` takes new ones again.
        drop(open);
        std::thread::sleep(Duration::from_millis(200));
        let mut client = Client::connect_from(cpu, &address);
        assert_eq!(client.served_on(), cpu, "a connection after the others closed");
    })
    .join()
    .unwrap();
}

#[test]
fn workers_are_pinned_to_one_cpu_each_only_when_asked() {
    let cpus = allowed_cpus();
    let (pinned, _stop) = start(cpus.len(), true);
    let (free, _stop_free) = start(cpus.len(), false);
    let (fewer, _stop_fewer) = start(cpus.len() + 1, true);
    for &cpu in &cpus {
        let [pinned, free, fewer] = [&pinned, &free, &fewer].map(|address| {
            let address = address.clone();
            std::thread::spawn(move || Client::connect_from(cpu, &address).ask()).join().unwrap()
        });
        let one = if cpus.len() > 1 { 1 } else { cpus.len() };
        assert_eq!(pinned, (cpu, one), "pinned, from CPU {cpu}");
        // Not pinned, or more workers than CPUs: every worker may run on every CPU.
        assert_eq!(free.1, cpus.len(), "not pinned");
        assert_eq!(fewer.1, cpus.len(), "more workers than CPUs");
    }
}
