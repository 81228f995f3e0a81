//! Calls on a prefix that need no open [`super::Env`]: a prefix whose init
//! failed or whose providers are gone can still be destroyed or cleaned
//! up, and its inventory needs only the stored environment.

use super::SdkError;
use crate::config::Config;
use crate::ops::leases::lease_store;
use crate::ops::{self, DestroyTarget, OnFailure, WithProviders};
use crate::plugins::Registry;
use crate::prefix::Prefix;
use crate::workflows::ansible;

/// Lago's `destroy` (`lago destroy [--all-prefixes] [--force]`): tear down
/// each prefix's VMs and networks through their providers, release its
/// subnets, remove its folder (and the workdir when nothing else is left in
/// it). Only what lago made is destroyed. When a provider is needed and
/// fails, nothing is removed ([`SdkError::BadInput`] naming `--force`)
/// unless `force`: then the failure is a warning naming what may remain.
/// `registry` is called at most once, when a provider is needed. Returns
/// whether only a symlinked workdir's link was removed.
pub fn destroy<'r>(
    target: &DestroyTarget,
    config: &Config,
    force: bool,
    registry: impl FnOnce() -> Result<&'r Registry, SdkError>,
) -> Result<bool, SdkError> {
    let mut teardown = WithProviders::new(
        config,
        if force {
            OnFailure::Force
        } else {
            OnFailure::NameForce("pass --force")
        },
        || Ok(registry()?),
    );
    Ok(ops::destroy(target, config, &mut teardown)?)
}

/// Lago's `cleanup` of a prefix (initialized or not): remove its VMs and
/// networks through their providers, release its subnets and its
/// `initialized` marker; its files stay. `registry` is called at most once,
/// when a provider is needed; a provider that fails stops the cleanup
/// before anything is released.
pub fn cleanup<'r>(
    prefix: &Prefix,
    config: &Config,
    registry: impl FnOnce() -> Result<&'r Registry, SdkError>,
) -> Result<(), SdkError> {
    let store = lease_store(config)?;
    let mut teardown = WithProviders::new(config, OnFailure::Fail, || Ok(registry()?));
    Ok(ops::cleanup_prefix(prefix, &store, &mut teardown)?)
}

/// Lago's `ansible_inventory(keys)` from the stored environment of an
/// initialized `prefix`, no provider asked (`keys` empty: `vm-type`,
/// `groups`, `vm-provider`, and `host` with `hosts:`). See
/// [`super::Env::ansible_inventory`].
pub fn ansible_inventory(prefix: &Prefix, keys: &[String]) -> Result<ansible::Inventory, SdkError> {
    prefix.require_initialized()?;
    let env = prefix.load_env()?;
    Ok(ansible::inventory(&env, keys)?)
}
