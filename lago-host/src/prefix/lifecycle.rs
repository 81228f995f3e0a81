//! The on-disk life of a prefix: init (plan, lease, store), status, cleanup
//! and destroy, with the points where the providers plug in.
//!
//! Hook points (closures, so the caller brings the plugin registry):
//! - [`init_env`]'s `prepare`: called once the environment is planned and
//!   stored, before the `initialized` marker; prepares disks and bootstraps
//!   through the providers. It may change the spec (it is stored again after).
//!   When it fails, init removes everything it created, leases included.
//! - [`cleanup_prefix`]'s and [`destroy_prefix`]'s `teardown`: called BEFORE
//!   any file or lease is removed, with the stored environment when it can be
//!   read (a prefix whose init failed half-way may have none): stops domains
//!   and removes networks.
//! - [`status_tree`]'s `states`: the provider's VM and network states;
//!   [`stored_states`] (everything `down`) until a provider answers.
//!
//! The `lago` verbs plug the providers in at `cli/init.rs`
//! (`provider_prepare`), `cli/destroy.rs` (`provider_teardown`, also used by
//! `cli/cleanup.rs`) and `cli/status.rs` (`provider_states`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use lago_plugin_api::spec::{EnvSpec, PrefixInfo, DEFAULT_HOST};
use serde_json::{json, Map, Value};

use super::interrupt::{self, InterruptGuard};
use super::lock::{Lock, LockMode};
use super::{
    check_prefix_name, keys, owned, write_atomic, write_mode, Prefix, PrefixError, Workdir,
    WriteMode, DEFAULT_PREFIX,
};
use crate::config::Config;
use crate::error::Error;
use crate::initfile::{self, InitError};
use crate::network::{LeaseError, LeaseStore};
use crate::plan::{self, Defaults, PathVars};

impl From<InitError> for Error {
    fn from(e: InitError) -> Self {
        Error::user(e.to_string())
    }
}

impl From<LeaseError> for Error {
    fn from(e: LeaseError) -> Self {
        match e {
            LeaseError::Io { .. } => Error::internal_from(&e),
            _ => Error::user_from(&e),
        }
    }
}

/// The lease store the configuration names.
pub fn lease_store(config: &Config) -> Result<LeaseStore, Error> {
    let timeout = config.lease_timeout().map_err(|e| Error::user_from(&e))?;
    Ok(LeaseStore::new(config.lease_dir(), timeout))
}

/// What `lago init` was asked for.
#[derive(Debug, Clone)]
pub struct InitRequest {
    pub init_file: PathBuf,
    /// The workdir to create the prefix in (absolute or relative to the
    /// current folder); ignored when `prefix_path` is set.
    pub workdir: PathBuf,
    /// The prefix name in the workdir (`default`).
    pub prefix_name: String,
    /// Deprecated `-p`: create the prefix exactly there, with no workdir.
    pub prefix_path: Option<PathBuf>,
    /// Point the workdir's `current` at the new prefix (it is also set when
    /// the workdir has no valid current prefix).
    pub set_current: bool,
    /// The vm-service plugins there are: a VM's `service_provider` must name
    /// one (checked with the init file). `None` skips the check.
    pub service_providers: Option<Vec<String>>,
    /// `--ssh-key`: the prefix's SSH key is a copy of this one (read and
    /// checked by [`keys::from_file`] before anything is made) instead of a
    /// generated one.
    pub ssh_key: Option<PathBuf>,
}

impl InitRequest {
    pub fn new(init_file: impl Into<PathBuf>, workdir: impl Into<PathBuf>) -> InitRequest {
        InitRequest {
            init_file: init_file.into(),
            workdir: workdir.into(),
            prefix_name: DEFAULT_PREFIX.into(),
            prefix_path: None,
            set_current: false,
            service_providers: None,
            ssh_key: None,
        }
    }
}

/// The normalize hook of [`init_env_with`]: `(domain name, the domain as
/// written in the init file) -> the domain to plan` (a vm-type's defaults).
pub type NormalizeHook<'a> = &'a mut dyn FnMut(&str, Value) -> Result<Value, Error>;

/// The hook of [`init_env_with`] that lists the IPv4 networks in use on
/// the hypervisor hosts of an environment with `hosts:`: `(the environment
/// with only its prefix and hosts, the vm-providers its VMs use) ->
/// [(address, prefix length, what uses it)]`. Leases avoid them.
pub type SubnetsInUseHook<'a> =
    &'a mut dyn FnMut(&EnvSpec, &BTreeSet<String>) -> Result<Vec<(Ipv4Addr, u8, String)>, Error>;

