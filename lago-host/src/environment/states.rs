//! The states of an environment's VMs and networks, as their providers
//! report them.

use std::collections::BTreeMap;

use lago_plugin_api::spec::EnvSpec;

pub use crate::plugins::states::{NetState, VmState};

/// The states of an environment's VMs and networks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct States {
    /// VM name → its state.
    pub vms: BTreeMap<String, VmState>,
    /// Net name → its state.
    pub nets: BTreeMap<String, NetState>,
}

/// The states known without a provider: everything `down`.
pub fn stored_states(env: &EnvSpec) -> States {
    States {
        vms: env
            .domains
            .keys()
            .map(|k| (k.clone(), VmState::Down))
            .collect(),
        nets: env
            .nets
            .keys()
            .map(|k| (k.clone(), NetState::Down))
            .collect(),
    }
}
