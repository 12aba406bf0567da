//! The one tokio runtime shared by every instance in the process.
//!
//! Created by the first instance, dropped (its threads joined) when the last one exits, so
//! that nothing of ours runs when Fluent Bit `dlclose`s the library. Hot reload starts the
//! new instance before the old one exits; the count keeps the runtime alive across that.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::LazyLock as Lazy;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::runtime::{Handle, Runtime};

struct Slot {
    runtime: Option<Arc<Runtime>>,
    users: usize,
}

static SLOT: Lazy<Mutex<Slot>> = Lazy::new(|| {
    Mutex::new(Slot {
        runtime: None,
        users: 0,
    })
});

/// Holding a lease keeps the runtime alive; `release` gives it back.
pub struct Lease {
    handle: Handle,
    released: bool,
}

impl Lease {
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Gives the lease back; the last one shuts the runtime down, waiting up to `grace`
    /// for its threads.
    pub fn release(mut self, grace: Duration) {
        self.released = true;
        release(grace);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.released {
            release(Duration::from_secs(1));
        }
    }
}

/// Takes a lease, creating the runtime with `threads` workers if there is none.
pub fn acquire(threads: usize) -> std::io::Result<Lease> {
    let mut slot = SLOT.lock().unwrap_or_else(|p| p.into_inner());
    let rt = match &slot.runtime {
        Some(rt) => rt.clone(),
        None => {
            static SEQ: AtomicUsize = AtomicUsize::new(0);
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads.max(1))
                .max_blocking_threads(4)
                .thread_name_fn(|| {
                    format!("firehose-fanout-{}", SEQ.fetch_add(1, Ordering::Relaxed))
                })
                .enable_all()
                .build()?;
            let rt = Arc::new(rt);
            slot.runtime = Some(rt.clone());
            rt
        }
    };
    slot.users += 1;
    Ok(Lease {
        handle: rt.handle().clone(),
        released: false,
    })
}

fn release(grace: Duration) {
    let rt = {
        let mut slot = SLOT.lock().unwrap_or_else(|p| p.into_inner());
        slot.users = slot.users.saturating_sub(1);
        if slot.users > 0 {
            return;
        }
        slot.runtime.take()
    };
    if let Some(rt) = rt {
        // Only we hold the Arc by now (leases keep handles, not the Arc).
        match Arc::try_unwrap(rt) {
            Ok(rt) => rt.shutdown_timeout(grace),
            Err(rt) => drop(rt),
        }
    }
}