/// The prepare hook of [`init_env`].
pub type PrepareHook<'a> = &'a mut dyn FnMut(&Prefix, &mut EnvSpec) -> Result<(), Error>;

/// Things init created, taken back when it fails.
#[derive(Default)]
struct Created {
    workdir: Option<PathBuf>,
    prefix: Option<Prefix>,
    leased: Option<(LeaseStore, String)>,
    current_set: Option<Workdir>,
    /// The workdir lock (shared), upgraded to remove a workdir init made.
    workdir_lock: Option<Lock>,
    /// The new prefix's lock, held until init has finished or rolled back.
    prefix_lock: Option<Lock>,
}

impl Created {
    fn rollback(self) {
        if let Some((store, uuid)) = &self.leased {
            if let Err(e) = store.release_all(uuid) {
                tracing::warn!("could not release the leases of the failed init: {e}");
            }
        }
        if let Some(wd) = &self.current_set {
            let _ = wd.clear_current();
        }
        if let Some(p) = &self.prefix {
            // This process made the folder (create_dir), so it goes even
            // before its uuid marker was written; still without following
            // links or leaving the file system.
            // On a signal, init's own thread may still be writing in it:
            // a file it adds meanwhile fails a pass, so try again.
            let mut outcome = owned::remove_tree(p.path(), &[owned::PREFIX_MARKER]);
            for _ in 0..3 {
                if outcome.is_ok() {
                    break;
                }
                outcome = owned::remove_tree(p.path(), &[owned::PREFIX_MARKER]);
            }
            match outcome {
                Ok(left) if left.is_empty() => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Ok(left) => tracing::warn!(
                    "could not remove {}: {} stayed (another file system)",
                    p.path().display(),
                    left.len()
                ),
                Err(e) => tracing::warn!("could not remove {}: {e}", p.path().display()),
            }
        }
        if let (Some(w), Some(lock)) = (&self.workdir, &self.workdir_lock) {
            // Only when nothing else appeared in it meanwhile (another init).
            if let Err(e) = Workdir::at(w).remove_if_unused(lock) {
                tracing::warn!("could not remove {}: {e}", w.display());
            }
        }
    }
}

fn lock_created(c: &Mutex<Created>) -> std::sync::MutexGuard<'_, Created> {
    c.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// `lago init`: read and check the init file, plan, lease subnets, create
/// the prefix and store the environment, call `prepare` (disks and
/// bootstrap through the providers), then write the `initialized` marker.
/// Nothing is created when the init file is refused; when a later step fails
/// everything created is removed, leases included.
pub fn init_env(
    req: &InitRequest,
    config: &Config,
    prepare: PrepareHook<'_>,
) -> Result<(Prefix, EnvSpec), Error> {
    init_env_with(
        req,
        config,
        &mut |_, domain| Ok(domain),
        &mut |_, _| Ok(Vec::new()),
        prepare,
    )
}

