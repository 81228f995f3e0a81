//! Networks of an environment: the host-wide subnet lease store and the
//! planner that turns a checked init file into addresses, MACs and names.

mod build_steps;
pub mod lease;
pub mod plan;

pub use lease::{Lease, LeaseError, LeaseStore};
pub use plan::{lease_requests, mac_from_ip, plan, Defaults, PathVars, Plan};

#[cfg(test)]
mod tests;
