//! Async mode's buffer: chunks Fluent Bit was told are done, bounded by
//! `buffer_max_bytes`, gathered into packs whose records share aggregates, each pack
//! delivered as its own task until done or the instance stops.

use super::ActiveGuard;
use crate::delivery::{self, Buffered, Context};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, Semaphore};

/// What the buffer holds, shared by the front end (taking chunks) and the packs.
#[derive(Default)]
pub(super) struct Buffer {
    /// Bytes of chunks taken and not yet delivered.
    pub bytes: AtomicUsize,
    /// Set at exit: buffered chunks stop retrying.
    pub stopping: AtomicBool,
}

impl Buffer {
    /// Takes `size` bytes if they fit under `max`; an empty buffer takes any one chunk,
    /// even one larger than the bound (refusing it would answer FLB_RETRY for ever).
    pub fn take(&self, size: usize, max: usize) -> bool {
        self.bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                (b == 0 || b + size <= max).then_some(b + size)
            })
            .is_ok()
    }

    pub fn give_back(&self, size: usize) {
        self.bytes.fetch_sub(size, Ordering::AcqRel);
    }
}

/// A buffered chunk waiting to be packed, counted as active until it is delivered.
pub(super) struct Held {
    pub buffered: Buffered,
    /// Counts the chunk as in flight until its pack is delivered.
    pub active: ActiveGuard,
}

/// Gathers buffered chunks into packs of about `aggregation_max_bytes` (or what came within
/// `buffer_linger` of the first), so their records share full aggregates, and delivers each
/// pack as its own task. Packs at once when the instance stops.
pub(super) async fn pack(
    ctx: Arc<Context>,
    buffer: Arc<Buffer>,
    release: fn(),
    mut rx: mpsc::UnboundedReceiver<Held>,
) {
    // Packs being encoded and sent at once: each spreads over every stream already, and
    // each holds its records, aggregates and request bodies (a few times its size), so
    // the rest wait as raw chunks, which buffer_max_bytes bounds.
    let sending = Arc::new(Semaphore::new((ctx.router.streams().len() / 2).max(2)));
    let spawn_pack = |held| spawn_pack(&ctx, &buffer, &sending, release, held);
    let target = ctx.config.aggregation_max_bytes;
    let linger = ctx.config.buffer_linger;
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

fn spawn_pack(
    ctx: &Arc<Context>,
    buffer: &Arc<Buffer>,
    sending: &Arc<Semaphore>,
    release: fn(),
    held: Vec<Held>,
) {
    if held.is_empty() {
        return;
    }
    let (ctx, buffer, sending) = (ctx.clone(), buffer.clone(), sending.clone());
    tokio::spawn(async move {
        // Never closed, so this only waits.
        let _turn = sending.acquire_owned().await;
        let size: usize = held.iter().map(|h| h.buffered.chunk.len()).sum();
        let (chunks, guards): (Vec<_>, Vec<_>) =
            held.into_iter().map(|h| (h.buffered, h.active)).unzip();
        let log = ctx.log.clone();
        let stop = buffer.clone();
        // Its own task: a panic (a bug) is logged; the guards still count the chunks done.
        let task = tokio::spawn(async move {
            delivery::run_packed(ctx, chunks, &stop.stopping).await;
        });
        if let Err(e) = task.await {
            log.error(format_args!(
                "internal error while delivering buffered chunks ({e}): they are lost; please report this"
            ));
        }
        buffer.give_back(size);
        drop(guards);
        release();
    });
}
