//! The lease store as the operations use it: the one the configuration
//! names ([`lease_store`]), and leases re-pointed when a prefix moved
//! ([`adopt_leases`]).

use crate::config::Config;
use crate::error::Error;
use crate::files::owned;
use crate::network::LeaseStore;
use crate::prefix::Prefix;

/// The lease store the configuration names.
pub fn lease_store(config: &Config) -> Result<LeaseStore, Error> {
    let timeout = config.lease_timeout().map_err(|e| Error::user_from(&e))?;
    Ok(LeaseStore::new(config.lease_dir(), timeout))
}

/// A prefix used from a new folder (its workdir was moved): its leases,
/// whose recorded folder no longer holds its uuid, are re-pointed to it so
/// they are not taken as stale and handed out again. Best effort (a warning):
/// no verb fails over it.
pub fn adopt_leases(prefix: &Prefix, config: &Config) {
    if !owned::is_lago_prefix(prefix.path()) {
        return;
    }
    let (Ok(uuid), Ok(store)) = (prefix.uuid(), lease_store(config)) else {
        return;
    };
    match store.repoint(prefix.path(), &uuid) {
        Ok(moved) if !moved.is_empty() => tracing::info!(
            "the prefix moved to {}: its leases ({}) now name it",
            prefix.path().display(),
            moved
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(
            "could not re-point the leases of {}: {e}",
            prefix.path().display()
        ),
    }
}
