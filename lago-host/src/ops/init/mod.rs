//! `lago init` as one operation, in the order it runs ([`init`]):
//!
//! 1. read the init file, each domain through its vm-type (`read`);
//! 2. plan on stand-in subnets, so every planning mistake shows before
//!    anything exists on disk (`dry_plan`);
//! 3. make the prefix folder and take its locks (`reserve`);
//! 4. lease the subnets, avoiding those in use on the hosts (`lease`);
//! 5. plan for real and store the layout and the environment (`store_plan`);
//! 6. the providers prepare the disks and bootstrap them
//!    ([`InitPlugins::prepare`]);
//! 7. write the SSH client files, point `current`, mark the prefix
//!    initialized (`finish`).
//!
//! A failed step, or a signal, undoes everything made so far ([`undo`]).
//! The plugins take part through [`InitPlugins`]: [`WithPlugins`] is the
//! real thing; a closure `FnMut(&Prefix, &mut EnvSpec)` is an init whose
//! provider work is that closure (tests and planning only).

mod plugins;
pub mod undo;

pub use plugins::{PrepareOptions, RepoChoice, WithPlugins};

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use lago_plugin_api::spec::{EnvSpec, PrefixInfo};
use serde_json::Value;

use crate::config::Config;
use crate::error::Error;
use crate::files::{owned, write_atomic, WriteMode};
use crate::initfile::{self, InitFile};
use crate::network::LeaseStore;
use crate::ops::leases::lease_store;
use crate::plan::{self, Defaults, PathVars};
use crate::prefix::interrupt::stop_if_interrupted;
use crate::prefix::layout::write_layout;
use crate::prefix::lock::{Lock, LockMode};
use crate::prefix::{
    check_prefix_name, keys, ssh_client, Prefix, PrefixError, Workdir, DEFAULT_PREFIX,
};
use undo::Undo;

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

/// An IPv4 network in use on a hypervisor host: (address, prefix length,
/// what uses it).
pub use crate::plugins::client::SubnetInUse;

/// What init asks of the plugins.
pub trait InitPlugins {
    /// The domain `name` as written in the init file → the domain to check
    /// and plan (a vm-type's `normalize_spec`). Default: unchanged.
    fn normalize(&mut self, name: &str, domain: Value) -> Result<Value, Error> {
        let _ = name;
        Ok(domain)
    }

    /// The IPv4 networks in use on the hypervisor hosts of an environment
    /// with `hosts:` (`skeleton`: only its prefix and hosts), as the
    /// vm-providers `providers` see them; leases avoid them. Default: none.
    fn subnets_in_use(
        &mut self,
        skeleton: &EnvSpec,
        providers: &BTreeSet<String>,
    ) -> Result<Vec<SubnetInUse>, Error> {
        let _ = (skeleton, providers);
        Ok(Vec::new())
    }

    /// The provider work on the planned and stored environment (templates,
    /// disks, bootstrap), before the `initialized` marker. It may change the
    /// spec (init stores it again after). When it fails, init removes
    /// everything it made, leases included.
    fn prepare(&mut self, prefix: &Prefix, env: &mut EnvSpec) -> Result<(), Error>;
}

impl<F: FnMut(&Prefix, &mut EnvSpec) -> Result<(), Error>> InitPlugins for F {
    fn prepare(&mut self, prefix: &Prefix, env: &mut EnvSpec) -> Result<(), Error> {
        self(prefix, env)
    }
}

/// Where the new prefix goes: its folder and, unless `-p`, its workdir.
struct Place {
    prefix: Prefix,
    workdir: Option<Workdir>,
}

