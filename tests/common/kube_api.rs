//! A Kubernetes API server stand-in for Fluent Bit's `kubernetes` filter, on
//! `http://127.0.0.1:PORT` (std only: a listener thread, one short thread per
//! connection).
//!
//! It answers `GET /api/v1/namespaces/{ns}/pods/{pod}` with a Pod built from
//! a table of [`KubePod`]s (metadata.name/namespace/uid/labels/annotations,
//! spec.nodeName and containers, status.podIP and containerStatuses with
//! containerID/image/imageID), an unknown pod with a 404 `Status`, and counts
//! and logs every request ([`KubeApi::requests`]). Also
//! `GET /api/v1/namespaces/{ns}` (a Namespace, when some pod lives in it),
//! `GET /api/v1/namespaces/{ns}/pods` and `GET /api/v1/pods` (PodLists).
//! Nothing on the server threads panics: a failure answers 500.
//!
//! # Pointing the filter at it (checked with Fluent Bit v5.1.1)
//!
//! ```text
//! [INPUT]
//!     Name              tail
//!     Path              <dir>/containers/*.log
//!     Tag               kube.*
//!     Read_from_Head    On
//!     multiline.parser  docker, cri
//! [FILTER]
//!     Name                 kubernetes
//!     Match                kube.*
//!     Kube_URL             http://127.0.0.1:PORT
//!     Kube_Tag_Prefix      kube.<dir with / as .>.containers.
//!     Kube_Token_File      <dir>/kube-token
//!     Kube_Namespace_File  <dir>/kube-namespace.absent
//!     Kube_Meta_Cache_TTL  300s
//! ```
//!
//! [`filter_settings`] / [`classic_filter_lines`] / [`yaml_filter_keys`] give
//! the filter keys; [`kube_tag_prefix`] the prefix; [`KubePod::log_file_name`]
//! the container log file name; [`docker_log_line`] / [`cri_log_line`] its
//! lines.
//!
//! What the filter needs, offline (read from `plugins/filter_kubernetes` at
//! the commit of that build, and tried):
//! * `Kube_URL http://127.0.0.1:PORT` works: an `http://` URL means no TLS
//!   at all, so `Kube_CA_File`, `Kube_CA_Path`, `tls.verify` are not needed
//!   (only read for `https://`). `Use_Kubelet` is Off by default (the
//!   kubelet path is always TLS to port 10250: leave it off).
//! * `Kube_Token_File` is required: every API request first (re)reads the
//!   token (`kube_token_ttl`, 10 min) and without it logs "failed to refresh
//!   token" and adds no metadata at all (no request is sent). The file must be
//!   **non-empty** (an empty file fails the same way, and the warning then
//!   misleadingly names the default path
//!   `/var/run/secrets/kubernetes.io/serviceaccount/token`). It is sent
//!   verbatim as `Authorization: Bearer <contents>`, a trailing newline
//!   included, so write it without one ([`write_token_file`]).
//! * `Kube_Namespace_File` (default
//!   `/var/run/secrets/kubernetes.io/serviceaccount/namespace`): when it
//!   exists (e.g. the tests run inside a Kubernetes pod), the filter thinks
//!   it runs in a pod and asks the API at start-up for the pod named by
//!   `$HOSTNAME` (one extra request; a 404 there is only a warning). Point it
//!   at a file that does not exist for exact request counts; the "cannot open
//!   ...namespace" warning and "Fluent Bit not running in a POD" are then
//!   expected.
//! * `Kube_Tag_Prefix` must be the tail tag up to the file name: tail turns
//!   `kube.*` into `kube.` + the file path with `/` (and `\`, `:`) replaced
//!   by `.`, the leading `/` dropped and `..` collapsed
//!   ([`kube_tag_prefix`]). The filter strips that many bytes off the tag and
//!   matches `<pod>_<namespace>_<container>-<64 hex>.log$` on the rest.
//! * `Kube_Meta_Cache_TTL` (default 0 = cached forever): the cache key is
//!   namespace + pod + container (+ docker id with `Cache_Use_Docker_Id On`),
//!   so one request per container of a pod while cached. Failed lookups are not cached:
//!   every chunk of an unknown pod asks again, and its records pass through
//!   **without** any `kubernetes` key.
//! * `Buffer_Size` (default 32K) caps the Pod JSON the filter accepts; keep
//!   annotations small or set `Buffer_Size 0` (unlimited).
//! * The docker / cri multiline parsers are built in; no `Parsers_File`
//!   needed for `multiline.parser docker, cri`.
//! * The record gets `kubernetes: {pod_name, namespace_name, pod_id (uid),
//!   labels, annotations, host (spec.nodeName), pod_ip (status.podIP),
//!   container_name, docker_id (from the file name), container_hash
//!   (imageID), container_image (containerStatuses[].image)}`.
//! * Request shape: `GET /api/v1/namespaces/{ns}/pods/{pod} HTTP/1.1` with
//!   `Host`, `Content-Length: 0`, `User-Agent: Fluent-Bit`,
//!   `Connection: close`, `Authorization: Bearer <token>`; one connection per
//!   request.
#![allow(dead_code)]

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