/// [`init_env`] with each domain of the init file passed through `normalize`
/// as written, before it is checked and planned (the vm-types'
/// `normalize_spec`).
pub fn init_env_with(
    req: &InitRequest,
    config: &Config,
    normalize: NormalizeHook<'_>,
    subnets_in_use: SubnetsInUseHook<'_>,
    prepare: PrepareHook<'_>,
) -> Result<(Prefix, EnvSpec), Error> {
    let (mut document, source) = initfile::read(&req.init_file)?;
    if let Some(Value::Object(domains)) = document.get_mut("domains") {
        for (name, domain) in domains.iter_mut() {
            *domain = normalize(name, std::mem::take(domain))?;
        }
    }
    let init = initfile::from_value(document, source)?;
    for w in &init.warnings {
        tracing::warn!("{w}");
    }
    if let Some(known) = &req.service_providers {
        init.check_service_providers(known)?;
    }
    // The user's key is checked before anything exists on disk.
    let user_key = match &req.ssh_key {
        Some(path) => Some(keys::from_file(path).map_err(PrefixError::BadSshKey)?),
        None => None,
    };
    let abs = |p: &Path| Workdir::at(p).path().to_path_buf();
    let (prefix, workdir) = match &req.prefix_path {
        Some(p) => {
            let path = abs(p);
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (Prefix::at(path, name, None), None)
        }
        None => {
            check_prefix_name(&req.prefix_name)?;
            let wd = Workdir::at(&req.workdir);
            let path = wd.prefix_path(&req.prefix_name);
            (
                Prefix::at(path, req.prefix_name.clone(), Some(wd.path().to_path_buf())),
                Some(wd),
            )
        }
    };
    if let Some(wd) = &workdir {
        wd.require_own_current()?;
    }
    if std::fs::symlink_metadata(prefix.path()).is_ok() {
        return Err(PrefixError::AlreadyExists {
            path: prefix.path().to_path_buf(),
        }
        .into());
    }
    let info = PrefixInfo {
        name: prefix.name().to_string(),
        path: prefix.path().to_path_buf(),
        workdir: prefix.workdir().map(Path::to_path_buf),
        uuid: uuid::Uuid::new_v4().simple().to_string(),
    };
    let defaults = Defaults::from_config(config);
    let initfile_dir = abs(&req.init_file).parent().map(Path::to_path_buf);
    let vars = PathVars {
        initfile_dir: initfile_dir.as_deref(),
        prefix: prefix.path(),
        workdir: prefix.workdir(),
        env: &process_env,
    };
    // A dry plan on stand-in subnets: every planning error shows now, before
    // anything exists on disk (only the subnets change in the real plan).
    let requests = plan::lease_requests(&init);
    let mut dry_subnets = BTreeMap::new();
    let mut spare = (200u8..=255).filter(|n| {
        !requests
            .iter()
            .any(|(_, gw)| gw.is_some_and(|g| g.octets()[2] == *n))
    });
    for (net, gw) in &requests {
        let s = match gw {
            Some(g) => Ipv4Addr::new(192, 168, g.octets()[2], 0),
            None => Ipv4Addr::new(192, 168, spare.next().unwrap_or(200), 0),
        };
        dry_subnets.insert(net.clone(), s);
    }
    plan::plan(&init, &info, &dry_subnets, &defaults, &vars)?;
    let store = lease_store(config)?;

    // Shared with the watcher that undoes the init on SIGTERM/SIGINT/SIGHUP.
    let created = Arc::new(Mutex::new(Created::default()));
    let on_signal = Arc::clone(&created);
    let signalled_prefix = prefix.clone();
    let _interrupt = InterruptGuard::install(move |sig| {
        // Waits for a rollback init's thread is doing; takes what is left.
        std::mem::take(&mut *lock_created(&on_signal)).rollback();
        eprintln!(
            "lago: init interrupted by {}: {}",
            interrupt::signal_name(sig),
            interrupted_outcome(&signalled_prefix)
        );
    })
    .map_err(|e| Error::internal(format!("cannot catch signals during init: {e}")))?;
    let result = (|| -> Result<EnvSpec, Error> {
        stop_if_interrupted()?;
        if let Some(wd) = &workdir {
            if let Some(parent) = wd.path().parent() {
                std::fs::create_dir_all(parent).map_err(|e| PrefixError::io(parent, e))?;
            }
            // Only the process that made the workdir may take it back.
            match std::fs::create_dir(wd.path()) {
                Ok(()) => lock_created(&created).workdir = Some(wd.path().to_path_buf()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(PrefixError::io(wd.path(), e).into()),
            }
            // Marked as lago's (an older workdir is adopted), and held shared
            // so `destroy --all-prefixes` cannot take it from under us.
            owned::mark_workdir(wd.path()).map_err(|e| PrefixError::io(wd.path(), e))?;
            lock_created(&created).workdir_lock =
                Some(Lock::take(wd.path(), LockMode::Shared, "init")?);
        }
        std::fs::create_dir(prefix.path()).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => PrefixError::AlreadyExists {
                path: prefix.path().to_path_buf(),
            },
            _ => PrefixError::io(prefix.path(), e),
        })?;
        lock_created(&created).prefix = Some(prefix.clone());
        lock_created(&created).prefix_lock = Some(prefix.lock(LockMode::Exclusive, "init")?);
        // The uuid first: it marks the folder as lago's, and the lease store
        // treats a lease whose prefix has no uuid file as stale.
        write_atomic(&prefix.path().join("uuid"), info.uuid.as_bytes(), None)
            .map_err(|e| PrefixError::io(prefix.path(), e))?;
        // Nothing goes to the hypervisor before `start`.
        prefix.mark_not_started()?;
        lock_created(&created).leased = Some((store.clone(), info.uuid.clone()));
        let wanted: Vec<Option<Ipv4Addr>> = requests.iter().map(|(_, gw)| *gw).collect();
        stop_if_interrupted()?;
        // With several hosts, no subnet may clash with a network on any of
        // them (asking a remote host costs a connection: only then).
        let in_use = if init.hosts.is_empty() {
            Vec::new()
        } else {
            let skeleton = EnvSpec {
                prefix: info.clone(),
                nets: BTreeMap::new(),
                domains: BTreeMap::new(),
                hosts: init.hosts.clone(),
                extra: Default::default(),
            };
            let providers: BTreeSet<String> = init
                .domains
                .values()
                .map(|d| {
                    d.vm_provider
                        .clone()
                        .unwrap_or_else(|| defaults.vm_provider.clone())
                })
                .collect();
            subnets_in_use(&skeleton, &providers)?
        };
        stop_if_interrupted()?;
        let got = store.acquire_avoiding(prefix.path(), &info.uuid, &wanted, &in_use)?;
        let subnets: BTreeMap<String, Ipv4Addr> =
            requests.iter().map(|(n, _)| n.clone()).zip(got).collect();
        let plan = plan::plan(&init, &info, &subnets, &defaults, &vars)?;
        let mut env = plan.env;
        crate::environment::mark_written(&init, &mut env);
        stop_if_interrupted()?;
        write_layout(&prefix, &info, &mut env, &plan.copies, user_key.as_ref())?;
        prefix.save_env_opt(&env, WriteMode::Fresh)?;
        let planned = env.clone();
        stop_if_interrupted()?;
        if !env.hosts.is_empty() {
            // Disks of VMs on other hosts are volumes there from now on:
            // destroy must ask the provider even if start never runs.
            prefix.mark_started()?;
        }
        prepare(&prefix, &mut env)?;
        stop_if_interrupted()?;
        if env != planned {
            prefix.save_env_opt(&env, WriteMode::Batch)?;
        }
        // After prepare: a provider may have changed addresses or keys.
        stop_if_interrupted()?;
        super::ssh_client::write_files(&env)?;
        if let Some(wd) = &workdir {
            let current_ok = wd
                .current()
                .ok()
                .flatten()
                .is_some_and(|c| wd.prefix_path(&c).is_dir() && c != prefix.name());
            if req.set_current || !current_ok {
                wd.set_current(prefix.name())?;
                lock_created(&created).current_set = Some(wd.clone());
            }
        }
        stop_if_interrupted()?;
        prefix.mark_initialized()?;
        Ok(env)
    })();
    // Under the lock: a signal from now on finds nothing left to undo (the
    // watcher sets the flag before it takes the lock).
    let mut guard = lock_created(&created);
    let outcome = match result {
        Ok(env) if interrupt::interrupted().is_none() => {
            // Done: locks released.
            drop(std::mem::take(&mut *guard));
            Ok((prefix, env))
        }
        Ok(_) => {
            std::mem::take(&mut *guard).rollback();
            Err(Error::internal("init interrupted"))
        }
        Err(e) => {
            std::mem::take(&mut *guard).rollback();
            Err(e)
        }
    };
    drop(guard);
    if interrupt::interrupted().is_some() {
        // The watcher reports the outcome and exits with 128 + signal: an
        // error of the interrupted step is not the story.
        interrupt::park_until_exit();
    }
    outcome
}

