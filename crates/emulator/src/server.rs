//! The HTTP server: [`Emulator`] (on its own thread and runtime),
//! [`Server`]/[`serve`] (in the caller's runtime), and [`EmulatorHandle`],
//! the control API shared by both.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::api::{self, ApiReply};
use crate::config::{EmulatorConfig, Faults, Quota, StreamSpec, StreamStatus};
use crate::error::ApiError;
use crate::output::uuid_like;
use crate::state::{Shared, StoredRecord};
use crate::stats::Stats;
use crate::tls::TlsIdentity;

/// Largest request body accepted (a full `PutRecordBatch` is about 5.6 MB
/// of base64).
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

const AMZ_JSON: &str = "application/x-amz-json-1.1";

/// How long a TLS client gets to finish its handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Answering "no response at all": hyper closes the connection when the
/// service fails.
#[derive(Debug, thiserror::Error)]
#[error("connection reset by fault injection")]
struct ResetConnection;

// ----- the control API -------------------------------------------------------

/// A cheap, cloneable handle on a running emulator's state, usable from any
/// thread or task. [`Emulator`] has the same methods.
#[derive(Clone)]
pub struct EmulatorHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    tls: Option<TlsIdentity>,
}

impl std::fmt::Debug for EmulatorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorHandle")
            .field("addr", &self.addr)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl EmulatorHandle {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT`, the endpoint URL to give the SDK; `https://IP:PORT`
    /// in TLS mode ([`EmulatorConfig::tls`]).
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The TLS identity (CA and server certificate) in TLS mode, `None` for
    /// plain HTTP.
    pub fn tls(&self) -> Option<&TlsIdentity> {
        self.tls.as_ref()
    }

    /// Creates a stream (ACTIVE), or updates the quota, faults and
    /// destination of an existing one (its records and counters are kept).
    ///
    /// # Panics
    /// If `spec.name` is not a valid delivery stream name
    /// (1–64 characters of `[a-zA-Z0-9_.-]`).
    pub fn create_stream(&self, spec: StreamSpec) {
        if let Err(e) = crate::config::validate_stream_name(&spec.name) {
            panic!("firehose-emulator: {e}");
        }
        self.shared.lock().upsert_stream(spec);
    }

    /// Deletes a stream and its records (buffered output is written first).
    /// `false` if there was no such stream.
    pub fn delete_stream(&self, name: &str) -> bool {
        self.shared.lock().remove_stream(name)
    }

    /// Replaces the faults of `stream`, or the global faults for `None`.
    /// Unknown streams are ignored.
    pub fn set_faults(&self, stream: Option<&str>, faults: Faults) {
        self.shared.lock().set_faults(stream, faults);
    }

    /// The faults of `stream` (global for `None`); `None` for an unknown
    /// stream.
    pub fn faults(&self, stream: Option<&str>) -> Option<Faults> {
        self.shared.lock().faults(stream)
    }

    /// Replaces (or with `None` removes) the quota of `stream`; the buckets
    /// start full. Unknown streams are ignored.
    pub fn set_quota(&self, stream: &str, quota: Option<Quota>) {
        self.try_set_quota(stream, quota);
    }

    /// Like [`set_quota`](Self::set_quota); `false` for an unknown stream.
    pub fn try_set_quota(&self, stream: &str, quota: Option<Quota>) -> bool {
        self.shared.lock().set_quota(stream, quota)
    }

    /// Sets the status of `stream`; only ACTIVE streams accept records.
    /// `false` for an unknown stream.
    pub fn set_status(&self, stream: &str, status: StreamStatus) -> bool {
        self.shared.lock().set_status(stream, status)
    }

    /// The status of `stream`.
    pub fn status(&self, stream: &str) -> Option<StreamStatus> {
        self.shared.lock().status(stream)
    }

    /// Starts an outage of `stream` (of everything for `None`): every
    /// request fails with 503 `ServiceUnavailableException` for `duration`,
    /// or until [`end_outage`](Self::end_outage) when `duration` is `None`.
    /// `false` for an unknown stream.
    pub fn start_outage(&self, stream: Option<&str>, duration: Option<Duration>) -> bool {
        self.shared.lock().start_outage(stream, duration)
    }

    /// Ends an outage (clears both the `outage` fault flag and any timed
    /// window). `false` for an unknown stream.
    pub fn end_outage(&self, stream: Option<&str>) -> bool {
        self.shared.lock().end_outage(stream)
    }

    /// The data of the records accepted on `stream`, in acceptance order
    /// (empty for an unknown stream).
    pub fn records(&self, stream: &str) -> Vec<Vec<u8>> {
        self.shared.lock().record_data(stream)
    }

    /// The records accepted on `stream` with arrival time and `RecordId`.
    pub fn records_detailed(&self, stream: &str) -> Vec<StoredRecord> {
        self.shared.lock().records(stream)
    }

    /// How many records `stream` holds.
    pub fn record_count(&self, stream: &str) -> usize {
        self.shared.lock().record_count(stream)
    }

    /// Forgets the records stored for `stream` (counters are kept).
    pub fn clear_records(&self, stream: &str) -> bool {
        self.shared.lock().clear_records(stream)
    }

    /// Blocks (polling) until `stream` holds at least `count` records or
    /// `timeout` passes; returns the record data either way. Do not call it
    /// from a single-threaded async runtime that the client needs.
    pub fn wait_for_records(&self, stream: &str, count: usize, timeout: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        while self.record_count(stream) < count && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.records(stream)
    }

    /// Names of all streams, sorted.
    pub fn stream_names(&self) -> Vec<String> {
        self.shared.lock().stream_names()
    }

    /// Every stream's spec and status.
    pub fn stream_specs(&self) -> Vec<(StreamSpec, StreamStatus)> {
        self.shared.lock().stream_specs()
    }

    /// A snapshot of all counters.
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats()
    }

    /// Writes every buffered output object now (no-op without an output
    /// folder).
    pub fn flush_output(&self) -> io::Result<()> {
        self.shared.lock().flush_all_output()
    }
}