// ----- the pod table -----------------------------------------------------------------

/// A container of a [`KubePod`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubeContainer {
    /// `spec.containers[].name`, also the `<container>` of the log file name.
    pub name: String,
    /// `spec.containers[].image` and `status.containerStatuses[].image`
    /// (the filter's `container_image`).
    pub image: String,
    /// `status.containerStatuses[].imageID` (the filter's `container_hash`).
    pub image_id: String,
    /// `status.containerStatuses[].containerID`, `containerd://<64 hex>`.
    pub container_id: String,
}

impl KubeContainer {
    /// A container with IDs derived from `seed` (deterministic).
    pub fn new(name: &str, image: &str, seed: &str) -> Self {
        let repo = image.split(':').next().unwrap_or(image);
        KubeContainer {
            name: name.to_string(),
            image: image.to_string(),
            image_id: format!("{repo}@sha256:{}", hex64(&format!("image:{image}"))),
            container_id: format!("containerd://{}", hex64(&format!("{seed}/{name}"))),
        }
    }

    /// The 64 hex digits of the container ID (what the log file name carries).
    pub fn docker_id(&self) -> &str {
        self.container_id
            .rsplit_once("://")
            .map(|(_, id)| id)
            .unwrap_or(&self.container_id)
    }
}

/// A pod the stand-in knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubePod {
    pub namespace: String,
    pub name: String,
    /// `metadata.uid` (the filter's `pod_id`).
    pub uid: String,
    /// `spec.nodeName` (the filter's `host`).
    pub node_name: String,
    /// `status.podIP` (the filter's `pod_ip`); `None` leaves it out.
    pub pod_ip: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub containers: Vec<KubeContainer>,
}

