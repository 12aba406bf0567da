//! The emulator's state: delivery streams, their records and counters,
//! fault and quota state, the output folder. All of it sits behind one
//! mutex (`Shared`); nothing holds the lock across an `.await`.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::config::{EmulatorConfig, Faults, Quota, StreamSpec, StreamStatus};
use crate::destination::{stream_arn, BufferingHints};
use crate::error::{ApiError, SERVICE_UNAVAILABLE, SLOW_DOWN};
use crate::faults::{self, FaultKind, FaultState, RequestFault};
use crate::output::{BufferLimits, BufferTarget, OutputFolder, WrittenObject};
use crate::quota::QuotaLimiter;
use crate::stats::{Stats, StreamStats};
use crate::timeutil::unix_seconds_f64;

/// Most records in one `PutRecordBatch`.
pub const MAX_BATCH_RECORDS: usize = 500;
/// Most decoded bytes in one `PutRecordBatch`.
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Most decoded bytes in one record (1,000 KiB).
pub const MAX_RECORD_BYTES: usize = 1_000 * 1024;

/// One accepted record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRecord {
    /// The record's data (decoded).
    pub data: Vec<u8>,
    /// When the emulator accepted it.
    pub arrival: SystemTime,
    /// The `RecordId` handed back to the client.
    pub record_id: String,
}

/// The outcome of one record of a put.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordOutcome {
    /// Accepted with this `RecordId`.
    Accepted(String),
    /// Failed with this `ErrorCode` and `ErrorMessage`.
    Failed(String, String),
}

/// What fault injection decided before a request is processed.
#[derive(Debug)]
pub struct Preflight {
    /// Delay to add before answering.
    pub latency: Duration,
    /// A fault replacing the normal processing.
    pub fault: Option<RequestFault>,
}

struct Stream {
    spec: StreamSpec,
    faults: FaultState,
    limiter: Option<QuotaLimiter>,
    status: StreamStatus,
    active_at: Option<Instant>,
    stream_type: String,
    arn: String,
    created: SystemTime,
    last_update: SystemTime,
    version: u64,
    records: VecDeque<StoredRecord>,
    stats: StreamStats,
}

impl Stream {
    fn new(spec: StreamSpec, status: StreamStatus, active_at: Option<Instant>) -> Self {
        let now = Instant::now();
        let wall = SystemTime::now();
        Stream {
            faults: FaultState::new(spec.faults.clone()),
            limiter: spec.quota.clone().map(|q| QuotaLimiter::new(q, now)),
            arn: stream_arn(&spec.name),
            spec,
            status,
            active_at,
            stream_type: "DirectPut".to_string(),
            created: wall,
            last_update: wall,
            version: 1,
            records: VecDeque::new(),
            stats: StreamStats::default(),
        }
    }

    /// The status now, turning a delayed `CREATING` into `ACTIVE` on time.
    fn status(&mut self, now: Instant) -> StreamStatus {
        if let Some(at) = self.active_at {
            if now >= at {
                self.status = StreamStatus::Active;
                self.active_at = None;
            }
        }
        self.status
    }

    fn set_quota(&mut self, quota: Option<Quota>) {
        self.limiter = quota.clone().map(|q| QuotaLimiter::new(q, Instant::now()));
        self.spec.quota = quota;
    }

    fn set_faults(&mut self, faults: Faults) {
        self.spec.faults = faults.clone();
        self.faults.faults = faults;
    }
}

/// Global (non-stream) counters.
#[derive(Default)]
struct GlobalCounters {
    /// Requests by the access key id that signed them.
    access_keys: BTreeMap<String, u64>,
    /// Requests by their User-Agent header.
    user_agents: BTreeMap<String, u64>,
    requests: u64,
    rejected_requests: u64,
    faulted_requests: u64,
    resets: u64,
    invalid_signatures: u64,
    objects_written: u64,
    object_bytes_written: u64,
    output_errors: u64,
}

/// Everything behind the lock.
pub(crate) struct Inner {
    streams: BTreeMap<String, Stream>,
    global_faults: FaultState,
    rng: fastrand::Rng,
    output: Option<OutputFolder>,
    counters: GlobalCounters,
    started: Instant,
    started_at: SystemTime,
    id_prefix: u64,
    id_counter: u64,
    buffer_size_mib: u32,
    buffer_interval: Duration,
    create_delay: Duration,
    throttle_status: u16,
    record_retention: Option<usize>,
    /// Set when a put opened an output buffer, so the flusher must look at
    /// its deadline.
    wake_flusher: bool,
}

