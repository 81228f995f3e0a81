//! Starting something on a session channel: what to start ([`Start`]), the
//! terminal to request first ([`Pty`]), and the channel once the server
//! accepted the request ([`Started`]). The pool starts channels; commands,
//! SFTP and the interactive shell use them.

use russh::client;
use tokio::sync::OwnedSemaphorePermit;

/// What to start on a new session channel.
#[derive(Clone, Copy)]
pub(crate) enum Start<'a> {
    Exec(&'a str),
    Shell,
    Subsystem(&'a str),
}

/// A terminal to request before starting.
pub(crate) struct Pty {
    pub term: String,
    pub cols: u32,
    pub rows: u32,
}

/// A channel whose request the server accepted, with any messages that
/// arrived before the acceptance.
pub(crate) struct Started {
    pub channel: russh::Channel<client::Msg>,
    pub permit: OwnedSemaphorePermit,
    pub early: Vec<russh::ChannelMsg>,
}
