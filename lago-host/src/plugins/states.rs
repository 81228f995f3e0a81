//! The states providers report, typed: the host compares these, never the
//! providers' strings.

use std::fmt;

/// A VM's state as its provider reports it (the local-libvirt provider:
/// libvirt's domain states, `down` for a domain that is not defined).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmState {
    /// `running`.
    Running,
    /// `paused` (libvirt: suspended; `virsh resume`).
    Paused,
    /// `down`: not defined in the hypervisor.
    Down,
    /// `unknown`: the provider could not be asked.
    Unknown,
    /// Any other state the provider names (`shut off`, `crashed`, ...),
    /// kept as it said it.
    Other(String),
}

impl VmState {
    /// The state a provider named `s`.
    pub fn from_provider(s: &str) -> VmState {
        match s {
            "running" => VmState::Running,
            "paused" => VmState::Paused,
            "down" => VmState::Down,
            "unknown" => VmState::Unknown,
            other => VmState::Other(other.to_string()),
        }
    }

    /// The provider's word for it (what `lago status` shows).
    pub fn as_str(&self) -> &str {
        match self {
            VmState::Running => "running",
            VmState::Paused => "paused",
            VmState::Down => "down",
            VmState::Unknown => "unknown",
            VmState::Other(s) => s,
        }
    }

    pub fn is_running(&self) -> bool {
        *self == VmState::Running
    }

    /// The CLI's words for the VM `vm` in this state when a verb needs it
    /// running (the SDK has its own, see `SdkError::not_running`).
    pub fn not_running_message(&self, vm: &str) -> String {
        if *self == VmState::Paused {
            format!("VM `{vm}` is paused; resume it first (`virsh resume`)")
        } else {
            format!("VM `{vm}` is not running, but `{self}`; start it with `lago start {vm}`")
        }
    }

    /// Whether the hypervisor holds the VM (defined, whatever it does).
    pub fn is_defined(&self) -> bool {
        *self != VmState::Down
    }
}

impl fmt::Display for VmState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A network's state: `up` when the provider of any VM on it says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetState {
    Up,
    Down,
    /// The provider could not be asked.
    Unknown,
}

impl NetState {
    /// What `lago status` shows.
    pub fn as_str(&self) -> &'static str {
        match self {
            NetState::Up => "up",
            NetState::Down => "down",
            NetState::Unknown => "unknown",
        }
    }
}

impl fmt::Display for NetState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
