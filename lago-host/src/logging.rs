//! Logging: `tracing` records go to the task tree on stderr ([`crate::progress`],
//! at the `loglevel`, Lago's default `info`), and everything at debug level,
//! with timestamps, into `<prefix>/logs/lago.log`. Records from before a
//! prefix is known (init plans the environment before its prefix exists)
//! are kept in memory and written when the prefix log is attached. Plugin
//! libraries' records arrive through the `Host::log` callback and end here
//! too.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Mutex;

use lago_plugin_api::LogLevel;
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use crate::error::Error;
use crate::progress::{self, ViewSettings};

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

/// Where file records go: the prefix log once attached, else a bounded
/// buffer written into it on attach.
enum Sink {
    Buffer(Vec<u8>),
    File(File),
}

/// Records kept before a prefix log exists, at most (the oldest are kept:
/// they are the start of the story).
const BUFFER_LIMIT: usize = 8 << 20;

static SINK: Mutex<Sink> = Mutex::new(Sink::Buffer(Vec::new()));

/// Every record goes to the prefix log at debug level and above.
const FILE_LEVEL: LogLevel = LogLevel::Debug;

/// The most verbose level anything records (what plugins ask): the prefix
/// log takes debug records, the stderr view may take trace.
pub fn max_level() -> LogLevel {
    progress::settings().level.max(FILE_LEVEL)
}

fn enabled(level: &tracing::Level, limit: LogLevel) -> bool {
    LogLevel::from_tracing(level) <= limit
}

struct PrefixLog;

struct PrefixLogWriter;

impl Write for PrefixLogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut sink = SINK.lock().unwrap_or_else(|p| p.into_inner());
        match &mut *sink {
            Sink::File(f) => f.write(buf),
            Sink::Buffer(b) => {
                if b.len() + buf.len() <= BUFFER_LIMIT {
                    b.extend_from_slice(buf);
                }
                Ok(buf.len())
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        let mut sink = SINK.lock().unwrap_or_else(|p| p.into_inner());
        match &mut *sink {
            Sink::File(f) => f.flush(),
            Sink::Buffer(_) => Ok(()),
        }
    }
}

impl<'a> MakeWriter<'a> for PrefixLog {
    type Writer = PrefixLogWriter;
    fn make_writer(&'a self) -> Self::Writer {
        PrefixLogWriter
    }
}

/// The stderr side: each record's message (and its other fields as
/// `name=value`) handed to the task tree.
struct TaskTreeLayer;

#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else if field.name() != "plugin" {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else if field.name() != "plugin" {
            self.0.push_str(&format!(" {}={value}", field.name()));
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for TaskTreeLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        // Task headers and stages are drawn by `progress` itself.
        if meta.target().starts_with("lago::task") || meta.target().starts_with("lago::stage") {
            return;
        }
        let level = LogLevel::from_tracing(meta.level());
        if level > progress::settings().level {
            return;
        }
        let mut msg = Message::default();
        event.record(&mut msg);
        progress::record(level, msg.0.trim_start());
    }
}

/// Install the process's subscriber and the stderr view. Call once, first
/// thing; [`progress::configure`] may change the view later.
pub fn init(view: ViewSettings) {
    progress::configure(view);
    let file = tracing_subscriber::fmt::layer()
        .with_writer(PrefixLog)
        .with_ansi(false)
        .with_filter(filter_fn(|m| enabled(m.level(), FILE_LEVEL)));
    let _ = tracing_subscriber::registry()
        .with(TaskTreeLayer)
        .with(file)
        .with(LevelFilter::TRACE)
        .try_init();
}

/// From now on write every record (debug and above) to `path`, appending,
/// after the records kept so far.
pub fn attach_prefix_log(prefix: &Path) -> Result<(), Error> {
    use std::os::unix::fs::OpenOptionsExt;
    // Only a prefix lago made gets a log: a read-only verb pointed at some
    // other folder must not write into it.
    if !crate::files::owned::is_lago_prefix(prefix) {
        return Err(std::io::Error::other("not a lago prefix").into());
    }
    let dir = prefix.join("logs");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("lago.log");
    // Never through a link planted at its name; the log may hold what
    // plugins and guests said: the owner's only.
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("the prefix log is not a regular file").into());
    }
    let mut f = f;
    let mut sink = SINK.lock().unwrap_or_else(|p| p.into_inner());
    if let Sink::Buffer(kept) = &*sink {
        f.write_all(kept)?;
    }
    *sink = Sink::File(f);
    Ok(())
}
