//! The one error type of the SDK, with kinds a caller can match.

use std::collections::BTreeMap;

use crate::environment::VmState;
use crate::error::{Error, ErrorClass};
use crate::ssh::SshError;

/// What went wrong in an SDK call. Every variant carries the same one-line
/// message the `lago` CLI prints for it; [`SdkError::kind`] names the kind
/// (the Python package raises one exception class per kind).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdkError {
    /// No such VM, network, prefix or workdir (e.g. `get_vm("nope")`).
    #[error("{0}")]
    NotFound(String),
    /// Bad input or bad state the caller can fix: a malformed init file, a
    /// missing local file, a prefix that is not initialized.
    #[error("{0}")]
    BadInput(String),
    /// The VM is not running (its provider's state is in `state`), so it
    /// cannot be reached over SSH.
    #[error("{message}")]
    NotRunning {
        vm: String,
        state: String,
        message: String,
    },
    /// SSH to a running VM failed (connect, authentication, host key,
    /// transfer).
    #[error("{0}")]
    Ssh(String),
    /// A vm-provider, vm-type or vm-service plugin refused or failed.
    #[error("{0}")]
    Provider(String),
    /// Artifact paths missing in running VMs, collected without
    /// `ignore_nopath` (every other path was collected): `missing` by VM.
    /// The message speaks to an SDK caller; the CLI's (naming `--no-skip`)
    /// is made at the binary edge.
    #[error("{message}")]
    MissingPaths {
        missing: BTreeMap<String, Vec<String>>,
        message: String,
    },
    /// A failure of lago or the system (I/O, a plugin panic).
    #[error("{0}")]
    Internal(String),
}

impl SdkError {
    /// The kind's name: `not_found`, `bad_input`, `not_running`, `ssh`,
    /// `provider` or `internal`.
    pub fn kind(&self) -> &'static str {
        match self {
            SdkError::NotFound(_) => "not_found",
            SdkError::BadInput(_) => "bad_input",
            SdkError::NotRunning { .. } => "not_running",
            SdkError::Ssh(_) => "ssh",
            SdkError::Provider(_) => "provider",
            SdkError::MissingPaths { .. } => "missing_paths",
            SdkError::Internal(_) => "internal",
        }
    }

    /// The one-line message (as the CLI prints it after `lago: error: `).
    pub fn message(&self) -> &str {
        match self {
            SdkError::NotFound(m)
            | SdkError::BadInput(m)
            | SdkError::Ssh(m)
            | SdkError::Provider(m)
            | SdkError::Internal(m) => m,
            SdkError::NotRunning { message, .. } | SdkError::MissingPaths { message, .. } => {
                message
            }
        }
    }

    /// [`SdkError::NotRunning`] for the VM `vm` in the provider's `state`,
    /// in an SDK caller's words (the CLI's are made at the binary edge).
    pub(crate) fn not_running(vm: &str, state: &VmState) -> SdkError {
        let message = if *state == VmState::Paused {
            format!("VM `{vm}` is paused; resume it first")
        } else {
            format!("VM `{vm}` is not running, but `{state}`; start it with env.start()")
        };
        SdkError::NotRunning {
            vm: vm.to_string(),
            state: state.to_string(),
            message,
        }
    }

    /// [`SdkError::MissingPaths`] for `missing` (by VM).
    pub(crate) fn missing_paths(missing: BTreeMap<String, Vec<String>>) -> SdkError {
        let by_vm: Vec<String> = missing
            .iter()
            .map(|(vm, paths)| format!("VM {vm}: {}", paths.join(", ")))
            .collect();
        SdkError::MissingPaths {
            message: format!(
                "artifact paths missing (ignore_nopath=True skips them): {}",
                by_vm.join("; ")
            ),
            missing,
        }
    }

    /// A VM's SSH failure: `VM `name`: what failed`.
    pub(crate) fn ssh(vm: &str, e: &SshError) -> SdkError {
        SdkError::Ssh(format!("VM `{vm}`: {}", e.chain_string()))
    }

    /// A provider call's error, keeping its class (a user-class failure is a
    /// [`SdkError::Provider`], an internal one [`SdkError::Internal`]).
    pub(crate) fn provider(e: Error) -> SdkError {
        match e.class() {
            ErrorClass::User => SdkError::Provider(e.message().to_string()),
            ErrorClass::Internal => SdkError::Internal(e.message().to_string()),
        }
    }
}

/// The library's errors: user-class ones are bad input, the rest internal.
impl From<Error> for SdkError {
    fn from(e: Error) -> Self {
        match e.class() {
            ErrorClass::User => SdkError::BadInput(e.message().to_string()),
            ErrorClass::Internal => SdkError::Internal(e.message().to_string()),
        }
    }
}

/// A missing workdir, prefix or prefix folder (or a folder that is no
/// workdir) is [`SdkError::NotFound`].
impl From<crate::prefix::PrefixError> for SdkError {
    fn from(e: crate::prefix::PrefixError) -> Self {
        use crate::prefix::PrefixError as P;
        match e {
            P::NoWorkdir { .. }
            | P::NotAWorkdir { .. }
            | P::NoPrefix { .. }
            | P::NoCurrent { .. }
            | P::Missing { .. } => SdkError::NotFound(e.to_string()),
            e => Error::from(e).into(),
        }
    }
}

impl From<std::io::Error> for SdkError {
    fn from(e: std::io::Error) -> Self {
        Error::from(e).into()
    }
}

impl From<serde_json::Error> for SdkError {
    fn from(e: serde_json::Error) -> Self {
        Error::from(e).into()
    }
}

/// At the binary edge: [`SdkError::Internal`] exits 1, every other kind is
/// the user's to fix and exits 2 (as the CLI did before the SDK). Missing
/// artifact paths are worded for the CLI (`--no-skip`).
impl From<SdkError> for Error {
    fn from(e: SdkError) -> Self {
        match e {
            SdkError::Internal(m) => Error::internal(m),
            SdkError::MissingPaths { missing, .. } => Error::user(
                missing
                    .into_iter()
                    .map(|(vm, paths)| {
                        crate::workflows::collect::CollectError::Missing { vm, paths }.to_string()
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            SdkError::NotRunning { vm, state, .. } => {
                Error::user(VmState::from_provider(&state).not_running_message(&vm))
            }
            other => Error::user(other.message().to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_keep_the_cli_class_and_message() {
        let e: SdkError = Error::user("no VM named `x`").into();
        assert_eq!(e.kind(), "bad_input");
        let back: Error = e.into();
        assert_eq!((back.exit_code(), back.message()), (2, "no VM named `x`"));
        let back: Error = SdkError::provider(Error::internal("libvirt down")).into();
        assert_eq!(back.exit_code(), 1);
        let e = SdkError::NotRunning {
            vm: "vm0".into(),
            state: "shut off".into(),
            message: "VM `vm0` is not running".into(),
        };
        assert_eq!(
            (e.kind(), e.to_string().as_str()),
            ("not_running", "VM `vm0` is not running")
        );
    }
}
