//! One `[OUTPUT]` instance: its configuration, client, streams and counters, and the
//! hand-over of flushes from Fluent Bit's threads to the shared runtime.

use crate::client;
use crate::config::{Aggregation, Config, DeliveryMode};
use crate::dedupe::Delivered;
use crate::discover;
use crate::flush::{self, FlushCode};
use crate::log::Logger;
use crate::metrics::{self, MetricsSink};
use crate::retry::Backoff;
use crate::route::{Router, RouterOptions};
use crate::runtime;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::Duration;
use thiserror::Error;
use tokio::sync::mpsc;

#[derive(Debug, Error)]
pub enum StartError {
    #[error("could not start the plugin's threads: {0}")]
    Runtime(#[from] std::io::Error),
    #[error(transparent)]
    Client(#[from] client::ClientError),
    #[error("the AWS client did not initialise in time")]
    ClientTimeout,
}

/// Said when hot reload is on and an instance has worker threads (src/ffi/reload.rs).
pub const HOT_RELOAD_WARNING: &str = "Hot_Reload is on and this output has worker threads: Fluent Bit (v2.2 to at least v5.1) starts an external output's worker pool twice, stops one at a reload, and crashes (SIGSEGV) at the second reload. Set 'workers 0' and 'delivery_mode async' in this [OUTPUT] (a flush then returns at once), or turn hot reload off; see docs/upstream/hot-reload-proxy-workers.md";

/// Monotonic counters of an instance.
#[derive(Debug, Default)]
pub struct Counters {
    pub accepted_records: AtomicU64,
    pub accepted_bytes: AtomicU64,
    pub retried_records: AtomicU64,
    pub dropped_records: AtomicU64,
    /// What Firehose bills for the accepted records (each rounded up to 5 KB).
    pub billed_bytes: AtomicU64,
    pub malformed_events: AtomicU64,
}

impl Counters {
    pub fn add_accepted(&self, records: u64, bytes: u64) {
        self.accepted_records.fetch_add(records, Ordering::Relaxed);
        self.accepted_bytes.fetch_add(bytes, Ordering::Relaxed);
    }
    pub fn add_billed(&self, bytes: u64) {
        self.billed_bytes.fetch_add(bytes, Ordering::Relaxed);
    }
    pub fn add_retried(&self, n: u64) {
        self.retried_records.fetch_add(n, Ordering::Relaxed);
    }
    pub fn add_dropped(&self, n: u64) {
        self.dropped_records.fetch_add(n, Ordering::Relaxed);
    }
    pub fn add_malformed(&self, n: u64) {
        self.malformed_events.fetch_add(n, Ordering::Relaxed);
    }
}

/// What the flush tasks share.
pub struct Shared {
    pub config: Config,
    pub log: Logger,
    pub clients: client::Clients,
    pub router: Router,
    pub backoff: Backoff,
    pub counters: Counters,
    /// Records accepted of chunks that Fluent Bit will retry.
    pub delivered: Delivered,
    /// Async mode: bytes of chunks taken and not yet delivered.
    pub buffered: AtomicUsize,
    /// Set at exit: buffered chunks stop retrying.
    pub stopping: AtomicBool,
}

/// Runs `fut` on the shared runtime from a thread outside it (Fluent Bit's engine thread
/// during init) and waits up to `timeout` for its result.
fn wait_on<T: Send + 'static>(
    lease: &runtime::Lease,
    timeout: Duration,
    fut: impl std::future::Future<Output = T> + Send + 'static,
) -> Option<T> {
    let (tx, rx) = std_mpsc::sync_channel(1);
    lease.handle().spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv_timeout(timeout).ok()
}

/// Counts a job as finished when dropped, panic or not.
struct ActiveGuard(Arc<AtomicUsize>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Lends a chunk's bytes to the plugin's threads for the length of one flush call.
pub trait Lender: Send + Sync {
    /// Calls `f` once with the bytes, or with `None` once the loan has ended (the flush
    /// has answered: nothing is left to do with it).
    fn read(&self, f: &mut dyn FnMut(Option<&[u8]>));
}

/// A flush's chunk: copied, or lent by the caller (sync mode reads it in place).
pub enum Chunk {
    Owned(Vec<u8>),
    Lent(Arc<dyn Lender>),
}

impl Chunk {
    /// Calls `f` once with the bytes (`None`: the loan has ended).
    pub fn read(&self, f: &mut dyn FnMut(Option<&[u8]>)) {
        match self {
            Chunk::Owned(v) => f(Some(v)),
            Chunk::Lent(l) => l.read(f),
        }
    }

    fn into_owned(self) -> Vec<u8> {
        match self {
            Chunk::Owned(v) => v,
            lent => {
                let mut v = Vec::new();
                lent.read(&mut |b| v = b.map(<[u8]>::to_vec).unwrap_or_default());
                v
            }
        }
    }
}

/// A buffered chunk waiting to be packed, counted as active until it is delivered.
struct Held {
    buffered: flush::Buffered,
    /// Counts the chunk as in flight until its pack is delivered.
    active: ActiveGuard,
}

/// Async mode: gathers buffered chunks into packs of about `aggregation_max_bytes` (or what
/// came within `buffer_linger` of the first), so their records share full aggregates, and
/// delivers each pack as its own task. Packs at once when the instance stops.
async fn pack(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Held>) {
    // Packs being encoded and sent at once: each spreads over every stream already, and
    // each holds its records, aggregates and request bodies (a few times its size), so
    // the rest wait as raw chunks, which buffer_max_bytes bounds.
    let sending = Arc::new(tokio::sync::Semaphore::new(
        (shared.router.streams().len() / 2).max(2),
    ));
    let spawn_pack = |held| spawn_pack(&shared, &sending, held);
    let target = shared.config.aggregation_max_bytes;
    let linger = shared.config.buffer_linger;
    let mut held: Vec<Held> = Vec::new();
    let mut bytes = 0;
    let mut until = tokio::time::Instant::now();
    loop {
        let next = if held.is_empty() {
            rx.recv().await
        } else {
            match tokio::time::timeout_at(until, rx.recv()).await {
                Ok(next) => next,
                Err(_) => {
                    spawn_pack(std::mem::take(&mut held));
                    bytes = 0;
                    continue;
                }
            }
        };
        // None: the instance stopped taking work and every chunk sent is here.
        let Some(h) = next else {
            spawn_pack(held);
            return;
        };
        if held.is_empty() {
            until = tokio::time::Instant::now() + linger;
        }
        bytes += h.buffered.chunk.len();
        held.push(h);
        if bytes >= target {
            spawn_pack(std::mem::take(&mut held));
            bytes = 0;
        }
    }
}

fn spawn_pack(shared: &Arc<Shared>, sending: &Arc<tokio::sync::Semaphore>, held: Vec<Held>) {
    if held.is_empty() {
        return;
    }
    let shared = shared.clone();
    let sending = sending.clone();
    tokio::spawn(async move {
        // Never closed, so this only waits.
        let _turn = sending.acquire_owned().await;
        let (chunks, guards): (Vec<_>, Vec<_>) =
            held.into_iter().map(|h| (h.buffered, h.active)).unzip();
        let log = shared.log.clone();
        // Its own task: a panic (a bug) is logged; the guards still count the chunks done.
        if let Err(e) = tokio::spawn(flush::run_packed(shared, chunks)).await {
            log.error(format_args!(
                "internal error while delivering buffered chunks ({e}): they are lost; please report this"
            ));
        }
        drop(guards);
        crate::ffi::memory::release_freed();
    });
}

/// A flush handed to the runtime.
struct Job {
    chunk: Chunk,
    tag: String,
    /// Who waits for the outcome (sync mode); `None` in async mode.
    done: Option<Arc<Reply>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReplyState {
    Waiting,
    Answered(FlushCode),
    /// The flush answered FLB_RETRY without waiting any longer.
    GaveUp,
}

/// The answer to one sync flush, handed from the runtime to the waiting Fluent Bit worker.
/// One lock decides whether the answer was taken or the waiter gave up first, so a late
/// success is never lost: then the job remembers the chunk as delivered.
#[derive(Debug)]
pub struct Reply {
    state: Mutex<ReplyState>,
    cv: std::sync::Condvar,
}

impl Reply {
    pub fn new() -> Reply {
        Reply {
            state: Mutex::new(ReplyState::Waiting),
            cv: std::sync::Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ReplyState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands the answer over; false when the waiter gave up already.
    pub fn answer(&self, code: FlushCode) -> bool {
        let mut st = self.lock();
        if *st != ReplyState::Waiting {
            return false;
        }
        *st = ReplyState::Answered(code);
        self.cv.notify_all();
        true
    }

    /// Waits up to `timeout` for the answer; FLB_RETRY (giving up) after that.
    pub fn wait(&self, timeout: Duration) -> FlushCode {
        let st = self.lock();
        let (mut st, _) = self
            .cv
            .wait_timeout_while(st, timeout, |s| *s == ReplyState::Waiting)
            .unwrap_or_else(|p| p.into_inner());
        match *st {
            ReplyState::Answered(code) => code,
            _ => {
                *st = ReplyState::GaveUp;
                FlushCode::Retry
            }
        }
    }

    /// Answers with how a flush finished; if the waiter gave up meanwhile, a chunk that was
    /// delivered whole is remembered, so Fluent Bit's retry of it sends nothing again.
    pub fn settle(&self, finished: flush::Finished, delivered: &Delivered) {
        if !self.answer(finished.code) {
            if let Some((key, n)) = finished.all_delivered {
                delivered.remember(key, &vec![true; n]);
            }
        }
    }
}

impl Default for Reply {
    fn default() -> Self {
        Reply::new()
    }
}

pub struct Instance {
    shared: Arc<Shared>,
    jobs: Mutex<Option<mpsc::UnboundedSender<Job>>>,
    discovery: Mutex<Option<tokio::task::JoinHandle<()>>>,
    metrics_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    reporter: Option<Arc<metrics::Reporter>>,
    lease: Mutex<Option<runtime::Lease>>,
    active: Arc<AtomicUsize>,
    closed: AtomicBool,
    warned_engine_thread: AtomicBool,
    warned_reload: AtomicBool,
}

impl Instance {
    /// Starts an instance: takes the shared runtime, builds the client, starts the
    /// dispatcher. Called on Fluent Bit's engine thread.
    /// `name` labels the metrics; `metrics` is Fluent Bit's cmetrics context, if any.
    pub fn start(
        config: Config,
        log: Logger,
        name: &str,
        metrics: Option<Arc<dyn MetricsSink>>,
    ) -> Result<Instance, StartError> {
        for (key, url) in [
            ("endpoint", &config.endpoint),
            ("sts_endpoint", &config.credentials.sts_endpoint),
        ] {
            if let Some(url) = url
                .as_deref()
                .filter(|u| crate::config::plain_http_off_host(u))
            {
                log.warn(format_args!(
                    "{key} {url} is plain http to another host: records and request signatures travel unencrypted; use https"
                ));
            }
        }
        let lease = runtime::acquire(config.worker_threads)?;
        let cfg = config.clone();
        let clients = match wait_on(&lease, Duration::from_secs(30), async move {
            client::build(&cfg).await
        }) {
            Some(c) => c?,
            None => return Err(StartError::ClientTimeout),
        };
        let router = Router::new(
            &config.streams,
            RouterOptions {
                balance: config.balance,
                quota: config.quota,
                max_in_flight: config.max_in_flight_per_stream,
                probe_interval: config.health_probe_interval,
                call_timeout: config.request_timeout,
                aggregate_max: config.aggregation_max_bytes,
                aggregate_default: config.aggregation == Aggregation::On,
            },
            log.clone(),
        );
        let shared = Arc::new(Shared {
            router,
            delivered: Delivered::new(config.retry_memory_chunks),
            buffered: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            backoff: Backoff {
                initial: config.retry_initial_backoff,
                max: config.retry_max_backoff,
            },
            clients,
            log,
            config,
            counters: Counters::default(),
        });
        if shared.config.aggregation == Aggregation::Auto && !shared.config.streams.is_empty() {
            // Aggregate only where the destination shows the reader cannot tell. Streams
            // that cannot be described yet are described again until they are.
            let s = shared.clone();
            let unknown = wait_on(&lease, Duration::from_secs(15), async move {
                discover::learn_destinations(&s, &s.config.streams).await
            })
            .unwrap_or_else(|| {
                shared.log.warn(format_args!(
                    "describing the delivery streams took too long: aggregation stays off until they are described"
                ));
                shared.config.streams.clone()
            });
            if !unknown.is_empty() {
                lease
                    .handle()
                    .spawn(discover::learn_until_known(shared.clone(), unknown));
            }
        }
        let discovery = shared.config.stream_prefix.clone().map(|prefix| {
            // The first look before any flush, so the first chunk has streams to go to.
            let s = shared.clone();
            let p = prefix.clone();
            let found = wait_on(&lease, Duration::from_secs(15), async move {
                discover::refresh(&s, &p).await
            });
            let failed = match found {
                Some(Ok(())) => false,
                Some(Err(e)) => {
                    shared.log.warn(format_args!(
                        "stream discovery failed at start ({e}); trying again soon"
                    ));
                    true
                }
                None => {
                    shared.log.warn(format_args!(
                        "stream discovery did not answer at start; trying again soon"
                    ));
                    true
                }
            };
            lease.handle().spawn(discover::run(
                shared.clone(),
                prefix,
                shared.config.discovery_interval,
                failed,
            ))
        });
        let reporter = metrics.map(|m| Arc::new(metrics::Reporter::new(m, name)));
        let metrics_task = lease.handle().spawn(metrics::run(
            shared.clone(),
            reporter.clone(),
            shared.config.metrics_interval,
            shared.config.summary_interval,
        ));
        let (jobs_tx, mut jobs_rx) = mpsc::unbounded_channel::<Job>();
        let active = Arc::new(AtomicUsize::new(0));
        let dispatcher_shared = shared.clone();
        let dispatcher_active = active.clone();
        let (pack_tx, pack_rx) = mpsc::unbounded_channel::<Held>();
        lease.handle().spawn(pack(shared.clone(), pack_rx));
        lease.handle().spawn(async move {
            // Each flush gets its own task, so flushes of one instance run concurrently.
            while let Some(job) = jobs_rx.recv().await {
                let shared = dispatcher_shared.clone();
                // Counted down however the job ends.
                let active = ActiveGuard(dispatcher_active.clone());
                let Some(done) = job.done else {
                    let _ = pack_tx.send(Held {
                        buffered: flush::Buffered {
                            chunk: job.chunk.into_owned(),
                            tag: job.tag,
                        },
                        active,
                    });
                    continue;
                };
                tokio::spawn(async move {
                    let _active = active;
                    let log = shared.log.clone();
                    // The job runs as its own task so that a panic (a bug) is caught here,
                    // logged, and answered, instead of leaving the flush without an answer.
                    let task = shared.clone();
                    let r = tokio::spawn(async move { flush::run(task, job.chunk, &job.tag).await }).await;
                    let failed = r.as_ref().err().map(|e| e.to_string());
                    done.settle(r.unwrap_or_else(|_| FlushCode::Retry.into()), &shared.delivered);
                    crate::ffi::memory::release_freed();
                    if let Some(e) = failed {
                        log.error(format_args!(
                            "internal error while flushing a chunk ({e}): answering FLB_RETRY; please report this with the chunk"
                        ));
                    }
                });
            }
        });
        let names: Vec<String> = shared
            .router
            .streams()
            .iter()
            .map(|s| s.name.clone())
            .collect();
        shared.log.info(format_args!(
            "started: region {}, {} delivery stream(s) [{}]{}",
            shared.config.region,
            names.len(),
            names.join(", "),
            shared
                .config
                .endpoint
                .as_deref()
                .map(|e| format!(", endpoint {e}"))
                .unwrap_or_default()
        ));
        Ok(Instance {
            shared,
            jobs: Mutex::new(Some(jobs_tx)),
            discovery: Mutex::new(discovery),
            metrics_task: Mutex::new(Some(metrics_task)),
            reporter,
            lease: Mutex::new(Some(lease)),
            active,
            closed: AtomicBool::new(false),
            warned_engine_thread: AtomicBool::new(false),
            warned_reload: AtomicBool::new(false),
        })
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Delivers one chunk and answers what Fluent Bit should do with it. Blocks the
    /// caller (a Fluent Bit worker, on a 64 KiB stack) until the runtime has an answer;
    /// does no work of its own, so its stack use stays small.
    pub fn flush(&self, chunk: Chunk, tag: String) -> FlushCode {
        if self.closed.load(Ordering::Acquire) {
            return FlushCode::Retry;
        }
        if self.shared.config.delivery_mode == DeliveryMode::Async {
            // Fluent Bit forgets the chunk on FLB_OK: the buffer needs its own copy.
            return self.enqueue(chunk.into_owned(), tag);
        }
        let reply = Arc::new(Reply::new());
        if !self.submit(Job {
            chunk,
            tag,
            done: Some(reply.clone()),
        }) {
            return FlushCode::Retry;
        }
        // The job keeps its own deadline and then waits for calls in flight (each bounded
        // by request_timeout); the margin only guards against a stalled runtime.
        let cfg = &self.shared.config;
        reply.wait(cfg.flush_timeout + cfg.request_timeout + Duration::from_secs(5))
    }

    /// Hands a job to the runtime; false when the instance no longer takes work.
    fn submit(&self, job: Job) -> bool {
        let guard = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        let Some(jobs) = guard.as_ref() else {
            return false;
        };
        self.active.fetch_add(1, Ordering::AcqRel);
        if jobs.send(job).is_err() {
            self.active.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Async mode: FLB_OK once the chunk is in the bounded buffer, FLB_RETRY when the
    /// buffer is full (backpressure: Fluent Bit keeps the chunk), never a drop.
    fn enqueue(&self, chunk: Vec<u8>, tag: String) -> FlushCode {
        let size = chunk.len();
        let max = self.shared.config.buffer_max_bytes;
        let taken = self
            .shared
            .buffered
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                // An empty buffer takes any one chunk, even one larger than the bound:
                // refusing it would answer FLB_RETRY for ever.
                (b == 0 || b + size <= max).then_some(b + size)
            });
        if taken.is_err() {
            self.shared.log.limited(
                "buffer-full",
                crate::log::Level::Warn,
                format_args!("buffer_max_bytes ({max}) is full: answering FLB_RETRY so Fluent Bit keeps the chunk"),
            );
            return FlushCode::Retry;
        }
        if self.submit(Job {
            chunk: Chunk::Owned(chunk),
            tag,
            done: None,
        }) {
            FlushCode::Ok
        } else {
            self.shared.buffered.fetch_sub(size, Ordering::AcqRel);
            FlushCode::Retry
        }
    }

    /// Says once, at warn level, that sync flushes run on Fluent Bit's engine thread; and,
    /// with hot reload on, that flushes run on worker threads (the setup Fluent Bit
    /// crashes with at a reload, when PreRun could not see it).
    pub fn note_flush_thread(&self, thread_name: &str, hot_reload: bool) {
        if thread_name == "flb-pipeline"
            && self.shared.config.delivery_mode == DeliveryMode::Sync
            && !self.warned_engine_thread.swap(true, Ordering::Relaxed)
        {
            self.shared.log.warn(format_args!(
                "flushes run on Fluent Bit's engine thread (workers 0), so a slow delivery stalls every input: set 'workers 1' or more in this [OUTPUT] section, or 'delivery_mode async' (a flush then returns at once)"
            ));
        }
        if hot_reload
            && thread_name.starts_with("flb-out-")
            && !self.warned_reload.swap(true, Ordering::Relaxed)
        {
            self.shared.log.warn(format_args!("{HOT_RELOAD_WARNING}"));
        }
    }

    /// Stops taking work, waits up to `grace` for flushes in flight, releases the runtime.
    pub fn shutdown(&self, grace: Duration) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        drop(self.jobs.lock().unwrap_or_else(|p| p.into_inner()).take());
        if let Some(d) = self
            .discovery
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            d.abort();
        }
        let metrics_task = self
            .metrics_task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(m) = metrics_task {
            m.abort();
        }
        // Async mode drains the buffer for up to shutdown_timeout.
        let grace = match self.shared.config.delivery_mode {
            DeliveryMode::Async => self.shared.config.shutdown_timeout,
            DeliveryMode::Sync => grace,
        };
        let until = std::time::Instant::now() + grace;
        while self.active.load(Ordering::Acquire) > 0 && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.shared.stopping.store(true, Ordering::Release);
        let left = self.shared.buffered.load(Ordering::Acquire);
        if left > 0 {
            self.shared.log.error(format_args!(
                "{left} bytes of buffered chunks were not delivered within shutdown_timeout ({:?}) and are lost (delivery_mode async)",
                self.shared.config.shutdown_timeout
            ));
        }
        let c = &self.shared.counters;
        self.shared.log.info(format_args!(
            "stopping: {} record(s) ({} bytes, billed as {}) delivered, {} resent, {} dropped, {} malformed",
            c.accepted_records.load(Ordering::Relaxed),
            c.accepted_bytes.load(Ordering::Relaxed),
            c.billed_bytes.load(Ordering::Relaxed),
            c.retried_records.load(Ordering::Relaxed),
            c.dropped_records.load(Ordering::Relaxed),
            c.malformed_events.load(Ordering::Relaxed),
        ));
        // Last values, then no more calls: Fluent Bit destroys the context after exit.
        if let Some(r) = &self.reporter {
            r.finish(&self.shared);
        }
        if let Some(lease) = self.lease.lock().unwrap_or_else(|p| p.into_inner()).take() {
            lease.release(Duration::from_secs(5));
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.shutdown(Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedupe::ChunkKey;

    #[test]
    fn a_success_after_the_waiter_gave_up_is_remembered() {
        let delivered = Delivered::new(16);
        let key = ChunkKey::of("t", b"chunk");
        // Answered in time: nothing to remember.
        let r = Reply::new();
        r.settle(
            flush::Finished {
                code: FlushCode::Ok,
                all_delivered: Some((key, 3)),
            },
            &delivered,
        );
        assert_eq!(r.wait(Duration::from_secs(1)), FlushCode::Ok);
        assert!(delivered.is_empty());
        // The waiter gave up (FLB_RETRY), then the job delivered everything: Fluent Bit
        // sends the chunk again, and it must find every record delivered.
        let r = Reply::new();
        assert_eq!(r.wait(Duration::from_millis(10)), FlushCode::Retry);
        r.settle(
            flush::Finished {
                code: FlushCode::Ok,
                all_delivered: Some((key, 3)),
            },
            &delivered,
        );
        assert_eq!(delivered.take(&key, 3), Some(vec![true; 3]));
    }

    #[test]
    fn the_answer_wakes_the_waiter() {
        let r = Arc::new(Reply::new());
        let r2 = r.clone();
        let t = std::thread::spawn(move || r2.wait(Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(20));
        assert!(r.answer(FlushCode::Error));
        assert_eq!(t.join().unwrap(), FlushCode::Error);
        assert!(!r.answer(FlushCode::Ok), "answered once only");
    }
}
