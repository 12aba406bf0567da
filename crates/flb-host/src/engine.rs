//! The "engine thread" of one loaded plugin: a persistent thread named
//! `flb-pipeline`, like Fluent Bit's engine thread. `FLBPluginInit`,
//! `FLBPluginOutputPreRun`, `FLBPluginOutputPreExit`, `FLBPluginExitCtx` and
//! flushes of `workers 0` outputs run on it, one at a time, so a blocking
//! call stalls everything else queued on it, as in Fluent Bit.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread::{self, JoinHandle, ThreadId};

use crate::HostError;

/// Name of Fluent Bit's engine thread.
pub const ENGINE_THREAD_NAME: &str = "flb-pipeline";

type Job = Box<dyn FnOnce() + Send + 'static>;

pub(crate) struct Engine {
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    thread_id: ThreadId,
}

impl Engine {
    pub(crate) fn start() -> Result<Engine, HostError> {
        let (tx, rx) = mpsc::channel::<Job>();
        let handle = thread::Builder::new()
            .name(ENGINE_THREAD_NAME.to_string())
            // Fluent Bit's engine thread has the default pthread stack (8 MiB).
            .stack_size(8 * 1024 * 1024)
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    // A panic of host code must not kill the engine thread;
                    // the waiting caller sees its reply channel closed.
                    let _ = catch_unwind(AssertUnwindSafe(job));
                }
            })
            .map_err(|e| HostError::Thread(format!("cannot start the engine thread: {e}")))?;
        let thread_id = handle.thread().id();
        Ok(Engine {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(handle)),
            thread_id,
        })
    }

    /// Runs `f` on the engine thread and waits for its result.
    pub(crate) fn run<'a, R, F>(&self, f: F) -> Result<R, HostError>
    where
        R: Send + 'a,
        F: FnOnce() -> R + Send + 'a,
    {
        if thread::current().id() == self.thread_id {
            return Ok(f());
        }
        let (rtx, rrx) = mpsc::sync_channel::<R>(1);
        let job: Box<dyn FnOnce() + Send + 'a> = Box::new(move || {
            // `f` (and everything it captured) is consumed and dropped before
            // the result is sent, so nothing borrowed for 'a outlives `run`.
            let r = f();
            let _ = rtx.send(r);
        });
        // SAFETY: `run` does not return before the job has run to completion
        // or has been dropped: `rrx.recv()` only returns once the job sent its
        // result (after `f` and its captures are gone) or once `rtx`, owned by
        // the job, was dropped (job dropped unrun or unwound). Hence the 'a
        // borrows captured by the job never outlive this call; erasing the
        // lifetime to hand the job to the engine thread is sound.
        let job: Job = unsafe { std::mem::transmute::<Box<dyn FnOnce() + Send + 'a>, Job>(job) };
        {
            let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
            let Some(tx) = tx.as_ref() else {
                return Err(HostError::Thread("the engine thread was stopped".into()));
            };
            if tx.send(job).is_err() {
                return Err(HostError::Thread("the engine thread is gone".into()));
            }
        }
        rrx.recv()
            .map_err(|_| HostError::Thread("a host job panicked on the engine thread".into()))
    }

    /// Stops the engine thread and joins it (its thread-local destructors,
    /// including the plugin's, run before this returns).
    pub(crate) fn shutdown(&self) {
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(tx);
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            if h.thread().id() != thread::current().id() {
                let _ = h.join();
            }
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shutdown();
    }
}
