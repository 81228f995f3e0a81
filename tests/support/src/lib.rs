//! What lago's integration tests (lago-host/tests) and end-to-end tests
//! (tests/e2e) share: a runner of the `lago` binary ([`Lago`]), a temporary
//! project with its own HOME and lease store ([`Project`]), pseudo-terminals
//! ([`pty`]), `qemu-img` ([`qemu_img`]), file trees ([`fs`]) and the
//! assertions many tests make on a finished process ([`assert`]).
//!
//! It does not depend on lago-host (whose tests use it): binaries are run by
//! path. In lago-host's tests, [`lago_bin!`] gives the path of the `lago`
//! binary cargo built for them.

pub mod assert;
pub mod fs;
pub mod project;
pub mod pty;
pub mod qemu_img;
pub mod run;

pub use assert::{ok, refused, refused_init, stderr, stdout, text};
pub use project::Project;
pub use run::Lago;

use std::path::{Path, PathBuf};

/// The path of the `lago` binary cargo built for the calling package's
/// integration tests (`CARGO_BIN_EXE_lago`, set only for lago-host's
/// tests): expanded in the caller.
#[macro_export]
macro_rules! lago_bin {
    () => {
        ::std::path::Path::new(env!("CARGO_BIN_EXE_lago"))
    };
}

/// The workspace's root folder.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where cargo put the workspace's binaries (`CARGO_TARGET_DIR` or the
/// workspace's `target`, debug profile).
pub fn target_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("CARGO_TARGET_DIR") {
        return PathBuf::from(dir).join("debug");
    }
    workspace_root().join("target/debug")
}

/// A free TCP port on 127.0.0.1 (free when asked; tests use it at once).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}
