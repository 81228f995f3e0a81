//! `lago destroy` and `lago cleanup` as operations: remove a prefix's VMs
//! and networks through their providers ([`Teardown`]), release its
//! subnets, then (destroy) remove its folder, or (cleanup) its
//! `initialized` marker. Only what lago made is touched, each prefix under
//! its lock.
//!
//! Every caller (the CLI, the Rust and Python SDK, a failed multi-host
//! init) tears down through [`WithProviders`], which loads the plugins only
//! when a provider is needed (a prefix that was never started needs none)
//! and has one answer to a provider that fails: nothing is removed and the
//! error names `--force`; with `force`, a warning naming what may remain.

use lago_plugin_api::spec::EnvSpec;

use crate::config::Config;
use crate::environment::Env;
use crate::error::{Error, ErrorClass};
use crate::files::owned;
use crate::network::LeaseStore;
use crate::ops::leases::lease_store;
use crate::plugins::Registry;
use crate::prefix::lock::{Lock, LockMode};
use crate::prefix::{Prefix, PrefixError, Workdir, DEFAULT_PREFIX};

/// Removes a prefix's hypervisor objects (domains, then networks): called,
/// for a prefix that was started, BEFORE any file or lease of it goes, with
/// its stored environment, or `None` when that cannot be read (the VMs and
/// networks then cannot be named: [`WithProviders`] refuses unless forced;
/// [`OpenEnv`] tears down from the open environment's own spec).
pub trait Teardown {
    fn teardown(&mut self, prefix: &Prefix, env: Option<&EnvSpec>) -> Result<(), Error>;
}

impl<F: FnMut(&Prefix, Option<&EnvSpec>) -> Result<(), Error>> Teardown for F {
    fn teardown(&mut self, prefix: &Prefix, env: Option<&EnvSpec>) -> Result<(), Error> {
        self(prefix, env)
    }
}

/// What a teardown through the providers does when a provider fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// The provider's error, as it is (`cleanup`).
    Fail,
    /// An error that says the prefix was kept and how to force it
    /// (`destroy`): the words name the caller's way, e.g. `pass --force`.
    NameForce(&'static str),
    /// A warning naming what may remain; the prefix goes (`destroy
    /// --force`).
    Force,
}

/// The teardown through the environment's providers, with the plugin
/// registry loaded the first time one is needed.
pub struct WithProviders<'a, 'r, F> {
    config: &'a Config,
    on_failure: OnFailure,
    load: Option<F>,
    loaded: Option<&'r Registry>,
}

impl<'a, 'r, F: FnOnce() -> Result<&'r Registry, Error>> WithProviders<'a, 'r, F> {
    /// `load` is called at most once, when a provider is needed.
    pub fn new(config: &'a Config, on_failure: OnFailure, load: F) -> Self {
        WithProviders {
            config,
            on_failure,
            load: Some(load),
            loaded: None,
        }
    }

    fn registry(&mut self) -> Result<&'r Registry, Error> {
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

    fn remove(&mut self, env: &EnvSpec) -> Result<(), Error> {
        let registry = self.registry()?;
        Env::from_spec(env.clone(), self.config.clone(), registry)?.teardown()
    }
}

impl<'r, F: FnOnce() -> Result<&'r Registry, Error>> Teardown for WithProviders<'_, 'r, F> {
    fn teardown(&mut self, prefix: &Prefix, env: Option<&EnvSpec>) -> Result<(), Error> {
        let Some(env) = env else {
            return unreadable(prefix, self.on_failure);
        };
        let removed = self.remove(env);
        answer(prefix, env, self.on_failure, removed)
    }
}

/// The teardown through an environment already open (the SDK's `Env`): its
/// own provider sessions, opened with its configuration.
pub struct OpenEnv<'a, 'r> {
    pub env: &'a Env<'r>,
    pub on_failure: OnFailure,
}

impl Teardown for OpenEnv<'_, '_> {
    fn teardown(&mut self, prefix: &Prefix, env: Option<&EnvSpec>) -> Result<(), Error> {
        // The open environment's own spec when the stored one cannot be
        // read: its sessions were opened from it.
        let env = env.unwrap_or(&self.env.spec);
        answer(prefix, env, self.on_failure, self.env.teardown())
    }
}

/// The answer for a prefix that was started but whose stored environment
/// cannot be read: its VMs and networks cannot be named to the provider, so
/// they may still be in the hypervisor. Refused as a failed teardown is
/// (with `force`: a warning).
fn unreadable(prefix: &Prefix, on_failure: OnFailure) -> Result<(), Error> {
    let names = prefix
        .info()
        .map(|info| format!(" (libvirt names starting with `{}-`)", info.tag()))
        .unwrap_or_default();
    let what = format!(
        "the stored environment of the prefix {} cannot be read (see the log), so its VMs and \
         networks{names} cannot be removed through their provider",
        prefix.path().display()
    );
    match on_failure {
        OnFailure::Force => {
            tracing::warn!(
                "--force: removing the prefix although {what}: they may remain in libvirt"
            );
            Ok(())
        }
        OnFailure::NameForce(how) => Err(Error::user(format!(
            "{what}; the prefix and its leases were kept. Repair its virt/ files and run destroy \
             again, or {how} to remove the prefix and release its leases anyway"
        ))),
        OnFailure::Fail => Err(Error::user(format!("{what}; nothing was released"))),
    }
}

