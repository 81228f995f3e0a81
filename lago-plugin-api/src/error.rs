//! The error value every plugin call may return.

use std::fmt;

use abi_stable::{std_types::RString, StableAbi};

/// What kind of failure a [`PluginError`] reports; the host maps it to an
/// exit code (user errors exit 2, internal ones 1).
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Bad input or state the user can fix (unknown VM, bad argument).
    User,
    /// A failure inside the plugin or the system it drives.
    Internal,
    /// The plugin does not implement this (yet).
    NotImplemented,
    /// The plugin panicked; the adapter caught it.
    Panic,
    /// A vm-type plugin does not override this method: the host uses the
    /// built-in `default` vm-type for it.
    Delegate,
    /// The named object (VM, network, snapshot, verb) does not exist.
    NotFound,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::User => "user",
            ErrorKind::Internal => "internal",
            ErrorKind::NotImplemented => "not-implemented",
            ErrorKind::Panic => "panic",
            ErrorKind::Delegate => "delegate",
            ErrorKind::NotFound => "not-found",
        }
    }
}

/// An error crossing the plugin boundary: a kind and one message.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    pub kind: ErrorKind,
    pub message: RString,
}

impl PluginError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        PluginError {
            kind,
            message: RString::from(message.into()),
        }
    }
    /// Bad input or state the user can fix.
    pub fn user(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::User, message)
    }
    /// A failure inside the plugin or the system it drives.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
    /// `what` is not implemented (yet): the message says so.
    pub fn not_implemented(what: impl fmt::Display) -> Self {
        Self::new(
            ErrorKind::NotImplemented,
            format!("{what}: not implemented yet"),
        )
    }
    /// The object does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    /// "Not overridden here: use the default vm-type."
    pub fn delegate() -> Self {
        Self::new(ErrorKind::Delegate, "delegated to the default vm-type")
    }
    pub fn is_delegate(&self) -> bool {
        self.kind == ErrorKind::Delegate
    }
    pub fn message(&self) -> &str {
        self.message.as_str()
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PluginError {}
