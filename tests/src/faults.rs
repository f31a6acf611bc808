//! A misbehaving registry for end-to-end tests: [`FaultyProxy`] is a reverse proxy in front of a
//! real [`Registry`] that forwards everything faithfully, except the requests a test told it to
//! fail (an error status, a dropped connection, a slow answer). It records every request it saw.
//!
//! It runs on a tokio runtime of its own, on a thread of its own, so that synchronous tests and
//! `#[tokio::test]`s can use it alike.

use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsFd;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::serve::IncomingStream;
use http::StatusCode;
use http::header::{self, HeaderValue};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use http::Method;

use crate::registry::{Registry, http_client};

/// A request the proxy saw, in arrival order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: Method,
    /// The path, without the query.
    pub path: String,
    /// The status answered; `None` when the connection was dropped without an answer.
    pub status: Option<u16>,
    /// Whether a [`Fault`] decided the answer.
    pub injected: bool,
}

/// What to do to the next matching requests instead of forwarding them faithfully. Built with
/// [`Fault::status`], [`Fault::reset`] or [`Fault::delay`], narrowed with [`Fault::on`] and the
/// path predicates; by default it matches every request, once.
#[derive(Debug, Clone)]
pub struct Fault {
    method: Option<Method>,
    path: PathMatch,
    times: usize,
    action: Action,
}

#[derive(Debug, Clone)]
enum PathMatch {
    Any,
    Contains(String),
    EndsWith(String),
}

#[derive(Debug, Clone)]
enum Action {
    Status(StatusCode, String),
    Reset { after_bytes: usize },
    Delay(Duration),
}

impl Fault {
    /// Answer `status` with `json_body` (as `application/json`) without forwarding.
    pub fn status(status: u16, json_body: &str) -> Fault {
        let status = StatusCode::from_u16(status).expect("a valid HTTP status");
        Fault::new(Action::Status(status, json_body.to_string()))
    }

    /// Read at most `after_bytes` of the request body, then drop the connection without
    /// answering: the client sees a connection error (reset or early end of stream), never a
    /// status. Nothing is forwarded.
    pub fn reset(after_bytes: usize) -> Fault {
        Fault::new(Action::Reset { after_bytes })
    }

    /// Wait `delay`, then forward the request faithfully.
    pub fn delay(delay: Duration) -> Fault {
        Fault::new(Action::Delay(delay))
    }

    /// Only requests with this method.
    pub fn on(mut self, method: Method) -> Fault {
        self.method = Some(method);
        self
    }

    /// Only requests whose path (without query) contains `part`, e.g. `"/blobs/uploads"`.
    pub fn path_contains(mut self, part: &str) -> Fault {
        self.path = PathMatch::Contains(part.to_string());
        self
    }

    /// Only requests whose path (without query) ends with `suffix`, e.g. `"/manifests/1.0.2"`.
    pub fn path_ends_with(mut self, suffix: &str) -> Fault {
        self.path = PathMatch::EndsWith(suffix.to_string());
        self
    }

    /// Apply to the next `n` matching requests instead of only the next one.
    pub fn times(mut self, n: usize) -> Fault {
        self.times = n;
        self
    }

    fn new(action: Action) -> Fault {
        Fault { method: None, path: PathMatch::Any, times: 1, action }
    }

    fn matches(&self, method: &Method, path: &str) -> bool {
        self.method.as_ref().is_none_or(|m| m == method)
            && match &self.path {
                PathMatch::Any => true,
                PathMatch::Contains(part) => path.contains(part.as_str()),
                PathMatch::EndsWith(suffix) => path.ends_with(suffix.as_str()),
            }
    }
}

