//! A chunk that Fluent Bit lends for the length of one flush call. In sync mode the
//! plugin's threads read it in place instead of copying it (one chunk-sized buffer less
//! per flush in flight); the flush withdraws it before it returns to Fluent Bit.

use crate::delivery::Lender;
use std::sync::Mutex;

/// Fluent Bit's chunk bytes.
struct Raw {
    ptr: *const u8,
    len: usize,
}

// SAFETY: `Raw` is only dereferenced in `Loan::read`, with the loan's lock held and before
// `withdraw` (which takes the same lock) has cleared it; the bytes are read, never written.
unsafe impl Send for Raw {}

/// The chunk of one flush call: readable until `withdraw`.
pub struct Loan {
    chunk: Mutex<Option<Raw>>,
}

impl Loan {
    /// # Safety
    /// `ptr` must point at `len` readable bytes that nobody writes until `withdraw` has
    /// returned.
    pub unsafe fn new(ptr: *const u8, len: usize) -> Loan {
        Loan {
            chunk: Mutex::new(Some(Raw { ptr, len })),
        }
    }

    /// Ends the loan: waits for a reader that is still reading, then no read sees the
    /// bytes again.
    pub fn withdraw(&self) {
        *self.chunk.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

impl Lender for Loan {
    fn read(&self, f: &mut dyn FnMut(Option<&[u8]>)) {
        let held = self.chunk.lock().unwrap_or_else(|p| p.into_inner());
        let bytes = held.as_ref().map(|r| {
            // SAFETY: the lock is held and `withdraw` has not run (it clears the option
            // under the same lock), so by `Loan::new`'s contract the bytes are still
            // readable; the slice cannot outlive `held`.
            unsafe { std::slice::from_raw_parts(r.ptr, r.len) }
        });
        f(bytes);
    }
}

/// Withdraws the loan however the flush call ends, unwinding included.
pub struct Withdraw<'a>(pub &'a Loan);

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        self.0.withdraw();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    fn read_all(l: &Loan) -> Option<Vec<u8>> {
        let mut out = None;
        l.read(&mut |b| out = b.map(<[u8]>::to_vec));
        out
    }

    #[test]
    fn reads_until_withdrawn() {
        let bytes = b"chunk".to_vec();
        // SAFETY: `bytes` outlives the loan and is not written.
        let loan = unsafe { Loan::new(bytes.as_ptr(), bytes.len()) };
        assert_eq!(read_all(&loan).as_deref(), Some(&b"chunk"[..]));
        {
            let _w = Withdraw(&loan);
        }
        assert_eq!(read_all(&loan), None);
    }

    #[test]
    fn withdraw_waits_for_a_reader() {
        let bytes = vec![7u8; 1 << 16];
        // SAFETY: `bytes` outlives the loan (joined below) and is not written.
        let loan = Arc::new(unsafe { Loan::new(bytes.as_ptr(), bytes.len()) });
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let reader = {
            let loan = loan.clone();
            std::thread::spawn(move || {
                let mut sum = 0u64;
                loan.read(&mut |b| {
                    let _ = started_tx.send(());
                    std::thread::sleep(Duration::from_millis(100));
                    sum = b.map_or(0, |b| b.iter().map(|&x| x as u64).sum());
                });
                sum
            })
        };
        started_rx.recv().expect("reader started");
        loan.withdraw();
        // The reader saw the whole chunk although the withdrawal came mid-read.
        assert_eq!(reader.join().expect("reader"), 7 << 16);
        assert_eq!(read_all(&loan), None);
    }
}