// ----- Emulator: own thread, own runtime ---------------------------------------

/// A running emulator on its own background thread with its own tokio
/// runtime, so synchronous tests and async code can use it alike. Dropping
/// it (or [`shutdown`](Self::shutdown)) stops the server and writes the
/// buffered output.
pub struct Emulator {
    handle: EmulatorHandle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("addr", &self.handle.addr)
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// Binds `config.bind`, creates the configured streams and starts
    /// serving on a background thread. Returns once the socket listens.
    pub fn start(config: EmulatorConfig) -> io::Result<Emulator> {
        let acceptor = config.tls.as_ref().map(TlsIdentity::acceptor).transpose()?;
        let shared = Arc::new(Shared::new(&config)?);
        let std_listener = std::net::TcpListener::bind(config.bind)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("firehose-emulator")
            .enable_all()
            .build()?;
        let listener = {
            let _guard = runtime.enter();
            TcpListener::from_std(std_listener)?
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = EmulatorHandle {
            shared,
            addr,
            tls: config.tls,
        };
        let server_handle = handle.clone();
        let thread = std::thread::Builder::new()
            .name("firehose-emulator".into())
            .spawn(move || {
                runtime.block_on(run(listener, server_handle, acceptor, async {
                    // A dropped sender stops the server as well.
                    let _ = stopped.await;
                }));
                runtime.shutdown_timeout(Duration::from_secs(1));
            })?;
        Ok(Emulator {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// A cloneable handle on this emulator's state.
    pub fn handle(&self) -> EmulatorHandle {
        self.handle.clone()
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.handle.addr()
    }

    /// `http://127.0.0.1:PORT`, the endpoint URL to give the SDK;
    /// `https://127.0.0.1:PORT` in TLS mode.
    pub fn endpoint(&self) -> String {
        self.handle.endpoint()
    }

    /// See [`EmulatorHandle::tls`].
    pub fn tls(&self) -> Option<&TlsIdentity> {
        self.handle.tls()
    }

    /// See [`EmulatorHandle::create_stream`].
    pub fn create_stream(&self, spec: StreamSpec) {
        self.handle.create_stream(spec)
    }

    /// See [`EmulatorHandle::delete_stream`].
    pub fn delete_stream(&self, name: &str) -> bool {
        self.handle.delete_stream(name)
    }

    /// See [`EmulatorHandle::set_faults`].
    pub fn set_faults(&self, stream: Option<&str>, faults: Faults) {
        self.handle.set_faults(stream, faults)
    }

    /// See [`EmulatorHandle::set_quota`].
    pub fn set_quota(&self, stream: &str, quota: Option<Quota>) {
        self.handle.set_quota(stream, quota)
    }

    /// See [`EmulatorHandle::set_status`].
    pub fn set_status(&self, stream: &str, status: StreamStatus) -> bool {
        self.handle.set_status(stream, status)
    }

    /// See [`EmulatorHandle::status`].
    pub fn status(&self, stream: &str) -> Option<StreamStatus> {
        self.handle.status(stream)
    }

    /// See [`EmulatorHandle::start_outage`].
    pub fn start_outage(&self, stream: Option<&str>, duration: Option<Duration>) -> bool {
        self.handle.start_outage(stream, duration)
    }

    /// See [`EmulatorHandle::end_outage`].
    pub fn end_outage(&self, stream: Option<&str>) -> bool {
        self.handle.end_outage(stream)
    }

    /// See [`EmulatorHandle::records`].
    pub fn records(&self, stream: &str) -> Vec<Vec<u8>> {
        self.handle.records(stream)
    }

    /// See [`EmulatorHandle::records_detailed`].
    pub fn records_detailed(&self, stream: &str) -> Vec<StoredRecord> {
        self.handle.records_detailed(stream)
    }

    /// See [`EmulatorHandle::clear_records`].
    pub fn clear_records(&self, stream: &str) -> bool {
        self.handle.clear_records(stream)
    }

    /// See [`EmulatorHandle::wait_for_records`].
    pub fn wait_for_records(&self, stream: &str, count: usize, timeout: Duration) -> Vec<Vec<u8>> {
        self.handle.wait_for_records(stream, count, timeout)
    }

    /// See [`EmulatorHandle::stream_names`].
    pub fn stream_names(&self) -> Vec<String> {
        self.handle.stream_names()
    }

    /// See [`EmulatorHandle::stats`].
    pub fn stats(&self) -> Stats {
        self.handle.stats()
    }

    /// See [`EmulatorHandle::flush_output`].
    pub fn flush_output(&self) -> io::Result<()> {
        self.handle.flush_output()
    }

    /// Stops the server (like dropping it) and waits for it.
    pub fn shutdown(self) {
        drop(self)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ----- Server: in the caller's runtime -------------------------------------------

/// A bound emulator to run in the caller's tokio runtime (the CLI's
/// `emulate` subcommand).
///
/// ```no_run
/// # async fn example() -> std::io::Result<()> {
/// use firehose_emulator::{EmulatorConfig, Server};
/// let server = Server::bind(EmulatorConfig::default()).await?;
/// println!("listening on {}", server.handle().endpoint());
/// let handle = server.handle(); // steer it while it runs
/// server.run(tokio::time::sleep(std::time::Duration::from_secs(60))).await
/// # }
/// ```
pub struct Server {
    listener: TcpListener,
    handle: EmulatorHandle,
    acceptor: Option<TlsAcceptor>,
}

impl Server {
    /// Binds `config.bind` and creates the configured streams.
    pub async fn bind(config: EmulatorConfig) -> io::Result<Server> {
        let acceptor = config.tls.as_ref().map(TlsIdentity::acceptor).transpose()?;
        let shared = Arc::new(Shared::new(&config)?);
        let listener = TcpListener::bind(config.bind).await?;
        let addr = listener.local_addr()?;
        Ok(Server {
            listener,
            handle: EmulatorHandle {
                shared,
                addr,
                tls: config.tls,
            },
            acceptor,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.addr
    }

    /// A handle on the state, to steer the server while it runs.
    pub fn handle(&self) -> EmulatorHandle {
        self.handle.clone()
    }

    /// Serves until `shutdown` completes, then writes the buffered output.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        run(self.listener, self.handle, self.acceptor, shutdown).await;
        Ok(())
    }
}

/// Binds and serves `config` in the current runtime until `shutdown`
/// completes.
pub async fn serve(config: EmulatorConfig, shutdown: impl Future<Output = ()>) -> io::Result<()> {
    Server::bind(config).await?.run(shutdown).await
}

/// The accept loop, the output flusher, and the final flush. With an
/// `acceptor`, every connection starts with a TLS handshake.
async fn run(
    listener: TcpListener,
    handle: EmulatorHandle,
    acceptor: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) {
    let shared = Arc::clone(&handle.shared);
    let flusher = tokio::spawn(flush_loop(Arc::clone(&shared)));
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let handle = handle.clone();
                    match &acceptor {
                        None => {
                            connections.spawn(serve_connection(stream, handle));
                        }
                        Some(acceptor) => {
                            let accept = acceptor.accept(stream);
                            connections.spawn(async move {
                                match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, accept).await {
                                    Ok(Ok(tls)) => serve_connection(tls, handle).await,
                                    Ok(Err(e)) => eprintln!(
                                        "firehose-emulator: TLS handshake with {peer} failed: {e}"
                                    ),
                                    Err(_) => eprintln!(
                                        "firehose-emulator: TLS handshake with {peer} timed out"
                                    ),
                                }
                            });
                        }
                    }
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off a bit.
                    eprintln!("firehose-emulator: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
        }
        while connections.try_join_next().is_some() {}
    }
    connections.abort_all();
    flusher.abort();
    let flushed = shared.lock().flush_all_output();
    if let Err(e) = flushed {
        eprintln!("firehose-emulator: final output flush failed: {e}");
    }
}

/// Serves HTTP/1.1 on one connection (plain TCP or TLS) until it closes.
async fn serve_connection<I>(io: I, handle: EmulatorHandle)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let handle = handle.clone();
        async move { route(&handle, req).await }
    });
    // Errors here are client disconnects and injected resets: nothing to
    // report.
    let _ = http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(io), service)
        .await;
}

/// Writes output buffers when their interval runs out.
async fn flush_loop(shared: Arc<Shared>) {
    loop {
        let deadline = shared.lock().next_output_deadline();
        let deadline = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            _ = tokio::time::sleep_until(deadline.into()) => {
                shared.lock().flush_due_output(Instant::now());
            }
            _ = shared.output_wakeup.notified() => {}
        }
    }
}

