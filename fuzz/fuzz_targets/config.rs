//! Arbitrary bytes as `key=value` lines (`#N=value` picks the Nth real key) →
//! `Config::from_lookup`: no panic; an error names a key; an accepted configuration
//! encodes a probe chunk into valid records.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    firehose_fanout_fuzz::config(data);
});