impl KubePod {
    /// A running pod on `node-1` with a derived uid and IP, no labels,
    /// annotations or containers yet.
    pub fn new(namespace: &str, name: &str) -> Self {
        let h = hex64(&format!("pod:{namespace}/{name}"));
        let n = u8::from_str_radix(&h[..2], 16).unwrap_or(0);
        KubePod {
            namespace: namespace.to_string(),
            name: name.to_string(),
            uid: format!(
                "{}-{}-{}-{}-{}",
                &h[0..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..32]
            ),
            node_name: "node-1".to_string(),
            pod_ip: Some(format!("10.244.0.{}", 2 + n % 250)),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            containers: Vec::new(),
        }
    }

    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.to_string(), value.to_string());
        self
    }

    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.annotations.insert(key.to_string(), value.to_string());
        self
    }

    pub fn node(mut self, node_name: &str) -> Self {
        self.node_name = node_name.to_string();
        self
    }

    /// Adds a container with derived IDs.
    pub fn container(mut self, name: &str, image: &str) -> Self {
        let seed = format!("{}/{}", self.namespace, self.name);
        self.containers.push(KubeContainer::new(name, image, &seed));
        self
    }

    pub fn container_named(&self, name: &str) -> Option<&KubeContainer> {
        self.containers.iter().find(|c| c.name == name)
    }

    /// `<pod>_<namespace>_<container>-<64 hex>.log`, the kubelet's log file
    /// name (the container's own ID when it has one, a derived one otherwise).
    pub fn log_file_name(&self, container: &str) -> String {
        let id = match self.container_named(container) {
            Some(c) => c.docker_id().to_string(),
            None => hex64(&format!("{}/{}/{container}", self.namespace, self.name)),
        };
        format!("{}_{}_{container}-{id}.log", self.name, self.namespace)
    }

    /// The Pod object as the API server returns it (keys in the API server's
    /// order).
    pub fn to_json(&self) -> String {
        let mut containers = Vec::new();
        let mut statuses = Vec::new();
        for c in &self.containers {
            containers.push(format!(
                "{{\"name\":{},\"image\":{},\"imagePullPolicy\":\"IfNotPresent\"}}",
                q(&c.name),
                q(&c.image)
            ));
            statuses.push(format!(
                "{{\"name\":{},\"state\":{{\"running\":{{\"startedAt\":\"2026-01-01T00:00:00Z\"}}}},\"ready\":true,\"restartCount\":0,\"image\":{},\"imageID\":{},\"containerID\":{},\"started\":true}}",
                q(&c.name),
                q(&c.image),
                q(&c.image_id),
                q(&c.container_id)
            ));
        }
        let pod_ip = match &self.pod_ip {
            Some(ip) => format!(",\"podIP\":{}", q(ip)),
            None => String::new(),
        };
        format!(
            "{{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{{\"name\":{name},\"namespace\":{ns},\"uid\":{uid},\"resourceVersion\":\"1\",\"creationTimestamp\":\"2026-01-01T00:00:00Z\",\"labels\":{labels},\"annotations\":{annotations}}},\"spec\":{{\"containers\":[{containers}],\"restartPolicy\":\"Always\",\"nodeName\":{node}}},\"status\":{{\"phase\":\"Running\",\"hostIP\":\"192.168.0.10\"{pod_ip},\"startTime\":\"2026-01-01T00:00:00Z\",\"containerStatuses\":[{statuses}]}}}}",
            name = q(&self.name),
            ns = q(&self.namespace),
            uid = q(&self.uid),
            labels = string_map(&self.labels),
            annotations = string_map(&self.annotations),
            containers = containers.join(","),
            node = q(&self.node_name),
            statuses = statuses.join(","),
        )
    }
}

/// 64 hex digits derived from `seed` (stable for a given toolchain).
pub fn hex64(seed: &str) -> String {
    (0u8..4)
        .map(|i| {
            let mut h = DefaultHasher::new();
            (seed, i).hash(&mut h);
            format!("{:016x}", h.finish())
        })
        .collect()
}

/// A JSON string literal.
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

fn string_map(m: &BTreeMap<String, String>) -> String {
    let items: Vec<String> = m
        .iter()
        .map(|(k, v)| format!("{}:{}", q(k), q(v)))
        .collect();
    format!("{{{}}}", items.join(","))
}

/// A line of a docker `json-file` container log (`time` in RFC 3339 with
/// nanoseconds, e.g. `2026-01-01T00:00:00.000000001Z`). Ends with `\n`.
pub fn docker_log_line(log: &str, stream: &str, time: &str) -> String {
    format!(
        "{{\"log\":{},\"stream\":{},\"time\":{}}}\n",
        q(&format!("{log}\n")),
        q(stream),
        q(time)
    )
}

/// A line of a CRI (containerd, CRI-O) container log, full (`F`) line.
/// Ends with `\n`.
pub fn cri_log_line(log: &str, stream: &str, time: &str) -> String {
    format!("{time} {stream} F {log}\n")
}

// ----- the server ----------------------------------------------------------------

/// One request the stand-in answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubeRequest {
    pub method: String,
    /// The path without the query string.
    pub path: String,
    /// The `Authorization` header, trimmed.
    pub authorization: Option<String>,
    pub user_agent: Option<String>,
    pub status: u16,
}

