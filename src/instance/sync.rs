//! The sync front end: the dispatcher that runs each flush as its own task, and the
//! answer handed from the runtime to the waiting Fluent Bit worker.

use super::buffer::{self, Buffer, Held};
use super::{runtime, ActiveGuard, Job};
use crate::delivery::dedupe::Delivered;
use crate::delivery::{self, Context, Finished, FlushCode, KeySource};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::mpsc;

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
pub struct Reply {
    state: Mutex<ReplyState>,
    cv: std::sync::Condvar,
    /// The flush's chunk and tag, and its key once hashed.
    source: Arc<KeySource>,
}

impl Reply {
    pub fn new(source: Arc<KeySource>) -> Reply {
        Reply {
            state: Mutex::new(ReplyState::Waiting),
            cv: std::sync::Condvar::new(),
            source,
        }
    }

    pub fn source(&self) -> &Arc<KeySource> {
        &self.source
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
                // Still lent (the caller withdraws it after this returns): hashed now, for
                // a late outcome to be remembered under. Rare, and a few MB/ms of xxh3.
                let _ = self.source.get();
                *st = ReplyState::GaveUp;
                FlushCode::Retry
            }
        }
    }

    /// Answers with how a flush finished; if the waiter gave up meanwhile, a chunk that was
    /// delivered whole is remembered, so Fluent Bit's retry of it sends nothing again.
    pub fn settle(&self, finished: Finished, delivered: &Delivered) {
        if !self.answer(finished.code) {
            if let (Some(n), Some(key)) = (finished.all_delivered, self.source.get()) {
                delivered.remember(key, &vec![true; n]);
            }
        }
    }
}

/// The dispatcher: each sync flush becomes its own task (flushes of one instance run
/// concurrently); async chunks go to the buffer's packer.
pub(super) fn dispatch(
    lease: &runtime::Lease,
    ctx: &Arc<Context>,
    buffer: &Arc<Buffer>,
    active: &Arc<AtomicUsize>,
    release: fn(),
) -> mpsc::UnboundedSender<Job> {
    let (jobs_tx, mut jobs_rx) = mpsc::unbounded_channel::<Job>();
    let (pack_tx, pack_rx) = mpsc::unbounded_channel::<Held>();
    lease
        .handle()
        .spawn(buffer::pack(ctx.clone(), buffer.clone(), release, pack_rx));
    let (ctx, active) = (ctx.clone(), active.clone());
    lease.handle().spawn(async move {
        while let Some(job) = jobs_rx.recv().await {
            // Counted down however the job ends.
            let active = ActiveGuard(active.clone());
            let done = match job {
                Job::Flush(done) => done,
                Job::Buffered(buffered) => {
                    let _ = pack_tx.send(Held { buffered, active });
                    continue;
                }
            };
            let ctx = ctx.clone();
            tokio::spawn(async move {
                let _active = active;
                // The job runs as its own task so that a panic (a bug) is caught here,
                // logged, and answered, instead of leaving the flush without an answer.
                let task = ctx.clone();
                let source = done.source().clone();
                let r = tokio::spawn(async move { delivery::run(task, &source).await }).await;
                let failed = r.as_ref().err().map(|e| e.to_string());
                done.settle(r.unwrap_or_else(|_| FlushCode::Retry.into()), &ctx.delivered);
                release();
                if let Some(e) = failed {
                    ctx.log.error(format_args!(
                        "internal error while flushing a chunk ({e}): answering FLB_RETRY; please report this with the chunk"
                    ));
                }
            });
        }
    });
    jobs_tx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::dedupe::ChunkKey;
    use crate::delivery::Chunk;
    use std::sync::Arc;

    /// A chunk lent until `withdraw`, as the FFI lends Fluent Bit's.
    struct TestLoan(Mutex<Option<Vec<u8>>>);

    impl crate::delivery::Lender for TestLoan {
        fn read(&self, f: &mut dyn FnMut(Option<&[u8]>)) {
            f(self.0.lock().unwrap().as_deref());
        }
    }

    fn lent_reply(bytes: &[u8]) -> (Arc<TestLoan>, Arc<Reply>) {
        let loan = Arc::new(TestLoan(Mutex::new(Some(bytes.to_vec()))));
        let source = KeySource::new(Chunk::Lent(loan.clone()), "t".into());
        (loan, Arc::new(Reply::new(Arc::new(source))))
    }

    #[test]
    fn a_success_after_the_waiter_gave_up_is_remembered() {
        let delivered = Delivered::new(16);
        let key = ChunkKey::of("t", b"chunk");
        let all = || Finished {
            code: FlushCode::Ok,
            all_delivered: Some(3),
        };
        // Answered in time: nothing to remember (and nothing hashed).
        let (_loan, r) = lent_reply(b"chunk");
        r.settle(all(), &delivered);
        assert_eq!(r.wait(Duration::from_secs(1)), FlushCode::Ok);
        assert!(delivered.is_empty());
        // The waiter gave up (FLB_RETRY) and the loan ended, then the job delivered
        // everything: Fluent Bit sends the chunk again, and it must find every record
        // delivered, under the key the waiter hashed as it gave up.
        let (loan, r) = lent_reply(b"chunk");
        assert_eq!(r.wait(Duration::from_millis(10)), FlushCode::Retry);
        *loan.0.lock().unwrap() = None;
        r.settle(all(), &delivered);
        assert_eq!(r.source().get(), Some(key));
        assert_eq!(delivered.take(&key, 3), Some(vec![true; 3]));
    }

    #[test]
    fn the_answer_wakes_the_waiter() {
        let source = KeySource::new(Chunk::Owned(Vec::new()), "t".into());
        let r = Arc::new(Reply::new(Arc::new(source)));
        let r2 = r.clone();
        let t = std::thread::spawn(move || r2.wait(Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(20));
        assert!(r.answer(FlushCode::Error));
        assert_eq!(t.join().unwrap(), FlushCode::Error);
        assert!(!r.answer(FlushCode::Ok), "answered once only");
    }
}
