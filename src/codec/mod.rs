//! Fluent Bit's chunks (msgpack) into JSON lines: the lexer, the event decoder, the record
//! encoder and the time formats.

pub mod decode;
pub mod encode;
mod json;
pub mod msgpack;
pub mod timefmt;
