//! Logging through the host (Fluent Bit's `log_print`), with the core plugins' prefix
//! `[output:firehose_fanout:NAME]` and the instance's log level.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    limits: Arc<Mutex<HashMap<&'static str, Limit>>>,
}

/// One kind of repeated message: when it was last written, how many were held back since.
struct Limit {
    last: Instant,
    suppressed: u64,
}

/// A repeated message is written at most once per this interval, with a count of the rest.
pub const REPEAT_INTERVAL: Duration = Duration::from_secs(10);

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
            limits: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Logs a message that may repeat many times a second (every flush of an outage):
    /// at most one line per `kind` per `REPEAT_INTERVAL`, saying how many were held back.
    pub fn limited(&self, kind: &'static str, level: Level, args: fmt::Arguments<'_>) {
        if !self.sink.enabled(level) {
            return;
        }
        let now = Instant::now();
        let held_back = {
            let mut limits = self.limits.lock().unwrap_or_else(|p| p.into_inner());
            match limits.get_mut(kind) {
                Some(l) if now.duration_since(l.last) < REPEAT_INTERVAL => {
                    l.suppressed += 1;
                    return;
                }
                Some(l) => {
                    let n = l.suppressed;
                    *l = Limit {
                        last: now,
                        suppressed: 0,
                    };
                    n
                }
                None => {
                    limits.insert(
                        kind,
                        Limit {
                            last: now,
                            suppressed: 0,
                        },
                    );
                    0
                }
            }
        };
        if held_back > 0 {
            self.log(
                level,
                format_args!("{args} ({held_back} more like this in the last {REPEAT_INTERVAL:?})"),
            );
        } else {
            self.log(level, args);
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

#[cfg(test)]
mod tests {
    use super::*;

    struct Collect(Mutex<Vec<String>>);
    impl LogSink for Collect {
        fn enabled(&self, level: Level) -> bool {
            level <= Level::Info
        }
        fn write(&self, _level: Level, line: &str) {
            self.0.lock().unwrap().push(line.to_string());
        }
    }

    #[test]
    fn repeated_messages_are_held_back_with_a_count() {
        let sink = Arc::new(Collect(Mutex::new(Vec::new())));
        let log = Logger::new(sink.clone(), "firehose_fanout.3");
        for i in 0..5 {
            log.limited("retry", Level::Warn, format_args!("flush {i} must retry"));
        }
        log.limited("other", Level::Warn, format_args!("another kind"));
        log.limited("quiet", Level::Debug, format_args!("below the level"));
        let lines = sink.0.lock().unwrap().clone();
        assert_eq!(
            lines,
            vec![
                "[output:firehose_fanout:firehose_fanout.3] flush 0 must retry",
                "[output:firehose_fanout:firehose_fanout.3] another kind",
            ]
        );
        // after the interval the next one says how many were held back
        log.limits.lock().unwrap().get_mut("retry").unwrap().last -= REPEAT_INTERVAL;
        log.limited("retry", Level::Warn, format_args!("flush 5 must retry"));
        assert!(sink.0.lock().unwrap()[2]
            .ends_with("flush 5 must retry (4 more like this in the last 10s)"));
    }
}