/// A reverse proxy in front of a registry (or any HTTP server), listening on a free loopback port; stopped on drop.
pub struct FaultyProxy {
    addr: SocketAddr,
    state: Arc<ProxyState>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FaultyProxy {
    /// Starts a proxy forwarding to `registry`.
    pub fn start(registry: &Registry) -> FaultyProxy {
        FaultyProxy::forwarding_to(&registry.url())
    }

    /// Starts a proxy forwarding to any HTTP server at `upstream` (`http://127.0.0.1:PORT`),
    /// such as an `index-server` process.
    pub fn forwarding_to(upstream: &str) -> FaultyProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding the proxy to a loopback port");
        listener.set_nonblocking(true).expect("a non-blocking listener for tokio");
        let addr = listener.local_addr().expect("the proxy's address");
        let state = Arc::new(ProxyState {
            upstream: upstream.trim_end_matches('/').to_string(),
            public: format!("http://{addr}"),
            client: http_client(),
            faults: Mutex::new(Vec::new()),
            seen: Mutex::new(Vec::new()),
        });
        let app = Router::new().fallback(handle).with_state(state.clone());
        let (shutdown, stop) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("faulty-proxy-{}", addr.port()))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("building the proxy's runtime");
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener).expect("registering the proxy's listener");
                    let server = axum::serve(listener, app.into_make_service_with_connect_info::<Connection>());
                    // Not a graceful shutdown: a test may drop the proxy in the middle of a
                    // delayed request, and dropping should not wait for it.
                    tokio::select! {
                        served = server.into_future() => served.expect("the proxy's server stopped"),
                        _ = stop => {}
                    }
                });
            })
            .expect("spawning the proxy's thread");
        FaultyProxy { addr, state, shutdown: Some(shutdown), thread: Some(thread) }
    }

    /// `127.0.0.1:PORT`, the host part of references through the proxy.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds a fault; faults are tried in the order they were added, and the first that matches
    /// a request (and is not used up) applies.
    pub fn inject(&self, fault: Fault) {
        self.state.faults.lock().expect("faults lock").push(fault);
    }

    /// How many faulty answers are still to come (0 once every injected fault was used up).
    pub fn faults_left(&self) -> usize {
        self.state.faults.lock().expect("faults lock").iter().map(|f| f.times).sum()
    }

    /// Every request seen since the start or the last [`FaultyProxy::clear`].
    pub fn requests(&self) -> Vec<Seen> {
        self.state.seen.lock().expect("seen lock").clone()
    }

    /// Forgets the requests seen so far (not the faults).
    pub fn clear(&self) {
        self.state.seen.lock().expect("seen lock").clear();
    }

    /// Drops the faults not used up yet: from now on every request is forwarded faithfully.
    pub fn remove_faults(&self) {
        self.state.faults.lock().expect("faults lock").clear();
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct ProxyState {
    /// `http://127.0.0.1:REGISTRY_PORT`.
    upstream: String,
    /// `http://127.0.0.1:PROXY_PORT`.
    public: String,
    client: reqwest::Client,
    faults: Mutex<Vec<Fault>>,
    seen: Mutex<Vec<Seen>>,
}

impl ProxyState {
    /// The action of the first matching fault, which is used up by one.
    fn take_fault(&self, method: &Method, path: &str) -> Option<Action> {
        let mut faults = self.faults.lock().expect("faults lock");
        let index = faults.iter().position(|f| f.times > 0 && f.matches(method, path))?;
        faults[index].times -= 1;
        let action = faults[index].action.clone();
        if faults[index].times == 0 {
            faults.remove(index);
        }
        Some(action)
    }

    fn record(&self, method: Method, path: String, status: Option<StatusCode>, injected: bool) {
        let seen = Seen { method, path, status: status.map(|s| s.as_u16()), injected };
        self.seen.lock().expect("seen lock").push(seen);
    }

    /// Sends the request to the registry and its answer back, rewriting an absolute upload
    /// `Location` so that the client keeps talking to the proxy.
    async fn forward(&self, request: Request) -> Response {
        let (parts, body) = request.into_parts();
        let body = match axum::body::to_bytes(body, usize::MAX).await {
            Ok(body) => body,
            Err(e) => {
                return (StatusCode::BAD_REQUEST, format!("proxy: reading the request body: {e}")).into_response();
            }
        };
        let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut headers = parts.headers;
        // reqwest sets Host and Content-Length for the registry it talks to.
        for name in HOP_BY_HOP.into_iter().chain(["host", "content-length"]) {
            headers.remove(name);
        }
        let sent = self
            .client
            .request(parts.method, format!("{}{path_and_query}", self.upstream))
            .headers(headers)
            .body(body)
            .send()
            .await;
        let upstream = match sent {
            Ok(upstream) => upstream,
            Err(e) => {
                return (StatusCode::BAD_GATEWAY, format!("proxy: the registry did not answer: {e}")).into_response();
            }
        };
        let status = upstream.status();
        let mut headers = upstream.headers().clone();
        for name in HOP_BY_HOP {
            headers.remove(name);
        }
        if let Some(rest) = headers.get(header::LOCATION).and_then(|l| l.to_str().ok()?.strip_prefix(&self.upstream)) {
            let location = HeaderValue::from_str(&format!("{}{rest}", self.public)).expect("a valid Location");
            headers.insert(header::LOCATION, location);
        }
        let body = match upstream.bytes().await {
            Ok(body) => body,
            Err(e) => {
                return (StatusCode::BAD_GATEWAY, format!("proxy: reading the registry's answer: {e}")).into_response();
            }
        };
        // Content-Length stays as the registry sent it (hyper keeps it for HEAD answers).
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        response
    }
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

async fn handle(
    State(state): State<Arc<ProxyState>>,
    ConnectInfo(connection): ConnectInfo<Connection>,
    request: Request,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let (response, injected) = match state.take_fault(&method, &path) {
        None => (state.forward(request).await, false),
        Some(Action::Status(status, body)) => {
            ((status, [(header::CONTENT_TYPE, "application/json")], body).into_response(), true)
        }
        Some(Action::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            (state.forward(request).await, true)
        }
        Some(Action::Reset { after_bytes }) => {
            read_at_most(request.into_body(), after_bytes).await;
            state.record(method, path, None, true);
            connection.reset();
            // Never reaches the client: hyper fails to write it and closes the connection.
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    state.record(method, path, Some(response.status()), injected);
    response
}

/// Reads the body until `limit` bytes (or its end), and drops the rest.
async fn read_at_most(mut body: Body, limit: usize) {
    let mut read = 0;
    while read < limit {
        match std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            Some(Ok(frame)) => read += frame.data_ref().map_or(0, |data| data.len()),
            Some(Err(_)) | None => break,
        }
    }
}

/// The socket of a proxied connection, duplicated when it is accepted so that a fault can shut
/// it down under hyper's feet: hyper then fails to read and write, and drops the connection.
/// (Panicking in the handler would drop it too, but prints a panic message on every fault.)
#[derive(Clone)]
struct Connection(Option<Arc<std::net::TcpStream>>);

impl Connected<IncomingStream<'_, TcpListener>> for Connection {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Connection {
        let socket = stream.io().as_fd().try_clone_to_owned().ok();
        Connection(socket.map(|fd| Arc::new(std::net::TcpStream::from(fd))))
    }
}

impl Connection {
    fn reset(&self) {
        let socket =
            self.0.as_ref().expect("the proxy could not duplicate the connection's socket (out of file descriptors?)");
        // Once both directions are shut down nothing more reaches the client; closing the socket
        // with unread request bytes then sends it a reset.
        let _ = socket.shutdown(Shutdown::Both);
    }
}