/// `lago init`: see the module doc for its steps. Nothing is created when
/// the init file is refused; when a later step fails (or a signal arrives)
/// everything created is removed, leases included. Returns the prefix and
/// the environment as stored.
///
/// Errors: a refused init file, prefix name or `--ssh-key`, an existing
/// prefix (user errors); a lease, plugin or I/O failure.
pub fn init(
    req: &InitRequest,
    config: &Config,
    plugins: &mut dyn InitPlugins,
) -> Result<(Prefix, EnvSpec), Error> {
    let init = read(req, plugins)?;
    // The user's key is checked before anything exists on disk.
    let user_key = match &req.ssh_key {
        Some(path) => Some(keys::from_file(path).map_err(PrefixError::BadSshKey)?),
        None => None,
    };
    let place = place(req)?;
    let prefix = &place.prefix;
    let info = PrefixInfo {
        name: prefix.name().to_string(),
        path: prefix.path().to_path_buf(),
        workdir: prefix.workdir().map(Path::to_path_buf),
        uuid: uuid::Uuid::new_v4().simple().to_string(),
    };
    let defaults = Defaults::from_config(config);
    let initfile_dir = absolute(&req.init_file).parent().map(Path::to_path_buf);
    let process_env = |name: &str| std::env::var(name).ok();
    let vars = PathVars {
        initfile_dir: initfile_dir.as_deref(),
        prefix: prefix.path(),
        workdir: prefix.workdir(),
        env: &process_env,
    };
    dry_plan(&init, &info, &defaults, &vars)?;
    let store = lease_store(config)?;
    let env = undo::run(prefix, |undo| {
        stop_if_interrupted()?;
        reserve(&place, &info, undo)?;
        undo.leases(store.clone(), info.uuid.clone());
        let subnets = lease(&init, &info, &defaults, &store, plugins)?;
        let mut env = store_plan(&init, &info, &subnets, &defaults, &vars, prefix, user_key)?;
        let planned = env.clone();
        stop_if_interrupted()?;
        if !env.hosts.is_empty() {
            // Disks of VMs on other hosts are volumes there from now on:
            // destroy must ask the provider even if start never runs.
            prefix.mark_started()?;
        }
        plugins.prepare(prefix, &mut env)?;
        stop_if_interrupted()?;
        if env != planned {
            prefix.save_env_opt(&env, WriteMode::Batch)?;
        }
        finish(&place, req.set_current, &env, undo)?;
        Ok(env)
    })?;
    Ok((place.prefix, env))
}

fn absolute(p: &Path) -> PathBuf {
    Workdir::at(p).path().to_path_buf()
}

/// Step 1: the init file, each domain through `plugins.normalize` as
/// written, then checked; its warnings go to the log.
fn read(req: &InitRequest, plugins: &mut dyn InitPlugins) -> Result<InitFile, Error> {
    let (mut document, source) = initfile::read(&req.init_file)?;
    if let Some(Value::Object(domains)) = document.get_mut("domains") {
        for (name, domain) in domains.iter_mut() {
            *domain = plugins.normalize(name, std::mem::take(domain))?;
        }
    }
    let init = initfile::from_value(document, source)?;
    for w in &init.warnings {
        tracing::warn!("{w}");
    }
    if let Some(known) = &req.service_providers {
        init.check_service_providers(known)?;
    }
    Ok(init)
}

/// Where the prefix goes (`-p PATH`, else the workdir's prefix of that
/// name); refused when something is there already or the workdir's
/// `current` is not lago's.
fn place(req: &InitRequest) -> Result<Place, Error> {
    let place = match &req.prefix_path {
        Some(p) => {
            let path = absolute(p);
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            Place {
                prefix: Prefix::at(path, name, None),
                workdir: None,
            }
        }
        None => {
            check_prefix_name(&req.prefix_name)?;
            let wd = Workdir::at(&req.workdir);
            wd.require_own_current()?;
            let path = wd.prefix_path(&req.prefix_name);
            Place {
                prefix: Prefix::at(path, req.prefix_name.clone(), Some(wd.path().to_path_buf())),
                workdir: Some(wd),
            }
        }
    };
    if std::fs::symlink_metadata(place.prefix.path()).is_ok() {
        return Err(PrefixError::AlreadyExists {
            path: place.prefix.path().to_path_buf(),
        }
        .into());
    }
    Ok(place)
}

/// Step 2: a plan on stand-in subnets (only the subnets change in the real
/// plan), so that every planning error shows before anything exists.
fn dry_plan(
    init: &InitFile,
    info: &PrefixInfo,
    defaults: &Defaults,
    vars: &PathVars<'_>,
) -> Result<(), Error> {
    let requests = plan::lease_requests(init);
    let mut spare = (200u8..=255).filter(|n| {
        !requests
            .iter()
            .any(|(_, gw)| gw.is_some_and(|g| g.octets()[2] == *n))
    });
    let mut dry_subnets = BTreeMap::new();
    for (net, gw) in &requests {
        let s = match gw {
            Some(g) => Ipv4Addr::new(192, 168, g.octets()[2], 0),
            None => Ipv4Addr::new(192, 168, spare.next().unwrap_or(200), 0),
        };
        dry_subnets.insert(net.clone(), s);
    }
    plan::plan(init, info, &dry_subnets, defaults, vars)?;
    Ok(())
}

