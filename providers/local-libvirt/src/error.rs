//! The provider's error type.
//!
//! Every variant says what was being done and wraps its source without
//! repeating it. [`ProviderError::kind`] tells the plugin glue whether the
//! user can fix the failure (exit code 2) or it is an internal one.
//! `is_code` tells libvirt's own errors apart by their code.

use std::path::PathBuf;

use virt::enumutil::Enum;
use virt::error::ErrorNumber;

/// Whether the user can fix a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bad input or state the user can fix.
    User,
    /// A failure of libvirt, a tool or the system.
    Internal,
    /// Not implemented by this provider (yet).
    NotImplemented,
    /// The named VM or network is not in the environment.
    NotFound,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The planned spec cannot be turned into libvirt objects (a missing
    /// field, an unknown net, a bad `cpu_custom`).
    #[error("{0}")]
    Spec(String),
    /// A bad option value (`domain_type`, `seed_bus`, ...).
    #[error("{0}")]
    Config(String),
    /// No VM or network of that name in the environment.
    #[error("{0}")]
    NotFound(String),
    /// A libvirt call failed; `what` names the action and the object.
    #[error("{what}: {}", .source.message())]
    Libvirt {
        what: String,
        #[source]
        source: virt::error::Error,
    },
    /// A libvirt call failed for a reason of the host's set-up that the
    /// user can fix (see [`crate::diagnose`]); `hint` says how.
    #[error("{what}: {}; {hint}", .source.message())]
    Setup {
        what: String,
        hint: String,
        #[source]
        source: virt::error::Error,
    },
    #[error("{what}: {}: {source}", .path.display())]
    Io {
        what: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An external command could not run or exited with an error.
    #[error("{what}: `{argv}` {status}{}", stderr_suffix(.stderr))]
    Command {
        what: String,
        argv: String,
        status: String,
        stderr: String,
    },
    /// A tool the provider needs is not installed.
    #[error("{0}")]
    MissingTool(String),
    #[error("{0}")]
    Timeout(String),
    #[error("{0}: not implemented yet by the local-libvirt provider")]
    NotImplemented(String),
    /// A warm image that could not be restored (its file is damaged, or
    /// QEMU refused what it holds); the next warm start makes it again.
    /// Shown on one line (QEMU's messages span several).
    #[error("{}", one_line(&.0.to_string()))]
    DamagedImage(#[source] Box<ProviderError>),
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn stderr_suffix(stderr: &str) -> String {
    let s = stderr.trim();
    if s.is_empty() {
        String::new()
    } else {
        format!(": {s}")
    }
}

impl ProviderError {
    pub fn kind(&self) -> Kind {
        match self {
            ProviderError::Spec(_)
            | ProviderError::Config(_)
            | ProviderError::MissingTool(_)
            | ProviderError::Setup { .. } => Kind::User,
            ProviderError::NotFound(_) => Kind::NotFound,
            ProviderError::NotImplemented(_) => Kind::NotImplemented,
            ProviderError::Libvirt { .. }
            | ProviderError::Io { .. }
            | ProviderError::Command { .. }
            | ProviderError::Timeout(_) => Kind::Internal,
            ProviderError::DamagedImage(inner) => inner.kind(),
        }
    }

    /// `e` as the failure of a warm image ([`ProviderError::DamagedImage`]).
    pub(crate) fn damaged_image(e: ProviderError) -> Self {
        ProviderError::DamagedImage(Box::new(e))
    }

    /// Whether this failure shows the warm image itself is bad.
    pub(crate) fn is_damaged_image(&self) -> bool {
        matches!(self, ProviderError::DamagedImage(_))
    }

    pub(crate) fn libvirt(what: impl Into<String>, source: virt::error::Error) -> Self {
        ProviderError::Libvirt {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn io(
        what: impl Into<String>,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        ProviderError::Io {
            what: what.into(),
            path: path.into(),
            source,
        }
    }
}

/// Whether libvirt's error `e` has the code `code` (e.g. no such domain).
pub(crate) fn is_code(e: &virt::error::Error, code: ErrorNumber) -> bool {
    e.code() == Enum::Known(code)
}

pub type Result<T, E = ProviderError> = std::result::Result<T, E>;
