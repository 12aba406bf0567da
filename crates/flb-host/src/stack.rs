//! Coroutine stacks: Fluent Bit runs every output flush inside a libco
//! coroutine whose stack is a plain heap block of `coro_stack_size` bytes
//! (64 KiB by default in v5; no guard page). The host reproduces this with an
//! mmap'd block and `makecontext`/`swapcontext`, and measures how much of the
//! stack the flush touched.
//!
//! Layout of the mapping, low to high addresses:
//!
//! ```text
//! [ PROT_NONE page | red zone (canary) | stack: stack_size bytes ] <- top
//! ```
//!
//! Before the call the red zone and the stack are filled with a 64-bit
//! pattern. Afterwards the lowest modified word gives the high-water mark.
//! A modified red-zone word means the flush overflowed the stack (in Fluent
//! Bit it would have silently corrupted the heap). Writes that skip the whole
//! red zone hit the PROT_NONE page and crash the process.

use std::ptr;

use crate::HostError;

/// Fill pattern of unused stack words.
const PATTERN: u64 = 0x5AFE_57AC_C0DE_F1B5;

pub(crate) struct CoroStack {
    base: *mut u8,
    len: usize,
    /// Lowest address of the red zone (just above the PROT_NONE page).
    redzone_lo: *mut u8,
    /// Lowest address of the usable stack.
    stack_lo: *mut u8,
    stack_size: usize,
}

impl CoroStack {
    /// Maps a stack of `stack_size` bytes (rounded up to 16) with a red zone
    /// of at least 64 KiB (and at least `stack_size`) below it.
    pub(crate) fn new(stack_size: usize) -> Result<CoroStack, HostError> {
        if stack_size < 4096 {
            return Err(HostError::Stack(format!(
                "stack size {stack_size} is too small (at least 4096)"
            )));
        }
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let page = if page > 0 { page as usize } else { 4096 };
        let stack_size = (stack_size + 15) & !15;
        let redzone = stack_size.max(64 * 1024);
        let len = (page + redzone + stack_size).div_ceil(page) * page;
        // SAFETY: anonymous private mapping, no address hint; checked below.
        let base = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(HostError::Stack(
                std::io::Error::last_os_error().to_string(),
            ));
        }
        let base = base.cast::<u8>();
        // SAFETY: the first page lies inside the mapping just created.
        let rc = unsafe { libc::mprotect(base.cast(), page, libc::PROT_NONE) };
        if rc != 0 {
            let err = std::io::Error::last_os_error().to_string();
            // SAFETY: unmapping the mapping created above.
            unsafe { libc::munmap(base.cast(), len) };
            return Err(HostError::Stack(err));
        }
        // SAFETY: all offsets are within [base, base + len).
        let (redzone_lo, stack_lo) = unsafe { (base.add(page), base.add(len - stack_size)) };
        let s = CoroStack {
            base,
            len,
            redzone_lo,
            stack_lo,
            stack_size,
        };
        s.fill();
        Ok(s)
    }

    fn top(&self) -> *mut u8 {
        // SAFETY: one past the end of the mapping.
        unsafe { self.base.add(self.len) }
    }

    fn words(&self) -> usize {
        (self.top() as usize - self.redzone_lo as usize) / 8
    }

    fn fill(&self) {
        let p = self.redzone_lo.cast::<u64>();
        for i in 0..self.words() {
            // SAFETY: redzone_lo is page aligned and the words lie inside the
            // writable part of the mapping.
            unsafe { p.add(i).write_volatile(PATTERN) };
        }
    }

    /// Lowest address and usable size of the stack.
    pub(crate) fn stack(&self) -> (*mut u8, usize) {
        (self.stack_lo, self.stack_size)
    }

    /// `(bytes used below the top, overflowed)` after a run.
    pub(crate) fn measure(&self) -> (usize, bool) {
        let p = self.redzone_lo.cast::<u64>();
        for i in 0..self.words() {
            // SAFETY: as in `fill`.
            let w = unsafe { p.add(i).read_volatile() };
            if w != PATTERN {
                let addr = p as usize + i * 8;
                let used = self.top() as usize - addr;
                return (used, addr < self.stack_lo as usize);
            }
        }
        (0, false)
    }
}

impl Drop for CoroStack {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping created in `new`; no context
        // runs on it any more.
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}
