//! lago's `tracing` records into Python's `logging` (logger `lago`), so
//! that `logfile`/`loglevel` and handlers behave as with Lago.

use pyo3::prelude::*;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
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

struct PythonLogging;

impl<S: Subscriber> Layer<S> for PythonLogging {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let level = python_level(event.metadata().level());
        // Any thread may log (VM workers, the SSH runtime): take the GIL for
        // the record; the callers release it during their work.
        Python::with_gil(|py| {
            let logged = (|| -> PyResult<()> {
                let logger = py.import("logging")?.call_method1("getLogger", ("lago",))?;
                if logger.call_method1("isEnabledFor", (level,))?.is_truthy()? {
                    let mut msg = Message::default();
                    event.record(&mut msg);
                    logger.call_method1("log", (level, msg.0))?;
                }
                Ok(())
            })();
            // A failing handler must not fail the call that logged.
            if let Err(e) = logged {
                e.print(py);
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
