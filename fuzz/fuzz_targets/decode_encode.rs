//! Arbitrary bytes as a Fluent Bit chunk → `prepare` with five option sets (default,
//! time_key + a format using every conversion, log_key, data_keys, replace_dots): no panic,
//! every record a valid single-line JSON object (or a raw line with log_key) within
//! Firehose's limit, and the decoder's counts equal an independent reading of the format.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    firehose_fanout_fuzz::decode_encode(data);
});