/// An error once a signal has interrupted init: its steps stop there.
fn stop_if_interrupted() -> Result<(), Error> {
    match interrupt::interrupted() {
        Some(sig) => Err(Error::internal(format!(
            "init interrupted by {}",
            interrupt::signal_name(sig)
        ))),
        None => Ok(()),
    }
}

/// What an interrupted init left, for its last message: told from the
/// folder itself, so the message is true whoever rolled back.
fn interrupted_outcome(prefix: &Prefix) -> String {
    let path = prefix.path().display();
    if std::fs::symlink_metadata(prefix.path()).is_err() {
        "undone (prefix removed, leases released)".to_string()
    } else if prefix.is_initialized() {
        format!("init had already finished; the prefix {path} stays")
    } else if owned::is_lago_prefix(prefix.path()) {
        format!(
            "not completely undone: the prefix {path} stays (its leases are released); \
             `lago destroy` removes it (-P {} when it is not the current one)",
            prefix.name()
        )
    } else {
        format!("not completely undone: {path} stays (remove it by hand: it holds no uuid marker)")
    }
}

/// Folders, keys, metadata and copies of a new prefix. The prefix's SSH key
/// is a copy of `user_key` (`--ssh-key`, 0600) when given, else generated.
fn write_layout(
    prefix: &Prefix,
    info: &PrefixInfo,
    env: &mut EnvSpec,
    copies: &[(PathBuf, PathBuf)],
    user_key: Option<&keys::KeyPair>,
) -> Result<(), Error> {
    let mk = |p: PathBuf| std::fs::create_dir_all(&p).map_err(|e| PrefixError::io(&p, e));
    mk(info.images_dir())?;
    mk(info.logs_dir())?;
    mk(info.host_keys_dir())?;
    mk(info.virt_dir())?;
    std::fs::File::create(info.log_path()).map_err(|e| PrefixError::io(&info.log_path(), e))?;
    let generated;
    let kp = match user_key {
        Some(k) => k,
        None => {
            generated =
                keys::generate(&format!("lago@{}", info.tag())).map_err(PrefixError::Keygen)?;
            &generated
        }
    };
    keys::write(&info.ssh_key_path(), kp).map_err(|e| PrefixError::io(&info.ssh_key_path(), e))?;
    for vm in env.domains.values_mut() {
        stop_if_interrupted()?;
        let hk = keys::generate(&format!("root@{}", vm.name)).map_err(PrefixError::Keygen)?;
        let p = info.host_key_path(&vm.name);
        // The private half only: the public one is in the VM's spec.
        write_mode(
            &p,
            hk.private_openssh.as_bytes(),
            Some(0o600),
            WriteMode::Fresh,
        )
        .map_err(|e| PrefixError::io(&p, e))?;
        vm.ssh_host_key = Some(hk.public_openssh);
    }
    mk(info.scripts_dir())?;
    if !copies.is_empty() {
        for (src, dest) in copies {
            std::fs::copy(src, dest).map_err(|e| PrefixError::io(src, e))?;
        }
    }
    let meta = json!({
        "lago_version": env!("CARGO_PKG_VERSION"),
        "created": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default(),
    });
    write_atomic(
        &prefix.path().join("metadata"),
        meta.to_string().as_bytes(),
        None,
    )
    .map_err(|e| PrefixError::io(prefix.path(), e))?;
    Ok(())
}