/// The shared state of one emulator.
pub(crate) struct Shared {
    inner: Mutex<Inner>,
    /// `EmulatorConfig::signing_secret`.
    pub(crate) signing_secret: Option<String>,
    /// Wakes the output flusher when a buffer opens.
    pub(crate) output_wakeup: Notify,
}

impl Shared {
    /// State for `config`: its streams exist and are ACTIVE. Creates the
    /// output folder if one is configured.
    pub fn new(config: &EmulatorConfig) -> io::Result<Self> {
        let output = match &config.output_dir {
            Some(dir) => Some(OutputFolder::new(dir)?),
            None => None,
        };
        let mut rng = match config.seed {
            Some(seed) => fastrand::Rng::with_seed(seed),
            None => fastrand::Rng::new(),
        };
        // Record ids come from their own generator so that they do not
        // shift the fault injection sequence.
        let id_prefix = fastrand::Rng::with_seed(rng.u64(..)).u64(..);
        let mut inner = Inner {
            streams: BTreeMap::new(),
            global_faults: FaultState::new(config.faults.clone()),
            rng,
            output,
            counters: GlobalCounters::default(),
            started: Instant::now(),
            started_at: SystemTime::now(),
            id_prefix,
            id_counter: 0,
            buffer_size_mib: config.buffer_size_mib.max(1),
            buffer_interval: config.buffer_interval,
            create_delay: config.create_delay,
            throttle_status: config.throttle_status,
            record_retention: config.record_retention,
            wake_flusher: false,
        };
        for spec in &config.streams {
            crate::config::validate_stream_name(&spec.name)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            inner.upsert_stream(spec.clone());
        }
        Ok(Shared {
            inner: Mutex::new(inner),
            signing_secret: config.signing_secret.clone(),
            output_wakeup: Notify::new(),
        })
    }

    /// Locks the state. A panic while the lock was held does not poison the
    /// emulator for everybody else.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Inner {
    // ----- streams -------------------------------------------------------

    /// Creates `spec.name`, or updates its quota, faults and destination
    /// when it exists (records and counters are kept).
    pub fn upsert_stream(&mut self, spec: StreamSpec) {
        match self.streams.get_mut(&spec.name) {
            Some(s) => {
                s.set_quota(spec.quota.clone());
                s.set_faults(spec.faults.clone());
                s.spec.destination = spec.destination;
                s.last_update = SystemTime::now();
            }
            None => {
                let name = spec.name.clone();
                self.streams
                    .insert(name, Stream::new(spec, StreamStatus::Active, None));
            }
        }
    }

    /// Removes a stream; its buffered output is written first.
    pub fn remove_stream(&mut self, name: &str) -> bool {
        if self.streams.remove(name).is_none() {
            return false;
        }
        if let Some(out) = self.output.as_mut() {
            let result = out.flush_stream(name);
            self.note_output(result.map(|o| o.into_iter().collect()), Vec::new());
        }
        true
    }

    pub fn stream_names(&self) -> Vec<String> {
        self.streams.keys().cloned().collect()
    }

    pub fn set_faults(&mut self, stream: Option<&str>, faults: Faults) -> bool {
        match stream {
            None => {
                self.global_faults.faults = faults;
                true
            }
            Some(name) => match self.streams.get_mut(name) {
                Some(s) => {
                    s.set_faults(faults);
                    true
                }
                None => false,
            },
        }
    }

    pub fn faults(&self, stream: Option<&str>) -> Option<Faults> {
        match stream {
            None => Some(self.global_faults.faults.clone()),
            Some(name) => self.streams.get(name).map(|s| s.faults.faults.clone()),
        }
    }

    pub fn set_quota(&mut self, stream: &str, quota: Option<Quota>) -> bool {
        match self.streams.get_mut(stream) {
            Some(s) => {
                s.set_quota(quota);
                true
            }
            None => false,
        }
    }

    pub fn set_status(&mut self, stream: &str, status: StreamStatus) -> bool {
        match self.streams.get_mut(stream) {
            Some(s) => {
                s.status = status;
                s.active_at = None;
                true
            }
            None => false,
        }
    }

    pub fn status(&mut self, stream: &str) -> Option<StreamStatus> {
        let now = Instant::now();
        self.streams.get_mut(stream).map(|s| s.status(now))
    }

