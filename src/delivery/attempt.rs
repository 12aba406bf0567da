//! One PutRecordBatch call as its own task: wait for the placement's time and a slot,
//! frame the records (aggregation, compression, ≤500 Firehose records and 4 MiB), send,
//! and map each Firehose record's outcome back to its log records.

use super::job::Job;
use crate::batch::{self, Framing};
use crate::firehose::put::{self, CallError, RecordFailure};
use crate::schedule::{Placement, Stream};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// One call's result as its task reports it.
pub(super) struct Sent {
    pub(super) stream: Arc<Stream>,
    pub(super) idx: Vec<u32>,
    pub(super) sent: std::time::Instant,
    /// The stream's round when the call was placed.
    pub(super) round: u64,
    /// Per log record of `idx[..idx.len() - rest]`; `None`: cancelled before it was sent.
    pub(super) result: Option<Result<Vec<Option<RecordFailure>>, CallError>>,
    /// The last `rest` records of `idx` did not fit the call (500 Firehose records, 4 MiB)
    /// and go again, untried.
    pub(super) rest: usize,
    /// Firehose records the call carried.
    pub(super) sent_frames: usize,
    /// Firehose records accepted, and what Firehose bills for them.
    pub(super) frames: u64,
    pub(super) billed: u64,
}

impl Job {
    /// Starts one call: waits for the placement's time and a slot, then frames the records
    /// (aggregation, compression) and sends them.
    pub(super) fn start(
        &self,
        p: Placement,
        idx: Vec<u32>,
        set: &mut JoinSet<Sent>,
        cancel: &watch::Receiver<bool>,
    ) {
        let client = self.ctx.client.clone();
        let records = self.records.clone();
        let cfg = &self.ctx.config;
        let compression = cfg.compression;
        let aggregate_max = cfg
            .aggregation_max_bytes
            .min(self.ctx.router.aggregate_bytes(&p.stream));
        let mut cancel = cancel.clone();
        set.spawn(async move {
            let stream = p.stream;
            let sent = std::time::Instant::now();
            let mut out = Sent {
                stream,
                idx,
                sent,
                round: p.round,
                result: None,
                rest: 0,
                sent_frames: 0,
                frames: 0,
                billed: 0,
            };
            if !p.wait.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(p.wait) => {}
                    _ = cancel.wait_for(|c| *c) => return out,
                }
            }
            let permit = tokio::select! {
                permit = out.stream.permits.clone().acquire_owned() => permit,
                _ = cancel.wait_for(|c| *c) => return out,
            };
            let framing = Framing {
                aggregate_max: out.stream.aggregates().then_some(aggregate_max),
                max_members: out.stream.aggregate_members(),
                compression,
            };
            let frames = match batch::frame(&records, &out.idx, framing) {
                Ok(f) => f,
                Err(e) => {
                    out.result = Some(Err(CallError::Transient(format!(
                        "compressing records: {e}"
                    ))));
                    return out;
                }
            };
            let framed = frames.last().map_or(0, |f| f.members.end);
            out.rest = out.idx.len() - framed;
            out.sent_frames = frames.len();
            let shape: Vec<(std::ops::Range<usize>, usize)> =
                frames.iter().map(|f| (f.members.clone(), f.len)).collect();
            let body = crate::firehose::body::Body::new(
                &out.stream.name,
                frames,
                records,
                // Only what the frames carry: the rest goes in another call.
                out.idx[..framed].to_vec(),
            );
            out.sent = std::time::Instant::now();
            let result = put::put_body(&client, body).await;
            // A Firehose record is taken or refused whole: its outcome is each member's.
            out.result = Some(result.map(|per_frame| {
                let mut per_record = vec![None; framed];
                for ((members, len), outcome) in shape.into_iter().zip(per_frame) {
                    match outcome {
                        None => {
                            out.frames += 1;
                            out.billed += batch::billed_bytes(len);
                        }
                        Some(f) => {
                            for k in members {
                                per_record[k] = Some(f.clone());
                            }
                        }
                    }
                }
                per_record
            }));
            if let Ok(permit) = permit {
                // The stream's in-flight limit went down meanwhile: give the slot up.
                if out.stream.retire_permit() {
                    permit.forget();
                }
            }
            out
        });
    }
}