// ----- HTTP routing ---------------------------------------------------------------

type HttpResponse = Response<Full<Bytes>>;

async fn route(
    handle: &EmulatorHandle,
    req: Request<Incoming>,
) -> Result<HttpResponse, ResetConnection> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);

    // SigV4: "AWS4-HMAC-SHA256 Credential=AKID/date/region/service/aws4_request, ..."
    if let Some(key) = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("Credential=").nth(1))
        .and_then(|c| c.split('/').next())
    {
        handle.shared.lock().count_access_key(key);
    }
    if let Some(ua) = req
        .headers()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
    {
        handle.shared.lock().count_user_agent(ua);
    }

    let is_admin = path == "/admin" || path.starts_with("/admin/");
    // Kept for the signature check, which needs the body too.
    let signed = handle
        .shared
        .signing_secret
        .as_ref()
        .filter(|_| !is_admin)
        .map(|secret| {
            (
                secret.clone(),
                req.uri().query().unwrap_or("").to_string(),
                req.headers().clone(),
            )
        });
    match (&method, path.as_str()) {
        (&Method::GET, "/healthz") => return Ok(json_response(200, b"{\"ok\":true}".to_vec())),
        (&Method::GET, "/stats") => {
            let body = serde_json::to_vec(&handle.stats()).unwrap_or_default();
            return Ok(json_response(200, body));
        }
        _ => {}
    }
    if !is_admin && method != Method::POST {
        return Ok(json_response(
            404,
            format!("{{\"error\":\"no route for {method} {}\"}}", escape(&path)).into_bytes(),
        ));
    }

    let body = match Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                let err = ApiError::invalid_argument(format!(
                    "Request body exceeds {MAX_BODY_BYTES} bytes."
                ));
                return Ok(error_response(&err));
            }
            // The client went away mid-body.
            return Err(ResetConnection);
        }
    };

    if is_admin {
        let (status, value) = crate::admin::handle(handle, &method, &path, &body);
        let body = serde_json::to_vec(&value).unwrap_or_default();
        return Ok(json_response(status, body));
    }

    if let Some((secret, query, headers)) = signed {
        if let Err(message) =
            crate::sigv4::verify(method.as_str(), &path, &query, &headers, &body, &secret)
        {
            handle.shared.lock().count_invalid_signature();
            let err = ApiError::new(400, crate::sigv4::INVALID_SIGNATURE, message);
            return Ok(error_response(&err));
        }
    }

    match api::handle(&handle.shared, target.as_deref(), &body).await {
        ApiReply::Ok(body) => Ok(amz_response(200, body, None)),
        ApiReply::Err(err) => Ok(error_response(&err)),
        ApiReply::Reset => Err(ResetConnection),
    }
}

fn escape(s: &str) -> String {
    serde_json::to_string(s)
        .map(|q| q.trim_matches('"').to_string())
        .unwrap_or_default()
}

fn error_response(err: &ApiError) -> HttpResponse {
    amz_response(err.status, err.body(), Some(&err.code))
}

fn amz_response(status: u16, body: Vec<u8>, error_type: Option<&str>) -> HttpResponse {
    let mut resp = base_response(status, body, AMZ_JSON);
    let headers = resp.headers_mut();
    if let Ok(id) = HeaderValue::from_str(&uuid_like(&mut fastrand::Rng::new())) {
        headers.insert(HeaderName::from_static("x-amzn-requestid"), id);
    }
    if let Some(Ok(code)) = error_type.map(HeaderValue::from_str) {
        headers.insert(HeaderName::from_static("x-amzn-errortype"), code);
    }
    resp
}

fn json_response(status: u16, body: Vec<u8>) -> HttpResponse {
    base_response(status, body, "application/json")
}

fn base_response(status: u16, body: Vec<u8>, content_type: &'static str) -> HttpResponse {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}