struct State {
    pods: Mutex<BTreeMap<(String, String), KubePod>>,
    requests: Mutex<Vec<KubeRequest>>,
    required_token: Mutex<Option<String>>,
    stop: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The running stand-in. Dropping it stops the listener.
pub struct KubeApi {
    addr: SocketAddr,
    state: Arc<State>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for KubeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeApi")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl KubeApi {
    /// Listens on `127.0.0.1:0` and serves `pods`.
    pub fn start(pods: impl IntoIterator<Item = KubePod>) -> io::Result<KubeApi> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            pods: Mutex::new(
                pods.into_iter()
                    .map(|p| ((p.namespace.clone(), p.name.clone()), p))
                    .collect(),
            ),
            requests: Mutex::new(Vec::new()),
            required_token: Mutex::new(None),
            stop: AtomicBool::new(false),
        });
        let server_state = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("kube-api-stand-in".into())
            .spawn(move || accept_loop(listener, server_state))?;
        Ok(KubeApi {
            addr,
            state,
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, the filter's `Kube_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds or replaces a pod.
    pub fn upsert_pod(&self, pod: KubePod) {
        lock(&self.state.pods).insert((pod.namespace.clone(), pod.name.clone()), pod);
    }

    /// Removes a pod; `false` if it was not there.
    pub fn remove_pod(&self, namespace: &str, name: &str) -> bool {
        lock(&self.state.pods)
            .remove(&(namespace.to_string(), name.to_string()))
            .is_some()
    }

    /// With `Some(token)`, requests without `Authorization: Bearer <token>`
    /// get 401 (`None`, the default: any or no token is fine).
    pub fn require_token(&self, token: Option<&str>) {
        *lock(&self.state.required_token) = token.map(str::to_string);
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<KubeRequest> {
        lock(&self.state.requests).clone()
    }

    pub fn request_count(&self) -> usize {
        lock(&self.state.requests).len()
    }

    /// Requests for `GET /api/v1/namespaces/{namespace}/pods/{pod}`.
    pub fn pod_request_count(&self, namespace: &str, pod: &str) -> usize {
        let path = format!("/api/v1/namespaces/{namespace}/pods/{pod}");
        lock(&self.state.requests)
            .iter()
            .filter(|r| r.path == path)
            .count()
    }

    /// Waits (polling) until at least `n` requests came or `timeout` passed;
    /// returns the count.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let count = self.request_count();
            if count >= n || Instant::now() >= deadline {
                return count;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The filter settings for this stand-in (see [`filter_settings`]).
    pub fn filter_settings(
        &self,
        token_file: &Path,
        tag_prefix: &str,
    ) -> Vec<(&'static str, String)> {
        filter_settings(&self.url(), token_file, tag_prefix)
    }

    /// [`classic_filter_lines`] for this stand-in.
    pub fn classic_filter_lines(&self, token_file: &Path, tag_prefix: &str) -> String {
        classic_filter_lines(&self.url(), token_file, tag_prefix)
    }

    /// [`yaml_filter_keys`] for this stand-in.
    pub fn yaml_filter_keys(&self, token_file: &Path, tag_prefix: &str, indent: usize) -> String {
        yaml_filter_keys(&self.url(), token_file, tag_prefix, indent)
    }

    /// Stops the listener (like dropping it).
    pub fn shutdown(self) {
        drop(self)
    }
}

impl Drop for KubeApi {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept().
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: TcpListener, state: Arc<State>) {
    for conn in listener.incoming() {
        if state.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = conn else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let state = Arc::clone(&state);
        let spawned = std::thread::Builder::new()
            .name("kube-api-conn".into())
            .spawn(move || {
                let _ = serve(stream, &state);
            });
        if spawned.is_err() {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

struct Head {
    method: String,
    path: String,
    authorization: Option<String>,
    user_agent: Option<String>,
}

/// Reads the request head: lines up to the first empty one (`\r\n` or a bare
/// `\n`: a token file with a trailing newline puts one inside the
/// Authorization header).
fn read_head(stream: &TcpStream) -> io::Result<Head> {
    let mut reader = BufReader::new(stream.take(64 * 1024));
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    if method.is_empty() || target.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "bad request line",
        ));
    }
    let path = target.split('?').next().unwrap_or("").to_string();
    let mut authorization = None;
    let mut user_agent = None;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            let v = v.trim().to_string();
            if k.trim().eq_ignore_ascii_case("authorization") {
                authorization = Some(v);
            } else if k.trim().eq_ignore_ascii_case("user-agent") {
                user_agent = Some(v);
            }
        }
    }
    Ok(Head {
        method,
        path,
        authorization,
        user_agent,
    })
}

fn serve(mut stream: TcpStream, state: &State) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let head = read_head(&stream)?;
    let (status, body) =
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| route(state, &head))) {
            Ok(answer) => answer,
            Err(_) => (
                500,
                status_json(500, "InternalError", "the stand-in failed", None),
            ),
        };
    lock(&state.requests).push(KubeRequest {
        method: head.method,
        path: head.path,
        authorization: head.authorization,
        user_agent: head.user_agent,
        status,
    });
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Internal Server Error",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes())?;
    stream.flush()?;
    let _ = stream.shutdown(Shutdown::Write);
    Ok(())
}

