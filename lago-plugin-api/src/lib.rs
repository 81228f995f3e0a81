//! The stable plugin interface of lago.
//!
//! Plugin authors depend on this crate only. Data that crosses the library
//! boundary is either an `abi_stable` type or a JSON document of the types in
//! [`spec`].

mod error;
pub mod spec;

pub use error::{ErrorKind, PluginError};
