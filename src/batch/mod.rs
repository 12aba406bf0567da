//! The encoded records of one chunk, and packing them into PutRecordBatch-sized batches.

pub mod compress;

pub use crate::config::limits::{MAX_BATCH_BYTES, MAX_BATCH_RECORDS, MAX_RECORD_BYTES};

mod frame;
mod records;
mod split;
#[cfg(test)]
mod tests;

pub use frame::{billed_bytes, frame, Frame, Framing, BILLING_UNIT};
pub use records::Records;
pub use split::{split, split_even, split_limited};