fn status_json(code: u16, reason: &str, message: &str, details: Option<(&str, &str)>) -> String {
    let details = match details {
        Some((kind, name)) => format!(",\"details\":{{\"name\":{},\"kind\":{}}}", q(name), q(kind)),
        None => String::new(),
    };
    format!(
        "{{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{{}},\"status\":\"Failure\",\"message\":{},\"reason\":{}{details},\"code\":{code}}}",
        q(message),
        q(reason)
    )
}

fn pod_list(pods: &[&KubePod]) -> String {
    let items: Vec<String> = pods.iter().map(|p| p.to_json()).collect();
    format!(
        "{{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"metadata\":{{\"resourceVersion\":\"1\"}},\"items\":[{}]}}",
        items.join(",")
    )
}

fn route(state: &State, head: &Head) -> (u16, String) {
    if head.method != "GET" {
        return (
            405,
            status_json(
                405,
                "MethodNotAllowed",
                &format!("the stand-in only serves GET, not {}", head.method),
                None,
            ),
        );
    }
    if let Some(token) = lock(&state.required_token).clone() {
        if head.authorization.as_deref() != Some(format!("Bearer {token}").as_str()) {
            return (401, status_json(401, "Unauthorized", "Unauthorized", None));
        }
    }
    let segments: Vec<&str> = head.path.trim_matches('/').split('/').collect();
    let pods = lock(&state.pods);
    match segments.as_slice() {
        ["api", "v1", "namespaces", ns, "pods", name] => {
            match pods.get(&(ns.to_string(), name.to_string())) {
                Some(pod) => (200, pod.to_json()),
                None => (
                    404,
                    status_json(
                        404,
                        "NotFound",
                        &format!("pods \"{name}\" not found"),
                        Some(("pods", name)),
                    ),
                ),
            }
        }
        ["api", "v1", "namespaces", ns, "pods"] => {
            let list: Vec<&KubePod> = pods.values().filter(|p| p.namespace == *ns).collect();
            (200, pod_list(&list))
        }
        ["api", "v1", "pods"] => {
            let list: Vec<&KubePod> = pods.values().collect();
            (200, pod_list(&list))
        }
        ["api", "v1", "namespaces", ns] => {
            if pods.values().any(|p| p.namespace == *ns) {
                (
                    200,
                    format!(
                        "{{\"kind\":\"Namespace\",\"apiVersion\":\"v1\",\"metadata\":{{\"name\":{n},\"uid\":{uid},\"labels\":{{\"kubernetes.io/metadata.name\":{n}}},\"annotations\":{{}}}},\"spec\":{{\"finalizers\":[\"kubernetes\"]}},\"status\":{{\"phase\":\"Active\"}}}}",
                        n = q(ns),
                        uid = q(&hex64(&format!("ns:{ns}"))[..32]),
                    ),
                )
            } else {
                (
                    404,
                    status_json(
                        404,
                        "NotFound",
                        &format!("namespaces \"{ns}\" not found"),
                        Some(("namespaces", ns)),
                    ),
                )
            }
        }
        _ => (
            404,
            status_json(
                404,
                "NotFound",
                &format!(
                    "the server could not find the requested resource ({})",
                    head.path
                ),
                None,
            ),
        ),
    }
}

