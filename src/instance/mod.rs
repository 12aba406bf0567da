//! One `[OUTPUT]` instance: its configuration, clients, streams and counters; the sync and
//! async front ends that take Fluent Bit's flushes onto the shared runtime; its background
//! tasks.

mod buffer;
pub mod runtime;
mod sync;
mod tasks;

pub use sync::Reply;

use crate::config::{Aggregation, Config, DeliveryMode};
use crate::delivery::dedupe::Delivered;
use crate::delivery::retry::{Backoff, Policy};
use crate::delivery::{Buffered, Chunk, Context, FlushCode, KeySource};
use crate::firehose::client;
use crate::schedule::{Router, RouterOptions};
use crate::telemetry::log::{Level, Logger};
use crate::telemetry::metrics::{Counters, MetricsSink, Reporter};
use buffer::Buffer;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::Duration;
use tasks::{Streams, Telemetry};
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

/// What the host provides besides the configuration.
pub struct Host {
    /// The instance's name (metrics label).
    pub name: String,
    pub log: Logger,
    /// Fluent Bit's metrics context, if any.
    pub metrics: Option<Arc<dyn MetricsSink>>,
    /// Called after each flush: gives memory the allocator kept back to the system.
    pub release_memory: fn(),
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

/// A flush handed to the runtime.
enum Job {
    /// Sync mode: the chunk is in the reply's key source; the outcome goes to the reply.
    Flush(Arc<Reply>),
    /// Async mode: a chunk Fluent Bit was already told is done.
    Buffered(Buffered),
}

pub struct Instance {
    ctx: Arc<Context>,
    buffer: Arc<Buffer>,
    telemetry: Arc<Telemetry>,
    jobs: Mutex<Option<mpsc::UnboundedSender<Job>>>,
    /// Discovery, destination learning, metrics: aborted at shutdown.
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    lease: Mutex<Option<runtime::Lease>>,
    active: Arc<AtomicUsize>,
    closed: AtomicBool,
    warned_engine_thread: AtomicBool,
    warned_reload: AtomicBool,
}

impl Instance {
    /// Starts an instance: takes the shared runtime, builds the clients, learns the
    /// streams, starts the dispatcher and the background tasks. Called on Fluent Bit's
    /// engine thread.
    pub fn start(config: Config, host: Host) -> Result<Instance, StartError> {
        let log = host.log;
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
        let reach = clients.reach.clone();
        let router = Arc::new(Router::new(
            &config.streams,
            RouterOptions {
                balance: config.balance,
                quota: config.quota,
                quota_max: config.quota_max,
                max_in_flight: config.max_in_flight_per_stream,
                probe_interval: config.health_probe_interval,
                call_timeout: config.request_timeout,
                aggregate_max: config.aggregation_max_bytes,
                aggregate_default: config.aggregation == Aggregation::On,
            },
            log.clone(),
        ));
        let counters = Arc::new(Counters::default());
        let mut tasks = Vec::new();
        let streams = Arc::new(Streams {
            control: clients.control,
            router: router.clone(),
            log: log.clone(),
            aggregation: config.aggregation,
            interval: config.discovery_interval,
            configured: config.streams.len(),
            raw_text: config.encode.log_key.is_some(),
            compressed: config.compression != crate::config::Compression::None,
        });
        if config.aggregation == Aggregation::Auto && !config.streams.is_empty() {
            // Aggregate only where the destination shows the reader cannot tell. Streams
            // that cannot be described yet are described again until they are.
            let (s, names) = (streams.clone(), config.streams.clone());
            let unknown = wait_on(&lease, Duration::from_secs(15), async move {
                s.learn_destinations(&names).await
            })
            .unwrap_or_else(|| {
                log.warn(format_args!(
                    "describing the delivery streams took too long: aggregation stays off until they are described"
                ));
                config.streams.clone()
            });
            if !unknown.is_empty() {
                tasks.push(
                    lease
                        .handle()
                        .spawn(streams.clone().learn_until_known(unknown)),
                );
            }
        }
        if let Some(prefix) = config.stream_prefix.clone() {
            // The first look before any flush, so the first chunk has streams to go to.
            let (s, p) = (streams.clone(), prefix.clone());
            let found = wait_on(&lease, Duration::from_secs(15), async move {
                s.refresh(&p).await
            });
            let failed = match found {
                Some(Ok(())) => false,
                Some(Err(e)) => {
                    log.warn(format_args!(
                        "stream discovery failed at start ({e}); trying again soon"
                    ));
                    true
                }
                None => {
                    log.warn(format_args!(
                        "stream discovery did not answer at start; trying again soon"
                    ));
                    true
                }
            };
            tasks.push(lease.handle().spawn(streams.clone().run(prefix, failed)));
        }
        let telemetry = Arc::new(Telemetry {
            router: router.clone(),
            counters: counters.clone(),
            reporter: host.metrics.map(|m| Arc::new(Reporter::new(m, &host.name))),
            log: log.clone(),
            interval: config.metrics_interval,
            summary: config.summary_interval,
        });
        tasks.push(lease.handle().spawn(telemetry.clone().run()));
        let ctx = Arc::new(Context {
            router,
            delivered: Delivered::open(&config, &host.name, &log),
            policy: Policy {
                backoff: Backoff {
                    initial: config.retry_initial_backoff,
                    max: config.retry_max_backoff,
                },
                adaptive: config.balance == crate::config::Balance::Adaptive,
                auto_retry: config.auto_retry,
            },
            client: clients.data,
            log,
            config,
            counters,
        });
        let buffer = Arc::new(Buffer::default());
        let active = Arc::new(AtomicUsize::new(0));
        let jobs = sync::dispatch(&lease, &ctx, &buffer, &active, host.release_memory);
        if let Some(every) = ctx.config.journal.as_ref().map(|j| j.sync_interval) {
            if ctx.delivered.journal().is_some() && !every.is_zero() {
                tasks.push(
                    lease
                        .handle()
                        .spawn(tasks::sync_journal(ctx.clone(), every)),
                );
            }
        }
        let names: Vec<String> = ctx
            .router
            .streams()
            .iter()
            .map(|s| s.name.clone())
            .collect();
        ctx.log.info(format_args!(
            "started: region {}, {} delivery stream(s) [{}]; {}",
            ctx.config.region,
            names.len(),
            names.join(", "),
            reach.describe()
        ));
        Ok(Instance {
            ctx,
            buffer,
            telemetry,
            jobs: Mutex::new(Some(jobs)),
            tasks: Mutex::new(tasks),
            lease: Mutex::new(Some(lease)),
            active,
            closed: AtomicBool::new(false),
            warned_engine_thread: AtomicBool::new(false),
            warned_reload: AtomicBool::new(false),
        })
    }

