//! The one error type at the binary edge, with its exit code.
//!
//! Library modules keep their own `thiserror` enums and convert into
//! [`Error`] with a `From` impl written next to them, choosing the class:
//!
//! ```ignore
//! impl From<InitFileError> for crate::error::Error {
//!     fn from(e: InitFileError) -> Self {
//!         crate::error::Error::user_from(&e)      // bad input: exit 2
//!     }
//! }
//! ```
//!
//! * [`ErrorClass::User`]: bad input or bad state the user can fix (an unknown
//!   VM name, a missing prefix, a malformed init file, a verb not implemented
//!   yet). `lago` prints one clear line and exits with 2.
//! * [`ErrorClass::Internal`]: a failure of lago, a plugin or the system (I/O,
//!   libvirt, a plugin panic). `lago` prints the message and exits with 1.

use std::fmt;

use lago_plugin_api::{ErrorKind, PluginError};

/// Exit code of a user error.
pub const EXIT_USER: i32 = 2;
/// Exit code of an internal failure.
pub const EXIT_INTERNAL: i32 = 1;

/// Which side of the line an error falls on; decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Bad input or bad state: exit 2.
    User,
    /// A failure of lago, a plugin or the system: exit 1.
    Internal,
}

/// The binary-edge error: a class and one message (the source chain already
/// rendered into it, `outer: inner: innermost`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    class: ErrorClass,
    message: String,
}

impl Error {
    /// A user error (exit 2).
    pub fn user(message: impl Into<String>) -> Self {
        Error {
            class: ErrorClass::User,
            message: message.into(),
        }
    }

    /// An internal failure (exit 1).
    pub fn internal(message: impl Into<String>) -> Self {
        Error {
            class: ErrorClass::Internal,
            message: message.into(),
        }
    }

    /// A user error carrying `err` and its source chain as the message.
    pub fn user_from(err: &(dyn std::error::Error + 'static)) -> Self {
        Error::user(render_chain(err))
    }

    /// An internal failure carrying `err` and its source chain as the message.
    pub fn internal_from(err: &(dyn std::error::Error + 'static)) -> Self {
        Error::internal(render_chain(err))
    }

    /// The user error of a verb (or part of one) that is not written yet.
    pub fn not_implemented(what: &str) -> Self {
        Error::user(format!("{what}: not implemented yet"))
    }

    /// Prepend context: `context: message`, keeping the class.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    pub fn class(&self) -> ErrorClass {
        self.class
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The process exit code for this error: 2 for user errors, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self.class {
            ErrorClass::User => EXIT_USER,
            ErrorClass::Internal => EXIT_INTERNAL,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// `err: source: source-of-source`, skipping a source whose text the outer
/// message already contains (thiserror's `{0}` style repeats it).
pub fn render_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(src) = cur {
        let s = src.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = src.source();
    }
    out
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::internal_from(&e)
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::internal_from(&e)
    }
}

/// A plugin's error keeps its class: `User`, `NotImplemented`, `NotFound` and
/// a stray `Delegate` are user errors; `Internal` and `Panic` are internal.
impl From<PluginError> for Error {
    fn from(e: PluginError) -> Self {
        let message = e.message.to_string();
        match e.kind {
            ErrorKind::User | ErrorKind::NotImplemented | ErrorKind::NotFound => {
                Error::user(message)
            }
            ErrorKind::Delegate => Error::user(format!("no implementation: {message}")),
            ErrorKind::Internal | ErrorKind::Panic => Error::internal(message),
        }
    }
}

/// Shorthand for results at the binary edge.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer failed")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn classes_have_their_exit_codes() {
        assert_eq!(Error::user("x").exit_code(), 2);
        assert_eq!(Error::internal("x").exit_code(), 1);
        assert_eq!(Error::not_implemented("lago start").exit_code(), 2);
    }

    #[test]
    fn chain_is_rendered_once() {
        let e = Outer(std::io::Error::other("disk full"));
        assert_eq!(render_chain(&e), "outer failed: disk full");
        let e = Error::internal_from(&e).context("writing state");
        assert_eq!(e.message(), "writing state: outer failed: disk full");
    }

    #[test]
    fn plugin_errors_keep_their_class() {
        let e: Error = PluginError::new(ErrorKind::Panic, "p panicked: boom").into();
        assert_eq!(e.exit_code(), 1);
        let e: Error = PluginError::new(ErrorKind::NotImplemented, "nope").into();
        assert_eq!(e.exit_code(), 2);
    }
}