// ----- filter configuration ------------------------------------------------------------

/// The dummy bearer token [`write_token_file`] writes.
pub const TEST_TOKEN: &str = "firehose-fanout-test-token";

/// Writes [`TEST_TOKEN`] (no trailing newline) to `dir/kube-token`.
pub fn write_token_file(dir: &Path) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("kube-token");
    std::fs::write(&path, TEST_TOKEN)?;
    Ok(path)
}

/// The tail tag prefix of the files in `containers_dir` for `Tag kube.*`:
/// `kube.` + the path with `/`, `\` and `:` as `.`, the leading separator
/// dropped, `..` collapsed, `*` removed, ending in `.` (what in_tail's
/// `tag_compose` does).
pub fn kube_tag_prefix(containers_dir: &Path) -> String {
    tail_tag("kube.*", &format!("{}/", containers_dir.display()), false)
}

/// The tag in_tail gives the file `path` for `Tag pattern` (a `*` in it is
/// replaced by the path).
pub fn tail_tag(pattern: &str, path: &str, drop_trailing_dot: bool) -> String {
    let composed = match pattern.split_once('*') {
        Some((pre, post)) => format!("{pre}{path}{post}"),
        None => pattern.to_string(),
    };
    let mut out = String::with_capacity(composed.len());
    for c in composed.chars() {
        let separator = matches!(c, '/' | '\\' | ':');
        if separator && out.is_empty() {
            continue;
        }
        let c = if separator { '.' } else { c };
        if c == '*' || (c == '.' && out.ends_with('.')) {
            continue;
        }
        out.push(c);
    }
    if drop_trailing_dot && out.ends_with('.') {
        out.pop();
    }
    out
}

/// The `kubernetes` filter keys (besides `Name` and `Match`) that point it
/// at the stand-in at `kube_url`, offline:
/// `Kube_URL`, `Kube_Tag_Prefix`, `Kube_Token_File`, `Kube_Namespace_File`
/// (next to the token file, `kube-namespace.absent`, which must not exist),
/// `Kube_Meta_Cache_TTL 300s`, `Use_Kubelet Off`, `Buffer_Size 0`.
pub fn filter_settings(
    kube_url: &str,
    token_file: &Path,
    tag_prefix: &str,
) -> Vec<(&'static str, String)> {
    let namespace_file = token_file.with_file_name("kube-namespace.absent");
    vec![
        ("Kube_URL", kube_url.to_string()),
        ("Kube_Tag_Prefix", tag_prefix.to_string()),
        ("Kube_Token_File", token_file.display().to_string()),
        ("Kube_Namespace_File", namespace_file.display().to_string()),
        ("Kube_Meta_Cache_TTL", "300s".to_string()),
        ("Use_Kubelet", "Off".to_string()),
        ("Buffer_Size", "0".to_string()),
    ]
}

/// [`filter_settings`] as classic-config lines (`    Key Value\n`), to put
/// in a `[FILTER]` section with `Name kubernetes` and `Match`.
pub fn classic_filter_lines(kube_url: &str, token_file: &Path, tag_prefix: &str) -> String {
    filter_settings(kube_url, token_file, tag_prefix)
        .into_iter()
        .map(|(k, v)| format!("    {k} {v}\n"))
        .collect()
}

/// [`filter_settings`] as YAML keys (lower case, values single-quoted), each
/// line indented by `indent` spaces, for a `pipeline.filters` entry with
/// `name: kubernetes` and `match`.
pub fn yaml_filter_keys(
    kube_url: &str,
    token_file: &Path,
    tag_prefix: &str,
    indent: usize,
) -> String {
    let pad = " ".repeat(indent);
    filter_settings(kube_url, token_file, tag_prefix)
        .into_iter()
        .map(|(k, v)| {
            format!(
                "{pad}{}: '{}'\n",
                k.to_ascii_lowercase(),
                v.replace('\'', "''")
            )
        })
        .collect()
}
