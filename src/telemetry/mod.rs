//! What the plugin tells: log lines through Fluent Bit's logger, metrics in its endpoint.

pub mod log;
pub mod metrics;