/// The teardown hook of [`cleanup_prefix`] and [`destroy_prefix`]: stop and
/// remove the prefix's domains and networks (provider work). Gets the stored
/// environment when there is one.
pub type TeardownHook<'a> = &'a mut dyn FnMut(&Prefix, Option<&EnvSpec>) -> Result<(), Error>;

/// A teardown that does nothing (no hypervisor).
pub fn no_teardown(_: &Prefix, _: Option<&EnvSpec>) -> Result<(), Error> {
    Ok(())
}

/// The part of cleanup and destroy that goes before the files: the provider
/// teardown (with the stored environment when it can be read; skipped for a
/// prefix that was never started, so no provider is needed for it), then the
/// prefix's leases.
fn teardown_and_release(
    prefix: &Prefix,
    store: &LeaseStore,
    teardown: TeardownHook<'_>,
) -> Result<(), Error> {
    if prefix.never_started() {
        tracing::debug!(
            "{} was never started: nothing to remove from a hypervisor",
            prefix.path().display()
        );
    } else {
        let env = prefix.load_env().ok();
        teardown(prefix, env.as_ref())?;
    }
    if let Ok(uuid) = prefix.uuid() {
        store.release_prefix(prefix.path(), &uuid)?;
    }
    Ok(())
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

/// `lago cleanup`: teardown, release the leases, remove the `initialized`
/// marker. The files stay (destroy removes them). Only a prefix lago made,
/// under its lock.
pub fn cleanup_prefix(
    prefix: &Prefix,
    store: &LeaseStore,
    teardown: TeardownHook<'_>,
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
    teardown: TeardownHook<'_>,
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
    teardown: TeardownHook<'_>,
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
        None => {
            let mut out = Vec::new();
            for name in wd.prefixes()? {
                if owned::is_lago_prefix(&wd.prefix_path(&name))
                    || std::fs::symlink_metadata(wd.prefix_path(&name))
                        .is_ok_and(|m| m.file_type().is_symlink())
                {
                    out.push(name);
                } else {
                    tracing::warn!(
                        "left {}: it is not a lago prefix",
                        wd.prefix_path(&name).display()
                    );
                }
            }
            out
        }
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

/// Provider states of an environment's VMs and networks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct States {
    /// VM name → state (`down`, `running`, `paused`, `shut off`, ...).
    pub vms: BTreeMap<String, String>,
    /// Net name → `up` or `down`.
    pub nets: BTreeMap<String, String>,
}

/// The states known without a provider: everything `down`.
pub fn stored_states(env: &EnvSpec) -> States {
    States {
        vms: env
            .domains
            .keys()
            .map(|k| (k.clone(), "down".into()))
            .collect(),
        nets: env
            .nets
            .keys()
            .map(|k| (k.clone(), "down".into()))
            .collect(),
    }
}

/// `lago status` in Lago's shape:
/// `{Prefix: {Base directory, UUID, Networks: {NET: {gateway, status,
/// management, libvirt_name}}, VMs: {VM: {distro, root password, status, snapshots,
/// metadata, NICs: {eth0: {network, ip}}}}}}`, plus a few keys beside
/// (`vm-type`, `vm-provider`, `ssh host key`: `pinned` or `learned`).
pub fn status_tree(env: &EnvSpec, states: &States) -> Value {
    let mut nets = Map::new();
    for (name, n) in &env.nets {
        nets.insert(
            name.clone(),
            json!({
                "gateway": n.gw.map(|g| g.to_string()),
                "status": states.nets.get(name).map(String::as_str).unwrap_or("down"),
                "management": n.management,
                // The libvirt network's name (Lago's key: the oVirt system
                // tests read `Prefix.Networks.<net>.libvirt_name`).
                "libvirt_name": n.libvirt_name,
            }),
        );
    }
    let mut vms = Map::new();
    for (name, vm) in &env.domains {
        let mut nics = Map::new();
        for (i, nic) in vm.nics.iter().enumerate() {
            nics.insert(
                format!("eth{i}"),
                json!({
                    "network": nic.net,
                    "ip": nic.ip.map(|ip| ip.to_string()).unwrap_or_else(|| "N/A".into()),
                }),
            );
        }
        let snapshots = match vm.extra.get("snapshots") {
            Some(Value::Object(m)) => m.keys().cloned().collect::<Vec<_>>().join(", "),
            _ => String::new(),
        };
        let mut entry = json!({
            // None (JSON null, left out by the default format) when
            // neither the VM nor its template names one, as Lago's
            // `VMPlugin.distro()`.
            "distro": vm.distro,
            "root password": vm.root_password,
            "status": states.vms.get(name).map(String::as_str).unwrap_or("down"),
            "snapshots": snapshots,
            "metadata": vm.metadata,
            "NICs": nics,
            "vm-type": vm.vm_type,
            "vm-provider": vm.vm_provider,
            // How lago verifies the VM's SSH host key: the key generated
            // at init, the key the VM printed on its console, or the
            // first key seen (each held from then on).
            "ssh host key": host_key_status(env, vm),
        });
        // `warm` or `cold`, once its provider recorded a start (warm starts)
        if let Some(how) = last_start(env, name) {
            entry["last start"] = json!(how);
        }
        // Only in a multi-host environment (`hosts:`): where the VM runs.
        if !env.hosts.is_empty() {
            entry["host"] = json!(vm.host.as_deref().unwrap_or(DEFAULT_HOST));
        }
        vms.insert(name.clone(), entry);
    }
    json!({
        "Prefix": {
            "Base directory": env.prefix.path.display().to_string(),
            "UUID": env.prefix.uuid,
            "Networks": nets,
            "VMs": vms,
        }
    })
}

/// How the VM started last (`warm`/`cold`) as its provider recorded it,
/// without the reason (that is in logs/lago.log).
fn last_start(env: &EnvSpec, vm: &str) -> Option<&'static str> {
    let text = std::fs::read_to_string(env.prefix.last_start_path(vm)).ok()?;
    match text.split(':').next().map(str::trim) {
        Some("warm") => Some("warm"),
        Some("cold") => Some("cold"),
        _ => None,
    }
}

/// `pinned` (at init, or the seed's key once the VM presented it),
/// `console`, `learned`, or `not seen yet` (a learned key before the first
/// connection): see [`crate::ssh::learned_source`].
fn host_key_status(env: &EnvSpec, vm: &lago_plugin_api::spec::VmSpec) -> &'static str {
    if crate::templates::host_key_pinned(vm) {
        return "pinned";
    }
    let known_hosts = super::ssh_client::known_hosts_path(&env.prefix);
    vm.mgmt_ip()
        .and_then(|ip| crate::ssh::learned_source(&known_hosts, ip.into()))
        .unwrap_or("not seen yet")
}