/// The answer to a failed teardown, as `on_failure` says: the error as it
/// is; an error saying the prefix was kept and how to force it; or (force)
/// a warning naming what may remain in the hypervisor.
fn answer(
    prefix: &Prefix,
    env: &EnvSpec,
    on_failure: OnFailure,
    teardown: Result<(), Error>,
) -> Result<(), Error> {
    let Err(e) = teardown else {
        return Ok(());
    };
    let how = match on_failure {
        OnFailure::Fail => return Err(e),
        OnFailure::NameForce(how) => how,
        OnFailure::Force => "",
    };
    if on_failure == OnFailure::Force {
        let names = |v: Vec<String>| v.join(", ");
        let doms = names(
            env.domains
                .values()
                .map(|v| v.libvirt_name.clone())
                .collect(),
        );
        let nets = names(env.nets.values().map(|n| n.libvirt_name.clone()).collect());
        // On other hosts (`hosts:`) there are also the storage pool and the
        // tunnels, and virsh needs the host's URL.
        let hosts = if env.hosts.is_empty() {
            String::new()
        } else {
            let urls: Vec<String> = env
                .hosts
                .iter()
                .map(|(n, h)| format!("{n}: virsh -c {}", h.libvirt_url))
                .collect();
            let tag = env.prefix.tag();
            format!(
                "; on the other hosts ({}) also storage pool {tag}-images with its volumes \
                 and the tunnels vx{tag}-* with their iptables rules (lago:vx{tag}-*)",
                urls.join(", "),
            )
        };
        tracing::warn!(
            "--force: removing {} although its VMs and networks could not all be removed ({e}); \
             these may remain in libvirt: domains [{doms}], networks [{nets}] (virsh destroy/undefine, \
             net-destroy/net-undefine){hosts}",
            prefix.path().display(),
        );
        return Ok(());
    }
    let msg = format!(
        "cannot remove the VMs and networks of the prefix {} through their provider: {}; \
         the prefix and its leases were kept. Fix that (is libvirtd running? is libvirt_url right?) and run \
         destroy again, or {how} to remove the prefix and release its leases anyway \
         (its VMs and networks may then remain in libvirt)",
        prefix.path().display(),
        e.message()
    );
    Err(match e.class() {
        ErrorClass::User => Error::user(msg),
        ErrorClass::Internal => Error::internal(msg),
    })
}

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

/// Lago's `destroy` of `target` with the lease store `config` names.
/// Returns whether only a symlinked workdir's link was removed.
pub fn destroy(
    target: &DestroyTarget,
    config: &Config,
    teardown: &mut dyn Teardown,
) -> Result<bool, Error> {
    let store = lease_store(config)?;
    match target {
        DestroyTarget::Prefix(prefix) => {
            destroy_prefix(prefix, &store, teardown)?;
            Ok(false)
        }
        DestroyTarget::Workdir { workdir, names } => {
            destroy_in_workdir(workdir, names.as_deref(), &store, teardown)
        }
    }
}

/// The part of cleanup and destroy that goes before the files: the
/// teardown (skipped for a prefix that was never started, so no provider
/// is needed for it), then the prefix's leases.
fn teardown_and_release(
    prefix: &Prefix,
    store: &LeaseStore,
    teardown: &mut dyn Teardown,
) -> Result<(), Error> {
    if prefix.never_started() {
        tracing::debug!(
            "{} was never started: nothing to remove from a hypervisor",
            prefix.path().display()
        );
    } else {
        // A started prefix: the teardown needs its stored environment (a
        // teardown refuses one it cannot read, unless forced).
        let env = prefix
            .load_env()
            .map_err(|e| {
                tracing::warn!(
                    "cannot read the stored environment of {}: {e}",
                    prefix.path().display()
                )
            })
            .ok();
        teardown.teardown(prefix, env.as_ref())?;
    }
    if let Ok(uuid) = prefix.uuid() {
        store.release_prefix(prefix.path(), &uuid)?;
    }
    Ok(())
}

