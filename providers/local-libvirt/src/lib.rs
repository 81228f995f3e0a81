//! TODO
pub mod disks;
pub mod domain;
pub mod error;
pub mod net;
pub mod options;
pub mod plugin;
pub mod seed;
pub mod session;
pub mod tools;
pub mod xml;