    pub fn config(&self) -> &Config {
        &self.ctx.config
    }

    /// Delivers one chunk and answers what Fluent Bit should do with it. Blocks the
    /// caller (a Fluent Bit worker, on a 64 KiB stack) until the runtime has an answer;
    /// does no work of its own, so its stack use stays small.
    pub fn flush(&self, chunk: Chunk, tag: String) -> FlushCode {
        if self.closed.load(Ordering::Acquire) {
            return FlushCode::Retry;
        }
        if self.ctx.config.delivery_mode == DeliveryMode::Async {
            // Fluent Bit forgets the chunk on FLB_OK: the buffer needs its own copy.
            return self.enqueue(chunk.into_owned(), tag);
        }
        let reply = Arc::new(Reply::new(Arc::new(KeySource::new(chunk, tag))));
        if !self.submit(Job::Flush(reply.clone())) {
            return FlushCode::Retry;
        }
        // The job keeps its own deadline and then waits for calls in flight (each bounded
        // by request_timeout); the margin only guards against a stalled runtime.
        let cfg = &self.ctx.config;
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
        let max = self.ctx.config.buffer_max_bytes;
        if !self.buffer.take(size, max) {
            self.ctx.log.limited(
                "buffer-full",
                Level::Warn,
                format_args!("buffer_max_bytes ({max}) is full: answering FLB_RETRY so Fluent Bit keeps the chunk"),
            );
            return FlushCode::Retry;
        }
        if self.submit(Job::Buffered(Buffered { chunk, tag })) {
            FlushCode::Ok
        } else {
            self.buffer.give_back(size);
            FlushCode::Retry
        }
    }

    /// Says once, at warn level, that sync flushes run on Fluent Bit's engine thread; and,
    /// with hot reload on, that flushes run on worker threads (the setup Fluent Bit
    /// crashes with at a reload, when PreRun could not see it).
    pub fn note_flush_thread(&self, thread_name: &str, hot_reload: bool) {
        if thread_name == "flb-pipeline"
            && self.ctx.config.delivery_mode == DeliveryMode::Sync
            && !self.warned_engine_thread.swap(true, Ordering::Relaxed)
        {
            self.ctx.log.warn(format_args!(
                "flushes run on Fluent Bit's engine thread (workers 0), so a slow delivery stalls every input: set 'workers 1' or more in this [OUTPUT] section, or 'delivery_mode async' (a flush then returns at once)"
            ));
        }
        if hot_reload
            && thread_name.starts_with("flb-out-")
            && !self.warned_reload.swap(true, Ordering::Relaxed)
        {
            self.ctx.log.warn(format_args!("{HOT_RELOAD_WARNING}"));
        }
    }

    /// Stops taking work, waits up to `grace` for flushes in flight, releases the runtime.
    pub fn shutdown(&self, grace: Duration) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        drop(self.jobs.lock().unwrap_or_else(|p| p.into_inner()).take());
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            task.abort();
        }
        // Async mode drains the buffer for up to shutdown_timeout.
        let grace = match self.ctx.config.delivery_mode {
            DeliveryMode::Async => self.ctx.config.shutdown_timeout,
            DeliveryMode::Sync => grace,
        };
        let until = std::time::Instant::now() + grace;
        while self.active.load(Ordering::Acquire) > 0 && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.buffer.stopping.store(true, Ordering::Release);
        let left = self.buffer.bytes.load(Ordering::Acquire);
        if left > 0 {
            self.ctx.log.error(format_args!(
                "{left} bytes of buffered chunks were not delivered within shutdown_timeout ({:?}) and are lost (delivery_mode async)",
                self.ctx.config.shutdown_timeout
            ));
        }
        let c = &self.ctx.counters;
        self.ctx.log.info(format_args!(
            "stopping: {} record(s) ({} bytes, billed as {}) delivered, {} resent, {} dropped, {} malformed",
            c.accepted_records.load(Ordering::Relaxed),
            c.accepted_bytes.load(Ordering::Relaxed),
            c.billed_bytes.load(Ordering::Relaxed),
            c.retried_records.load(Ordering::Relaxed),
            c.dropped_records.load(Ordering::Relaxed),
            c.malformed_events.load(Ordering::Relaxed),
        ));
        if let Some(j) = self.ctx.delivered.journal() {
            j.sync();
        }
        // Last values, then no more calls: Fluent Bit destroys the context after exit.
        self.telemetry.finish();
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