/// `lago cleanup`: teardown, release the leases, remove the `initialized`
/// marker. The files stay (destroy removes them). Only a prefix lago made,
/// under its lock.
pub fn cleanup_prefix(
    prefix: &Prefix,
    store: &LeaseStore,
    teardown: &mut dyn Teardown,
) -> Result<(), Error> {
    if !prefix.path().is_dir() {
        return Err(PrefixError::Missing {
            path: prefix.path().to_path_buf(),
        }
        .into());
    }
    prefix.require_lago()?;
    let _lock = prefix.lock(LockMode::Exclusive, "cleanup")?;
    teardown_and_release(prefix, store, teardown)?;
    prefix.unmark_initialized()?;
    // The teardown removed everything from the hypervisor.
    prefix.mark_not_started()?;
    Ok(())
}

/// Destroy one prefix: a prefix that is a symlink loses only the link;
/// otherwise (only a prefix lago made, under its lock) teardown, release
/// the leases, remove the folder.
pub fn destroy_prefix(
    prefix: &Prefix,
    store: &LeaseStore,
    teardown: &mut dyn Teardown,
) -> Result<(), Error> {
    let is_link = std::fs::symlink_metadata(prefix.path())
        .map(|m| m.file_type().is_symlink())
        .unwrap_or(false);
    if is_link {
        return Ok(prefix.remove()?);
    }
    if !prefix.path().exists() {
        return Err(PrefixError::Missing {
            path: prefix.path().to_path_buf(),
        }
        .into());
    }
    prefix.require_lago()?;
    let _lock = prefix.lock(LockMode::Exclusive, "destroy")?;
    // Before the provider and the leases: a mount inside stops it all.
    prefix.refuse_mounts()?;
    teardown_and_release(prefix, store, teardown)?;
    // Nothing of it is in the hypervisor any more: a destroy interrupted
    // while removing the folder is run again without a provider (its
    // stored environment may be half gone by then).
    prefix.mark_not_started()?;
    prefix.remove()?;
    Ok(())
}

/// Destroy prefixes of a workdir lago made (`names`, or all of its prefixes
/// when `None`; folders in it that are not lago prefixes are left, with a
/// warning). When `current` pointed at a destroyed prefix it is pointed at
/// `default` if that is left, else at the last name left in sorted order (as
/// Lago's workdir); the workdir is removed when nothing else is left in it.
/// Destroying through a workdir that is a symlink removes only the link (the
/// folder it points to, its prefixes and their VMs are left alone), as Lago
/// does for a linked prefix. Returns whether only a link was removed.
///
/// Locks: the workdir exclusive for all prefixes, else shared (upgraded to
/// remove the workdir); each prefix exclusive.
pub fn destroy_in_workdir(
    wd: &Workdir,
    names: Option<&[String]>,
    store: &LeaseStore,
    teardown: &mut dyn Teardown,
) -> Result<bool, Error> {
    wd.require_lago()?;
    let is_link = std::fs::symlink_metadata(wd.path())
        .map(|m| m.file_type().is_symlink())
        .unwrap_or(false);
    if is_link {
        std::fs::remove_file(wd.path()).map_err(|e| PrefixError::io(wd.path(), e))?;
        return Ok(true);
    }
    let (mode, verb) = match names {
        None => (LockMode::Exclusive, "destroy --all-prefixes"),
        Some(_) => (LockMode::Shared, "destroy"),
    };
    let wd_lock = Lock::take(wd.path(), mode, verb)?;
    let targets: Vec<String> = match names {
        Some(n) => n.to_vec(),
        None => lago_prefixes(wd)?,
    };
    // A mount inside any of them stops the whole destroy before any goes.
    let prefixes: Vec<Prefix> = targets
        .iter()
        .map(|name| wd.resolve(Some(name)))
        .collect::<Result<_, _>>()?;
    for p in &prefixes {
        if !std::fs::symlink_metadata(p.path()).is_ok_and(|m| m.file_type().is_symlink()) {
            p.refuse_mounts()?;
        }
    }
    let current = wd.current().ok().flatten();
    for p in &prefixes {
        destroy_prefix(p, store, teardown)?;
    }
    if current.as_ref().is_some_and(|c| targets.contains(c)) {
        let left: Vec<String> = wd
            .prefixes()?
            .into_iter()
            .filter(|n| owned::is_lago_prefix(&wd.prefix_path(n)))
            .collect();
        let next = if left.iter().any(|n| n == DEFAULT_PREFIX) {
            Some(DEFAULT_PREFIX.to_string())
        } else {
            left.last().cloned()
        };
        match next {
            Some(n) => wd.set_current(&n)?,
            None => wd.clear_current()?,
        }
    }
    wd.remove_if_unused(&wd_lock)?;
    Ok(false)
}

/// The workdir's lago prefixes and links to prefixes; other folders in it
/// are left, with a warning.
fn lago_prefixes(wd: &Workdir) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    for name in wd.prefixes()? {
        let path = wd.prefix_path(&name);
        if owned::is_lago_prefix(&path)
            || std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink())
        {
            out.push(name);
        } else {
            tracing::warn!("left {}: it is not a lago prefix", path.display());
        }
    }
    Ok(out)
}
