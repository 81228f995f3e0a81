//! lago's `tracing` records into Python's `logging` (logger `lago`), so
//! that `logfile`/`loglevel` and handlers behave as with Lago.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// Python's level numbers (`logging.DEBUG` is 10, ...; TRACE below DEBUG).
fn python_level(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 40,
        Level::WARN => 30,
        Level::INFO => 20,
        Level::DEBUG => 10,
        Level::TRACE => 5,
    }
}

/// The event's message and its other fields (`key=value`).
#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // The `log` crate's location fields: the record carries them.
        if field.name().starts_with("log.") {
            return;
        }
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        if field.name() == "message" {
            self.0.push_str(&format!("{value:?}"));
        } else {
            self.0.push_str(&format!("{}={value:?}", field.name()));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            if !self.0.is_empty() {
                self.0.push(' ');
            }
            self.0.push_str(value);
        } else {
            self.record_debug(field, &value);
        }
    }
}

/// The Python logger of lago's own records.
const LOGGER: &str = "lago";
/// The Python logger of the libraries' records (russh's transport, ...):
/// WARNING and above only, unless its level is set (e.g.
/// `logging.getLogger("lago.deps").setLevel(logging.DEBUG)`).
const DEPS_LOGGER: &str = "lago.deps";

/// A source path as a record shows it: a crate's own path from cargo's
/// registry (`russh-0.65.1/src/client/mod.rs`), else as compiled.
fn short_path(file: &str) -> &str {
    match file.find("/registry/src/") {
        Some(i) => {
            let rest = &file[i + "/registry/src/".len()..];
            rest.split_once('/').map_or(rest, |(_, path)| path)
        }
        None => file,
    }
}

/// Sends one record to the Python logger `name`, unless it filters it out.
/// From a thread running Python code the record's caller is that code (as
/// for any Python record); from lago's own threads, the Rust source line.
fn send(
    py: Python<'_>,
    meta: &tracing::Metadata<'_>,
    event: &Event<'_>,
    name: &str,
    level: u8,
) -> PyResult<()> {
    let logger = py.import("logging")?.call_method1("getLogger", (name,))?;
    if name == DEPS_LOGGER && level < 30 && logger.getattr("level")?.extract::<u8>()? == 0 {
        return Ok(());
    }
    if !logger.call_method1("isEnabledFor", (level,))?.is_truthy()? {
        return Ok(());
    }
    let mut msg = Message::default();
    event.record(&mut msg);
    let in_python = match py.import("sys")?.getattr("_getframe")?.call0() {
        Ok(_) => true,
        Err(e) if e.is_instance_of::<PyException>(py) => false,
        Err(interrupt) => return Err(interrupt),
    };
    if in_python {
        logger.call_method1("log", (level, msg.0))?;
        return Ok(());
    }
    let record = logger.call_method1(
        "makeRecord",
        (
            name,
            level,
            short_path(meta.file().unwrap_or("<rust>")),
            meta.line().unwrap_or(0),
            msg.0,
            (),
            py.None(),
            meta.module_path().unwrap_or(meta.target()),
        ),
    )?;
    logger.call_method1("handle", (record,))?;
    Ok(())
}

thread_local! {
    /// An exception that is no `Exception` (`KeyboardInterrupt` from a
    /// SIGINT, `SystemExit`) raised while this thread logged: Python runs
    /// signal handlers in the main thread whenever it runs Python code, so
    /// also inside a record emitted during a long SDK call. It belongs to
    /// that call, which raises it when it returns ([`take_pending`]).
    static PENDING: RefCell<Option<PyErr>> = const { RefCell::new(None) };
}

/// Keeps the first pending exception of this thread.
fn keep_pending(e: PyErr) {
    PENDING.with(|p| {
        p.borrow_mut().get_or_insert(e);
    });
}

/// The exception a signal handler raised while this thread logged during
/// an SDK call (taken: raised once).
pub fn take_pending() -> Option<PyErr> {
    PENDING.with(|p| p.borrow_mut().take())
}

/// Set at interpreter exit (`lago._native._at_exit`, an `atexit` hook):
/// from then on records are dropped, never sent into a Python that is
/// finalizing (a record from a native thread then fails in `import`).
static SHUTTING_DOWN: AtomicBool = AtomicBool::new(false);

/// Stops sending records to Python (at interpreter exit).
pub fn stop() {
    SHUTTING_DOWN.store(true, Ordering::SeqCst);
}

struct PythonLogging;

impl<S: Subscriber> Layer<S> for PythonLogging {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if SHUTTING_DOWN.load(Ordering::SeqCst) {
            return;
        }
        // A `log` crate record (russh's) names its real origin here.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let level = python_level(meta.level());
        let name = if meta.target().starts_with("lago") {
            LOGGER
        } else {
            DEPS_LOGGER
        };
        // Any thread may log (VM workers, the SSH runtime): take the GIL for
        // the record; the callers release it during their work.
        Python::with_gil(|py| {
            match send(py, meta, event, name, level) {
                Ok(()) => {}
                // A signal handler ran inside the record (Ctrl-C while the
                // main thread logs): keep its exception for the SDK call.
                Err(e) if !e.is_instance_of::<PyException>(py) => keep_pending(e),
                // A failing handler must not fail the call that logged.
                Err(e) => e.print(py),
            }
        });
    }
}

/// Sends every record to Python from now on (once per process).
pub fn install() {
    let _ = tracing_subscriber::registry()
        .with(PythonLogging)
        .try_init();
}
