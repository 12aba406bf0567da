//! Logging through the host (Fluent Bit's `log_print`), with the core plugins' prefix
//! `[output:firehose_fanout:NAME]` and the instance's log level.

use std::fmt;
use std::sync::Arc;

/// Fluent Bit's log levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(i32)]
pub enum Level {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

/// Where log lines go: Fluent Bit in production, a buffer or stderr in tests.
pub trait LogSink: Send + Sync {
    fn enabled(&self, level: Level) -> bool;
    fn write(&self, level: Level, line: &str);
}

/// A cheap, cloneable logger for one instance.
#[derive(Clone)]
pub struct Logger {
    sink: Arc<dyn LogSink>,
    prefix: Arc<str>,
}

impl fmt::Debug for Logger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Logger")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl Logger {
    pub fn new(sink: Arc<dyn LogSink>, instance: &str) -> Logger {
        Logger {
            sink,
            prefix: format!("[output:{}:{}] ", crate::PLUGIN_NAME, instance).into(),
        }
    }

    pub fn enabled(&self, level: Level) -> bool {
        self.sink.enabled(level)
    }

    pub fn log(&self, level: Level, args: fmt::Arguments<'_>) {
        if self.sink.enabled(level) {
            let mut line = String::with_capacity(self.prefix.len() + 64);
            line.push_str(&self.prefix);
            let _ = fmt::write(&mut line, args);
            self.sink.write(level, &line);
        }
    }

    pub fn error(&self, args: fmt::Arguments<'_>) {
        self.log(Level::Error, args)
    }
    pub fn warn(&self, args: fmt::Arguments<'_>) {
        self.log(Level::Warn, args)
    }
    pub fn info(&self, args: fmt::Arguments<'_>) {
        self.log(Level::Info, args)
    }
    pub fn debug(&self, args: fmt::Arguments<'_>) {
        self.log(Level::Debug, args)
    }
}

/// A sink that prints to stderr at or below a level (for tools and tests).
pub struct StderrSink(pub Level);

impl LogSink for StderrSink {
    fn enabled(&self, level: Level) -> bool {
        level <= self.0
    }
    fn write(&self, _level: Level, line: &str) {
        eprintln!("{line}");
    }
}
