//! The SSH layer (against a real dropbear on loopback, see `ssh_support`)
//! and the SSH client files `init` writes: one test binary, a module per
//! concern.

#[macro_use]
#[path = "../ssh_support/mod.rs"]
mod ssh_support;

mod auth;
mod client_files;
mod exec;
mod interactive;
mod sftp;
mod wait;
