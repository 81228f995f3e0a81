//! Networks' subnets: the host-wide lease store that gives each NAT network
//! of an environment its own /24 (the planner in [`crate::plan`] turns them
//! into addresses).

pub mod lease;

pub use lease::{Lease, LeaseError, LeaseStore};
