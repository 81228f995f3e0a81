//! Calls on a prefix that need no open [`super::Env`]: a prefix whose init
//! failed or whose providers are gone can still be destroyed or cleaned
//! up, and its inventory needs only the stored environment.

use lago_plugin_api::spec::EnvSpec;

use super::SdkError;
use crate::config::Config;
use crate::environment::teardown_env;
use crate::error::{Error, ErrorClass};
use crate::plugins::Registry;
use crate::prefix::lifecycle::{cleanup_prefix, destroy_in_workdir, destroy_prefix, lease_store};
use crate::prefix::{Prefix, Workdir};
use crate::workflows::ansible;

/// What [`destroy`] removes.
#[derive(Debug, Clone)]
pub enum DestroyTarget {
    /// One prefix folder, outside any workdir (deprecated `-p`).
    Prefix(Prefix),
    /// Prefixes of a workdir: those named, or all of them (`None`).
    Workdir {
        workdir: Workdir,
        names: Option<Vec<String>>,
    },
}

/// The plugin registry, loaded the first time a provider is needed (a
/// prefix that was never started needs none).
struct LazyRegistry<'r, F> {
    load: Option<F>,
    loaded: Option<&'r Registry>,
}

impl<'r, F: FnOnce() -> Result<&'r Registry, SdkError>> LazyRegistry<'r, F> {
    fn new(load: F) -> Self {
        LazyRegistry {
            load: Some(load),
            loaded: None,
        }
    }

    fn get(&mut self) -> Result<&'r Registry, Error> {
        if let Some(reg) = self.loaded {
            return Ok(reg);
        }
        let load = self
            .load
            .take()
            .ok_or_else(|| Error::internal("the plugin registry failed to load before"))?;
        let reg = load()?;
        self.loaded = Some(reg);
        Ok(reg)
    }

    /// THE DESTROY/CLEANUP HOOK: remove the environment's domains and
    /// networks through the providers, BEFORE any file or lease goes.
    fn teardown(&mut self, env: Option<&EnvSpec>, config: &Config) -> Result<(), Error> {
        if env.is_none() {
            return Ok(());
        }
        teardown_env(env, config, self.get()?)
    }
}

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
    let store = lease_store(config)?;
    let mut lazy = LazyRegistry::new(registry);
    let mut hook =
        |p: &Prefix, env: Option<&EnvSpec>| forced(p, env, force, lazy.teardown(env, config));
    Ok(match target {
        DestroyTarget::Prefix(prefix) => {
            destroy_prefix(prefix, &store, &mut hook)?;
            false
        }
        DestroyTarget::Workdir { workdir, names } => {
            destroy_in_workdir(workdir, names.as_deref(), &store, &mut hook)?
        }
    })
}

/// Destroy's answer to a failed teardown: the error names `--force`; with
/// `force` it becomes a warning naming what may remain in the hypervisor.
fn forced(
    prefix: &Prefix,
    env: Option<&EnvSpec>,
    force: bool,
    teardown: Result<(), Error>,
) -> Result<(), Error> {
    let Err(e) = teardown else {
        return Ok(());
    };
    if force {
        let names = |m: Option<Vec<String>>| m.filter(|v| !v.is_empty()).map(|v| v.join(", "));
        let doms = names(env.map(|e| e.domains.values().map(|v| v.libvirt_name.clone()).collect()));
        let nets = names(env.map(|e| e.nets.values().map(|n| n.libvirt_name.clone()).collect()));
        // On other hosts (`hosts:`) there are also the storage pool and the
        // tunnels, and virsh needs the host's URL.
        let hosts = env
            .filter(|e| !e.hosts.is_empty())
            .map(|e| {
                let urls: Vec<String> = e
                    .hosts
                    .iter()
                    .map(|(n, h)| format!("{n}: virsh -c {}", h.libvirt_url))
                    .collect();
                format!(
                    "; on the other hosts ({}) also storage pool {}-images with its volumes \
                     and the tunnels vx{}-* with their iptables rules (lago:vx{}-*)",
                    urls.join(", "),
                    e.prefix.tag(),
                    e.prefix.tag(),
                    e.prefix.tag()
                )
            })
            .unwrap_or_default();
        tracing::warn!(
            "--force: removing {} although its VMs and networks could not all be removed ({e}); \
             these may remain in libvirt: domains [{}], networks [{}] (virsh destroy/undefine, \
             net-destroy/net-undefine){hosts}",
            prefix.path().display(),
            doms.unwrap_or_default(),
            nets.unwrap_or_default(),
        );
        return Ok(());
    }
    let msg = format!(
        "cannot remove the VMs and networks of the prefix {} through their provider: {}; \
         the prefix and its leases were kept. Fix that (is libvirtd running? is libvirt_url right?) and run \
         destroy again, or pass --force to remove the prefix and release its leases anyway \
         (its VMs and networks may then remain in libvirt)",
        prefix.path().display(),
        e.message()
    );
    Err(match e.class() {
        ErrorClass::User => Error::user(msg),
        ErrorClass::Internal => Error::internal(msg),
    })
}

/// Lago's `cleanup` of a prefix (initialized or not): remove its VMs and
/// networks through their providers, release its subnets and its
/// `initialized` marker; its files stay. `registry` is called at most once,
/// when a provider is needed.
pub fn cleanup<'r>(
    prefix: &Prefix,
    config: &Config,
    registry: impl FnOnce() -> Result<&'r Registry, SdkError>,
) -> Result<(), SdkError> {
    let store = lease_store(config)?;
    let mut lazy = LazyRegistry::new(registry);
    let mut hook = |_: &Prefix, env: Option<&EnvSpec>| lazy.teardown(env, config);
    cleanup_prefix(prefix, &store, &mut hook)?;
    Ok(())
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