/// Step 3: the workdir (made if missing, marked as lago's, held shared so
/// `destroy --all-prefixes` cannot take it from under init) and the prefix
/// folder (held exclusive), its uuid and its `not-started` marker.
fn reserve(place: &Place, info: &PrefixInfo, undo: &Undo) -> Result<(), Error> {
    if let Some(wd) = &place.workdir {
        if let Some(parent) = wd.path().parent() {
            std::fs::create_dir_all(parent).map_err(|e| PrefixError::io(parent, e))?;
        }
        // Only the process that made the workdir may take it back.
        match std::fs::create_dir(wd.path()) {
            Ok(()) => undo.workdir(wd.path().to_path_buf()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(PrefixError::io(wd.path(), e).into()),
        }
        owned::mark_workdir(wd.path()).map_err(|e| PrefixError::io(wd.path(), e))?;
        undo.workdir_lock(Lock::take(wd.path(), LockMode::Shared, "init")?);
    }
    let prefix = &place.prefix;
    std::fs::create_dir(prefix.path()).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => PrefixError::AlreadyExists {
            path: prefix.path().to_path_buf(),
        },
        _ => PrefixError::io(prefix.path(), e),
    })?;
    undo.prefix(prefix.clone());
    undo.prefix_lock(prefix.lock(LockMode::Exclusive, "init")?);
    // The uuid first: it marks the folder as lago's, and the lease store
    // treats a lease whose prefix has no uuid file as stale.
    write_atomic(&prefix.path().join("uuid"), info.uuid.as_bytes(), None)
        .map_err(|e| PrefixError::io(prefix.path(), e))?;
    // Nothing goes to the hypervisor before `start`.
    prefix.mark_not_started()?;
    Ok(())
}

/// Step 4: a subnet for each NAT network (its `gw`'s when the init file
/// gives one). With several hosts, none may clash with a network on any of
/// them (asking a remote host costs a connection: only then).
fn lease(
    init: &InitFile,
    info: &PrefixInfo,
    defaults: &Defaults,
    store: &LeaseStore,
    plugins: &mut dyn InitPlugins,
) -> Result<BTreeMap<String, Ipv4Addr>, Error> {
    let requests = plan::lease_requests(init);
    let wanted: Vec<Option<Ipv4Addr>> = requests.iter().map(|(_, gw)| *gw).collect();
    stop_if_interrupted()?;
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
        plugins.subnets_in_use(&skeleton, &providers)?
    };
    stop_if_interrupted()?;
    let got = store.acquire_avoiding(&info.path, &info.uuid, &wanted, &in_use)?;
    Ok(requests.into_iter().map(|(n, _)| n).zip(got).collect())
}

/// Step 5: the plan on the leased subnets, with the addresses the init file
/// wrote recorded (export keeps them); the prefix's folders, keys and
/// copies; the environment stored.
fn store_plan(
    init: &InitFile,
    info: &PrefixInfo,
    subnets: &BTreeMap<String, Ipv4Addr>,
    defaults: &Defaults,
    vars: &PathVars<'_>,
    prefix: &Prefix,
    user_key: Option<keys::KeyPair>,
) -> Result<EnvSpec, Error> {
    let planned = plan::plan(init, info, subnets, defaults, vars)?;
    let mut env = planned.env;
    crate::environment::mark_written(init, &mut env);
    stop_if_interrupted()?;
    write_layout(prefix, info, &mut env, &planned.copies, user_key.as_ref())?;
    prefix.save_env_opt(&env, WriteMode::Fresh)?;
    Ok(env)
}

/// Step 7: the SSH client files (after prepare: a provider may have
/// changed addresses or keys), the workdir's `current` (when asked, or
/// when it has no valid one), the `initialized` marker.
fn finish(place: &Place, set_current: bool, env: &EnvSpec, undo: &Undo) -> Result<(), Error> {
    stop_if_interrupted()?;
    ssh_client::write_files(env)?;
    let prefix = &place.prefix;
    if let Some(wd) = &place.workdir {
        let current_ok = wd
            .current()
            .ok()
            .flatten()
            .is_some_and(|c| wd.prefix_path(&c).is_dir() && c != prefix.name());
        if set_current || !current_ok {
            wd.set_current(prefix.name())?;
            undo.current(wd.clone());
        }
    }
    stop_if_interrupted()?;
    prefix.mark_initialized()?;
    Ok(())
}
