//! Logging: `tracing` to stderr at the `--loglevel` (default `warning`, so a
//! terminal stays quiet), plus, once a prefix is in use, everything at debug
//! level into `<prefix>/logs/lago.log`. Plugin libraries' records arrive
//! through the `Host::log` callback and end here too.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;

use lago_plugin_api::LogLevel;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use crate::error::Error;

/// Lago's level names → a level (`warning` and `warn` both accepted).
pub fn parse_level(name: &str) -> Option<LogLevel> {
    match name.to_ascii_lowercase().as_str() {
        "error" => Some(LogLevel::Error),
        "warning" | "warn" => Some(LogLevel::Warn),
        "info" => Some(LogLevel::Info),
        "debug" => Some(LogLevel::Debug),
        "trace" => Some(LogLevel::Trace),
        _ => None,
    }
}

static STDERR_LEVEL: AtomicU8 = AtomicU8::new(LogLevel::Warn as u8);
static FILE: Mutex<Option<File>> = Mutex::new(None);
const FILE_LEVEL: LogLevel = LogLevel::Debug;

fn level_from_u8(v: u8) -> LogLevel {
    match v {
        0 => LogLevel::Error,
        1 => LogLevel::Warn,
        2 => LogLevel::Info,
        3 => LogLevel::Debug,
        _ => LogLevel::Trace,
    }
}

fn stderr_level() -> LogLevel {
    level_from_u8(STDERR_LEVEL.load(Ordering::Relaxed))
}

fn file_attached() -> bool {
    FILE.lock().map(|g| g.is_some()).unwrap_or(false)
}

/// The most verbose level anything records right now (what plugins ask).
pub fn max_level() -> LogLevel {
    if file_attached() {
        stderr_level().max(FILE_LEVEL)
    } else {
        stderr_level()
    }
}

fn enabled(level: &tracing::Level, limit: LogLevel) -> bool {
    LogLevel::from_tracing(level) <= limit
}

struct PrefixLog;

struct PrefixLogWriter;

impl Write for PrefixLogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match FILE.lock() {
            Ok(mut g) => match g.as_mut() {
                Some(f) => f.write(buf),
                None => Ok(buf.len()),
            },
            Err(_) => Ok(buf.len()),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match FILE.lock() {
            Ok(mut g) => g.as_mut().map_or(Ok(()), |f| f.flush()),
            Err(_) => Ok(()),
        }
    }
}

impl<'a> MakeWriter<'a> for PrefixLog {
    type Writer = PrefixLogWriter;
    fn make_writer(&'a self) -> Self::Writer {
        PrefixLogWriter
    }
}

/// Install the process's subscriber. Call once, first thing.
pub fn init(level: LogLevel) {
    STDERR_LEVEL.store(level as u8, Ordering::Relaxed);
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(io::stderr)
        .without_time()
        .with_target(false)
        .with_ansi(false)
        .with_filter(filter_fn(|m| enabled(m.level(), stderr_level())));
    let file = tracing_subscriber::fmt::layer()
        .with_writer(PrefixLog)
        .with_ansi(false)
        .with_filter(filter_fn(|m| {
            file_attached() && enabled(m.level(), FILE_LEVEL)
        }));
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .with(LevelFilter::TRACE)
        .try_init();
}

/// Also write every record (debug and above) to `path`, appending.
pub fn attach_prefix_log(path: &Path) -> Result<(), Error> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let f = OpenOptions::new().create(true).append(true).open(path)?;
    if let Ok(mut g) = FILE.lock() {
        *g = Some(f);
    }
    Ok(())
}