    /// Starts an outage: until ended when `duration` is `None`, else for
    /// `duration`.
    pub fn start_outage(&mut self, stream: Option<&str>, duration: Option<Duration>) -> bool {
        let state = match stream {
            None => &mut self.global_faults,
            Some(name) => match self.streams.get_mut(name) {
                Some(s) => &mut s.faults,
                None => return false,
            },
        };
        match duration {
            None => {
                state.faults.outage = true;
                state.outage_until = None;
            }
            Some(d) => state.outage_until = Some(Instant::now() + d),
        }
        true
    }

    /// Ends an outage (both the `outage` flag and any timed window).
    pub fn end_outage(&mut self, stream: Option<&str>) -> bool {
        let state = match stream {
            None => &mut self.global_faults,
            Some(name) => match self.streams.get_mut(name) {
                Some(s) => &mut s.faults,
                None => return false,
            },
        };
        state.faults.outage = false;
        state.outage_until = None;
        if let Some(name) = stream {
            if let Some(s) = self.streams.get_mut(name) {
                s.spec.faults.outage = false;
            }
        }
        true
    }

    pub fn records(&self, stream: &str) -> Vec<StoredRecord> {
        self.streams
            .get(stream)
            .map(|s| s.records.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn record_data(&self, stream: &str) -> Vec<Vec<u8>> {
        self.streams
            .get(stream)
            .map(|s| s.records.iter().map(|r| r.data.clone()).collect())
            .unwrap_or_default()
    }

    pub fn record_count(&self, stream: &str) -> usize {
        self.streams.get(stream).map_or(0, |s| s.records.len())
    }

    pub fn clear_records(&mut self, stream: &str) -> bool {
        match self.streams.get_mut(stream) {
            Some(s) => {
                s.records.clear();
                true
            }
            None => false,
        }
    }

    pub fn stream_specs(&mut self) -> Vec<(StreamSpec, StreamStatus)> {
        let now = Instant::now();
        self.streams
            .values_mut()
            .map(|s| (s.spec.clone(), s.status(now)))
            .collect()
    }

    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        Stats {
            started_at: unix_seconds_f64(self.started_at),
            uptime_seconds: self.started.elapsed().as_secs_f64(),
            requests: c.requests,
            rejected_requests: c.rejected_requests,
            faulted_requests: c.faulted_requests,
            resets: c.resets,
            objects_written: c.objects_written,
            object_bytes_written: c.object_bytes_written,
            output_errors: c.output_errors,
            access_keys: c.access_keys.clone(),
            invalid_signatures: c.invalid_signatures,
            user_agents: c.user_agents.clone(),
            streams: self
                .streams
                .iter()
                .map(|(name, s)| (name.clone(), s.stats.clone()))
                .collect(),
        }
    }

    // ----- request pipeline -------------------------------------------

    /// Counts a request whose SigV4 signature did not match (with `signing_secret`).
    pub fn count_invalid_signature(&mut self) {
        self.counters.invalid_signatures += 1;
    }

    /// Counts a request signed with `access_key` (SigV4 `Credential=`).
    pub fn count_access_key(&mut self, access_key: &str) {
        *self
            .counters
            .access_keys
            .entry(access_key.to_string())
            .or_insert(0) += 1;
    }

    /// Counts a request by its User-Agent header.
    pub fn count_user_agent(&mut self, user_agent: &str) {
        *self
            .counters
            .user_agents
            .entry(user_agent.to_string())
            .or_insert(0) += 1;
    }

    /// Counts an API request.
    pub fn count_request(&mut self) {
        self.counters.requests += 1;
    }

    /// Counts a request rejected before reaching a stream.
    pub fn count_rejected(&mut self) {
        self.counters.rejected_requests += 1;
    }

    /// Counts a request rejected with a 4xx: on the stream if it exists,
    /// else globally.
    fn count_rejected_on(&mut self, stream: &str) {
        match self.streams.get_mut(stream) {
            Some(s) => s.stats.rejected_requests += 1,
            None => self.counters.rejected_requests += 1,
        }
    }

    /// Rolls latency and request faults, global first, then the stream's.
    /// `is_put` says whether the request counts as a put of `stream`.
    pub fn preflight(&mut self, action: &str, stream: Option<&str>, is_put: bool) -> Preflight {
        let now = Instant::now();
        let Inner {
            streams,
            global_faults,
            rng,
            counters,
            ..
        } = self;
        let stream_name = stream;
        let mut stream = stream.and_then(|name| streams.get_mut(name));
        if let (true, Some(s)) = (is_put, &mut stream) {
            s.stats.requests += 1;
        }
        let mut latency = faults::latency(&global_faults.faults, rng);
        if let Some(s) = &stream {
            latency += faults::latency(&s.faults.faults, rng);
        }
        // IAM answers before anything else looks at the request.
        let mut fault = faults::denied(&global_faults.faults, action, stream_name)
            .or_else(|| {
                let s = stream.as_ref()?;
                faults::denied(&s.faults.faults, action, stream_name)
            })
            .map(|e| (FaultKind::Failure, RequestFault::Fail(e)));
        if fault.is_none() {
            fault = faults::request_fault(global_faults, now, rng);
        }
        if let (None, Some(s)) = (&fault, &stream) {
            fault = faults::request_fault(&s.faults, now, rng);
        }
        let fault = fault.map(|(kind, fault)| {
            counters.faulted_requests += 1;
            if kind == FaultKind::Reset {
                counters.resets += 1;
            }
            if let Some(s) = &mut stream {
                s.stats.faulted_requests += 1;
            }
            fault
        });
        Preflight { latency, fault }
    }

    /// Processes a put of decoded `records` to `name`. `single` is a
    /// `PutRecord` (at most one record, failures become request errors).
    pub fn put(
        &mut self,
        name: &str,
        records: Vec<Vec<u8>>,
        single: bool,
    ) -> Result<Vec<RecordOutcome>, ApiError> {
        let now = Instant::now();
        let wall = SystemTime::now();

        // API limits.
        if let Err(e) = check_limits(&records, single) {
            self.count_rejected_on(name);
            return Err(e);
        }

        let throttle_status = self.throttle_status;
        let default_limits = self.default_buffer_limits();
        let retention = self.record_retention;
        let Inner {
            streams,
            global_faults,
            rng,
            output,
            counters,
            id_prefix,
            id_counter,
            ..
        } = self;

        let Some(stream) = streams.get_mut(name) else {
            counters.rejected_requests += 1;
            return Err(ApiError::stream_not_found(name));
        };
        let status = stream.status(now);
        if status != StreamStatus::Active {
            stream.stats.rejected_requests += 1;
            return Err(ApiError::resource_not_found(format!(
                "Firehose {name} under account {} is not ACTIVE (status {status}).",
                crate::config::ACCOUNT_ID
            )));
        }

        // Whole-request quotas.
        let total_bytes: usize = records.iter().map(Vec::len).sum();
        let throttled_whole = match stream.limiter.as_mut() {
            Some(l) => {
                !l.admit_request(now)
                    || (l.whole_request() && !l.admit_all(records.len(), total_bytes, now))
            }
            None => false,
        };
        if throttled_whole {
            stream.stats.throttled_requests += 1;
            stream.stats.throttled_records += records.len() as u64;
            return Err(ApiError::service_unavailable(throttle_status, SLOW_DOWN));
        }

        let limits = match stream.spec.destination.buffering_hints {
            Some(h) => buffer_limits(h, default_limits),
            None => default_limits,
        };
        let delimiter = stream.spec.destination.appends_delimiter();
        let deaggregation = stream.spec.destination.deaggregation_delimiter();
        let second = wall.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut per_record_throttled = false;
        let mut opened_buffer = false;
        let mut outcomes = Vec::with_capacity(records.len());
        stream.stats.received_records += records.len() as u64;

        for data in records {
            // Per-record quota: once the budget is spent, every later record
            // of the request is throttled too.
            if !per_record_throttled {
                if let Some(l) = stream.limiter.as_mut() {
                    if !l.whole_request() && !l.admit_record(data.len(), now) {
                        per_record_throttled = true;
                    }
                }
            }
            if per_record_throttled {
                stream.stats.throttled_records += 1;
                stream.stats.count_failure(SERVICE_UNAVAILABLE);
                outcomes.push(RecordOutcome::Failed(
                    SERVICE_UNAVAILABLE.to_string(),
                    SLOW_DOWN.to_string(),
                ));
                continue;
            }
            let fault = faults::record_fault(&global_faults.faults, rng)
                .or_else(|| faults::record_fault(&stream.faults.faults, rng));
            if let Some((code, message)) = fault {
                stream.stats.count_failure(&code);
                outcomes.push(RecordOutcome::Failed(code, message));
                continue;
            }

            *id_counter += 1;
            let record_id = format!("{:016x}{:016x}", *id_prefix, *id_counter);
            stream.stats.count_accepted(second, data.len());
            if let Some(d) = &deaggregation {
                if sub_records(&data, d) > crate::stats::MAX_SUB_RECORDS {
                    stream.stats.deaggregation_failed_records += 1;
                }
            }
            if let Some(out) = output.as_mut() {
                let target = BufferTarget {
                    stream: name,
                    version: stream.version,
                    limits,
                    delimiter,
                };
                opened_buffer |= !out.has_buffer(name);
                match out.append(&target, &data, wall, now) {
                    Ok(Some(obj)) => {
                        count_object(counters, &mut stream.stats, &obj);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        counters.output_errors += 1;
                        eprintln!("firehose-emulator: writing output of {name}: {e}");
                    }
                }
            }
            stream.records.push_back(StoredRecord {
                data,
                arrival: wall,
                record_id: record_id.clone(),
            });
            if let Some(max) = retention {
                while stream.records.len() > max {
                    stream.records.pop_front();
                }
            }
            outcomes.push(RecordOutcome::Accepted(record_id));
        }

        if opened_buffer {
            // The flusher may be sleeping without a deadline.
            self.wake_flusher = true;
        }

        if single {
            if per_record_throttled {
                // A throttled `PutRecord` is a throttled request.
                stream.stats.throttled_requests += 1;
            }
            if let Some(RecordOutcome::Failed(code, message)) = outcomes.first() {
                let status = if code == SERVICE_UNAVAILABLE {
                    throttle_status
                } else {
                    500
                };
                return Err(ApiError::new(status, code.clone(), message.clone()));
            }
        }
        Ok(outcomes)
    }

    fn default_buffer_limits(&self) -> BufferLimits {
        BufferLimits {
            size_bytes: u64::from(self.buffer_size_mib) * 1024 * 1024,
            interval: self.buffer_interval,
        }
    }

    /// The buffering hints in force for a stream, as Describe reports them.
    fn effective_hints(&self, hints: Option<BufferingHints>) -> BufferingHints {
        let d = self.default_buffer_limits();
        let default_secs = u32::try_from(d.interval.as_secs()).unwrap_or(u32::MAX);
        let h = hints.unwrap_or_default();
        BufferingHints {
            size_in_mbs: Some(h.size_in_mbs.unwrap_or(self.buffer_size_mib)),
            interval_in_seconds: Some(h.interval_in_seconds.unwrap_or(default_secs)),
        }
    }

    // ----- control plane operations ------------------------------------

    /// `CreateDeliveryStream` with an already parsed destination.
    pub fn api_create(
        &mut self,
        spec: StreamSpec,
        stream_type: String,
    ) -> Result<String, ApiError> {
        if self.streams.contains_key(&spec.name) {
            return Err(ApiError::resource_in_use(format!(
                "Firehose {} under accountId {} already exists",
                spec.name,
                crate::config::ACCOUNT_ID
            )));
        }
        let (status, active_at) = if self.create_delay.is_zero() {
            (StreamStatus::Active, None)
        } else {
            (
                StreamStatus::Creating,
                Some(Instant::now() + self.create_delay),
            )
        };
        let name = spec.name.clone();
        let mut stream = Stream::new(spec, status, active_at);
        stream.stream_type = stream_type;
        let arn = stream.arn.clone();
        self.streams.insert(name, stream);
        Ok(arn)
    }

    /// `DeleteDeliveryStream`.
    pub fn api_delete(&mut self, name: &str, force: bool) -> Result<(), ApiError> {
        let now = Instant::now();
        let Some(stream) = self.streams.get_mut(name) else {
            return Err(ApiError::stream_not_found(name));
        };
        if stream.status(now) == StreamStatus::Creating && !force {
            return Err(ApiError::resource_in_use(format!(
                "Firehose {name} is in CREATING state and cannot be deleted."
            )));
        }
        self.remove_stream(name);
        Ok(())
    }

    /// `DescribeDeliveryStream` output.
    pub fn api_describe(&mut self, name: &str) -> Result<Value, ApiError> {
        let now = Instant::now();
        let hints = match self.streams.get(name) {
            Some(s) => self.effective_hints(s.spec.destination.buffering_hints),
            None => return Err(ApiError::stream_not_found(name)),
        };
        let Some(s) = self.streams.get_mut(name) else {
            return Err(ApiError::stream_not_found(name));
        };
        let status = s.status(now);
        let dest = &s.spec.destination;
        Ok(json!({
            "DeliveryStreamDescription": {
                "DeliveryStreamName": name,
                "DeliveryStreamARN": s.arn,
                "DeliveryStreamStatus": status.as_str(),
                "DeliveryStreamType": s.stream_type,
                "DeliveryStreamEncryptionConfiguration": {"Status": "DISABLED"},
                "VersionId": s.version.to_string(),
                "CreateTimestamp": unix_seconds_f64(s.created),
                "LastUpdateTimestamp": unix_seconds_f64(s.last_update),
                "Destinations": [{
                    "DestinationId": "destinationId-000000000001",
                    "S3DestinationDescription": dest.s3_description(hints),
                    "ExtendedS3DestinationDescription": dest.extended_s3_description(hints),
                }],
                "HasMoreDestinations": false,
            }
        }))
    }

    /// `ListDeliveryStreams`: names after `start` (exclusive), of
    /// `stream_type` if given, at most `limit`; and whether more follow.
    pub fn api_list(
        &self,
        limit: usize,
        stream_type: Option<&str>,
        start: Option<&str>,
    ) -> (Vec<String>, bool) {
        let mut names = self
            .streams
            .iter()
            .filter(|(name, _)| match start {
                Some(start) => name.as_str() > start,
                None => true,
            })
            .filter(|(_, s)| match stream_type {
                Some(t) => s.stream_type == t,
                None => true,
            })
            .map(|(name, _)| name.clone());
        let page: Vec<String> = names.by_ref().take(limit).collect();
        let more = names.next().is_some();
        (page, more)
    }

    // ----- output -------------------------------------------------------

    /// `true` once after a put opened an output buffer.
    pub fn take_wake_flusher(&mut self) -> bool {
        std::mem::take(&mut self.wake_flusher)
    }

    /// The earliest buffer deadline of the output folder.
    pub fn next_output_deadline(&self) -> Option<Instant> {
        self.output.as_ref().and_then(OutputFolder::next_deadline)
    }

    /// Writes the buffers whose interval ran out.
    pub fn flush_due_output(&mut self, now: Instant) {
        if let Some(out) = self.output.as_mut() {
            let (written, errors) = out.flush_due(now);
            self.note_output(Ok(written), errors);
        }
    }

    /// Writes every buffer; returns the first error.
    pub fn flush_all_output(&mut self) -> io::Result<()> {
        let Some(out) = self.output.as_mut() else {
            return Ok(());
        };
        let (written, errors) = out.flush_all();
        let first = errors
            .first()
            .map(|e| io::Error::new(e.kind(), e.to_string()));
        self.note_output(Ok(written), errors);
        first.map_or(Ok(()), Err)
    }

    fn note_output(&mut self, written: io::Result<Vec<WrittenObject>>, mut errors: Vec<io::Error>) {
        match written {
            Ok(objs) => {
                for obj in objs {
                    let Inner {
                        streams, counters, ..
                    } = self;
                    let mut scratch = StreamStats::default();
                    let stats = match streams.get_mut(&obj.stream) {
                        Some(s) => &mut s.stats,
                        None => &mut scratch,
                    };
                    count_object(counters, stats, &obj);
                }
            }
            Err(e) => errors.push(e),
        }
        for e in errors {
            self.counters.output_errors += 1;
            eprintln!("firehose-emulator: writing output: {e}");
        }
    }
}

fn count_object(counters: &mut GlobalCounters, stats: &mut StreamStats, obj: &WrittenObject) {
    counters.objects_written += 1;
    counters.object_bytes_written += obj.bytes;
    stats.objects_written += 1;
    stats.object_bytes_written += obj.bytes;
}

fn buffer_limits(hints: BufferingHints, defaults: BufferLimits) -> BufferLimits {
    BufferLimits {
        size_bytes: hints
            .size_in_mbs
            .map_or(defaults.size_bytes, |mb| u64::from(mb.max(1)) * 1024 * 1024),
        interval: hints
            .interval_in_seconds
            .map_or(defaults.interval, |s| Duration::from_secs(u64::from(s))),
    }
}

/// The `PutRecord`/`PutRecordBatch` limits of the real service.
fn check_limits(records: &[Vec<u8>], single: bool) -> Result<(), ApiError> {
    if records.is_empty() {
        return Err(ApiError::invalid_argument(
            "1 validation error detected: Value '[]' at 'records' failed to satisfy constraint: \
             Member must have length greater than or equal to 1",
        ));
    }
    if records.len() > MAX_BATCH_RECORDS {
        return Err(ApiError::invalid_argument(format!(
            "1 validation error detected: Value at 'records' failed to satisfy constraint: \
             Member must have length less than or equal to {MAX_BATCH_RECORDS} (got {})",
            records.len()
        )));
    }
    for (i, r) in records.iter().enumerate() {
        if r.len() > MAX_RECORD_BYTES {
            let at = if single {
                "record.data".to_string()
            } else {
                format!("records.{}.member.data", i + 1)
            };
            return Err(ApiError::invalid_argument(format!(
                "1 validation error detected: Value at '{at}' failed to satisfy constraint: \
                 Member must have length less than or equal to {MAX_RECORD_BYTES} (got {})",
                r.len()
            )));
        }
    }
    let total: usize = records.iter().map(Vec::len).sum();
    if total > MAX_BATCH_BYTES {
        return Err(ApiError::invalid_argument(format!(
            "Records size exceeds {MAX_BATCH_BYTES} bytes limit (got {total} bytes)."
        )));
    }
    Ok(())
}

/// Non-empty pieces of `data` split on `delim` (the sub-records deaggregation finds).
fn sub_records(data: &[u8], delim: &[u8]) -> usize {
    if delim.is_empty() {
        return 1;
    }
    let mut n = 0;
    let mut start = 0;
    let mut i = 0;
    while i + delim.len() <= data.len() {
        if &data[i..i + delim.len()] == delim {
            n += usize::from(i > start);
            i += delim.len();
            start = i;
        } else {
            i += 1;
        }
    }
    n + usize::from(data.len() > start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::INVALID_ARGUMENT;

    #[test]
    fn limits() {
        assert!(check_limits(&[vec![0; MAX_RECORD_BYTES]], true).is_ok());
        let e = check_limits(&[vec![0; MAX_RECORD_BYTES + 1]], false).unwrap_err();
        assert_eq!(e.code, INVALID_ARGUMENT);
        assert!(e.message.contains("records.1.member.data"));
        assert!(check_limits(&[], false).is_err());
        assert!(check_limits(&vec![vec![1]; 500], false).is_ok());
        assert!(check_limits(&vec![vec![1]; 501], false).is_err());
        assert!(check_limits(&vec![vec![1; 1_000_000]; 4], false).is_ok());
        assert!(check_limits(&vec![vec![1; 1_000_000]; 5], false).is_err());
    }

    #[test]
    fn list_pages() {
        let config = EmulatorConfig {
            streams: (0..5).map(|i| StreamSpec::new(format!("s{i}"))).collect(),
            ..Default::default()
        };
        let shared = Shared::new(&config).unwrap();
        let inner = shared.lock();
        assert_eq!(
            inner.api_list(2, None, None),
            (vec!["s0".into(), "s1".into()], true)
        );
        assert_eq!(
            inner.api_list(10, None, Some("s2")),
            (vec!["s3".into(), "s4".into()], false)
        );
        assert_eq!(
            inner.api_list(10, Some("KinesisStreamAsSource"), None),
            (vec![], false)
        );
    }

    #[test]
    fn per_record_quota_throttles_the_tail() {
        let config = EmulatorConfig {
            streams: vec![StreamSpec::new("q").with_quota(Quota {
                records_per_second: Some(3.0),
                ..Default::default()
            })],
            ..Default::default()
        };
        let shared = Shared::new(&config).unwrap();
        let mut inner = shared.lock();
        let out = inner.put("q", vec![vec![1]; 5], false).unwrap();
        let accepted = out
            .iter()
            .take_while(|o| matches!(o, RecordOutcome::Accepted(_)))
            .count();
        assert_eq!(accepted, 3);
        assert!(out[3..]
            .iter()
            .all(|o| matches!(o, RecordOutcome::Failed(c, _) if c == SERVICE_UNAVAILABLE)));
        let stats = inner.stats();
        assert_eq!(stats.streams["q"].throttled_records, 2);
        assert_eq!(stats.streams["q"].accepted_records, 3);
    }
}
