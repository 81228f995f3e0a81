//! The operations on a prefix that run in one direction, each one function
//! reading like its steps (cargo's `ops` shape): [`init::init`] and
//! [`destroy::destroy`] / [`destroy::cleanup_prefix`]. They sit above the
//! storage layer ([`crate::prefix`], which stores and loads and calls
//! nothing above it) and the providers ([`crate::environment`]), and call
//! both; the CLI verbs and the SDK call them.

pub mod destroy;
pub mod init;
pub mod leases;

pub use destroy::{
    cleanup_prefix, destroy, destroy_in_workdir, destroy_prefix, DestroyTarget, OnFailure, OpenEnv,
    Teardown, WithProviders,
};
pub use init::{init, InitPlugins, InitRequest, WithPlugins};
pub use leases::{adopt_leases, lease_store};
