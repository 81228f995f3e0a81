//! Workdirs and prefixes on disk, and the stored environment.
//!
//! A workdir (`.lago/` by default) holds one folder per prefix and a relative
//! symlink `current` to the current one. A prefix holds:
//!
//! ```text
//! uuid                 32 hex characters, written first (leases check it)
//! id_ed25519(.pub)     the prefix's SSH key pair (private 0600)
//! host-keys/<vm>       each VM's SSH host key, private half (0600) and .pub
//! metadata             JSON: the lago version that made the prefix
//! ssh_config           `ssh -F` for the user's OpenSSH client (a Host per VM)
//! known_hosts          the VMs' pinned host keys (and any learned ones)
//! images/              disks (overlays, seeds, copies)
//! logs/lago.log        the prefix log, and serial console logs
//! scripts/             deploy scripts copied at init
//! virt/env             JSON: prefix info, net and VM names, unknown keys
//! virt/nets/<net>.json one planned network (NetSpec)
//! virt/vms/<vm>.json   one planned VM (VmSpec)
//! initialized          the marker, written last by init, removed by cleanup
//! not-started          written by init and a finished cleanup, removed by
//!                      start before any provider work: nothing of this
//!                      prefix can be in the hypervisor
//! .lock                the prefix lock (see [`lock`])
//! .state.lock          held while any state file above is written
//! ```
//!
//! The `uuid` file is also the mark that lago made the folder: nothing else
//! is ever deleted (see [`owned`]). The VM specs (`virt/vms/*.json`) can hold
//! passwords and are 0600.
//!
//! Every state file is written atomically (temp file, fsync, rename), under
//! the prefix's state lock ([`lock::StateLock`]); a change of one stored VM
//! re-reads it under that lock ([`Prefix::update_vm`]), so that two
//! processes changing one VM (a snapshot recorded, a service provider
//! detected) do not lose each other's change.

pub mod interrupt;
pub mod keys;
pub mod layout;
pub mod lock;
pub mod paths;
pub mod ssh_client;

use crate::files::{owned, sync_filesystem, write_atomic, write_mode, WriteMode};

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use lago_plugin_api::spec::{EnvSpec, Extra, HostSpec, NetSpec, PrefixInfo, VmSpec};
use serde::{Deserialize, Serialize};

/// Default name of a workdir folder.
pub const WORKDIR_NAME: &str = ".lago";
/// Default prefix name.
pub const DEFAULT_PREFIX: &str = "default";
/// The current-prefix link inside a workdir.
pub const CURRENT: &str = owned::CURRENT_LINK;
/// The marker written last by init.
pub const INITIALIZED: &str = "initialized";
/// The marker of a prefix nothing of which was ever given to a hypervisor.
pub const NOT_STARTED: &str = "not-started";

/// A problem with a workdir or a prefix.
#[derive(Debug, thiserror::Error)]
pub enum PrefixError {
    #[error("no lago workdir ({WORKDIR_NAME}) in {start} or any folder above it; run `lago init` first, or name one with -w/--workdir-path{}", candidates_hint(.candidates))]
    NoWorkdir {
        start: PathBuf,
        candidates: Vec<PathBuf>,
    },
    #[error("{path} is not a lago workdir (it has no `current` link and no prefix)")]
    NotAWorkdir { path: PathBuf },
    #[error("no prefix named {name:?} in the workdir {workdir}{}", known_hint(.known))]
    NoPrefix {
        workdir: PathBuf,
        name: String,
        known: Vec<String>,
    },
    #[error("the workdir {workdir} has no current prefix; pick one with `lago set-current NAME` or -P NAME{}", known_hint(.known))]
    NoCurrent {
        workdir: PathBuf,
        known: Vec<String>,
    },
    #[error("no prefix at {path}")]
    Missing { path: PathBuf },
    #[error("the prefix {path} is not initialized (its `lago init` did not finish, or `lago cleanup` ran); `lago destroy` removes it")]
    NotInitialized { path: PathBuf },
    #[error(
        "the prefix {path} already exists; `lago destroy` it first, or choose another name with -P"
    )]
    AlreadyExists { path: PathBuf },
    #[error("bad prefix name {name:?}: {why}")]
    BadName { name: String, why: String },
    #[error("{path} is not a lago {what} (lago did not make it: {why}); refusing to touch it")]
    NotLago {
        path: PathBuf,
        what: &'static str,
        why: &'static str,
    },
    #[error("the lock file {path} is {what}: lago's lock files are regular files it made; refusing to use it (remove it if nothing of lago is running)")]
    BadLockFile { path: PathBuf, what: String },
    #[error("{path} is not lago's `current` link ({what}); init would replace it: move it away, or choose another workdir with -w")]
    ForeignCurrent { path: PathBuf, what: &'static str },
    #[error("{path} is in use by {holder}; try again when it has finished")]
    Busy { path: PathBuf, holder: String },
    #[error("could not remove {path} completely: {} on another file system (a mount point?) stayed; unmount and run `lago destroy` again", left.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    OtherFileSystem { path: PathBuf, left: Vec<PathBuf> },
    #[error("refusing to remove {path}: {} is mounted at or below it (its files would be removed); unmount it and run `lago destroy` again (nothing was removed)", mounts.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    Mounted { path: PathBuf, mounts: Vec<PathBuf> },
    #[error("the stored state of the prefix is damaged: {path}: {msg}")]
    Corrupt { path: PathBuf, msg: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot generate an SSH key: {0}")]
    Keygen(String),
    /// `--ssh-key` names no usable private key (the text says why).
    #[error("--ssh-key: {0}")]
    BadSshKey(String),
}

fn candidates_hint(c: &[PathBuf]) -> String {
    if c.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = c.iter().map(|p| p.display().to_string()).collect();
        format!(". Workdirs nearby: {}", list.join(", "))
    }
}

fn known_hint(k: &[String]) -> String {
    if k.is_empty() {
        String::new()
    } else {
        format!(" (prefixes there: {})", k.join(", "))
    }
}

impl PrefixError {
    pub fn io(path: &Path, source: std::io::Error) -> PrefixError {
        PrefixError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
    /// Whether the user can fix it (exit 2) rather than a failure (exit 1).
    pub fn is_user(&self) -> bool {
        match self {
            PrefixError::Io { source, .. } => source.kind() == ErrorKind::PermissionDenied,
            PrefixError::Corrupt { .. } | PrefixError::Keygen(_) => false,
            _ => true,
        }
    }
}

impl From<PrefixError> for crate::error::Error {
    fn from(e: PrefixError) -> Self {
        if e.is_user() {
            crate::error::Error::user_from(&e)
        } else {
            crate::error::Error::internal_from(&e)
        }
    }
}

type R<T> = Result<T, PrefixError>;

/// A workdir: a folder of prefixes with a `current` link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workdir {
    path: PathBuf,
}

impl Workdir {
    /// The workdir at `path` (absolute), without checking it.
    pub fn at(path: impl Into<PathBuf>) -> Workdir {
        let path = path.into();
        let path = if path.is_absolute() {
            path
        } else {
            std::env::current_dir()
                .map(|d| d.join(&path))
                .unwrap_or(path)
        };
        Workdir { path }
    }

    /// An existing workdir at `path`.
    pub fn open(path: &Path) -> R<Workdir> {
        let wd = Workdir::at(path);
        if !wd.path.is_dir() {
            return Err(PrefixError::NotAWorkdir { path: wd.path });
        }
        Ok(wd)
    }

    /// Find the workdir: `<dir>/.lago` for the first `dir` from `start`
    /// upwards (or `dir` itself when it is named `.lago` or holds the workdir
    /// marker). When there is none, the error lists workdirs found a little
    /// below `start`.
    pub fn discover(start: &Path) -> R<Workdir> {
        Workdir::discover_with_prefix(start).map(|(wd, _)| wd)
    }

    /// As [`Workdir::discover`], with the prefix `start` is in, if any:
    /// `cd .lago/p1 && lago status` uses `p1`, as Lago.
    pub fn discover_with_prefix(start: &Path) -> R<(Workdir, Option<String>)> {
        let start = Workdir::at(start).path;
        let mut below: Option<&Path> = None;
        for dir in start.ancestors() {
            let named = dir.file_name().is_some_and(|n| n == WORKDIR_NAME);
            let marked = dir.join(owned::WORKDIR_MARKER).is_file();
            if (named || marked) && dir.is_dir() {
                let prefix = below.filter(|p| owned::is_lago_prefix(p)).and_then(|p| {
                    let name = p.file_name()?.to_string_lossy().into_owned();
                    check_prefix_name(&name).ok().map(|()| name)
                });
                return Ok((Workdir::at(dir), prefix));
            }
            let cand = dir.join(WORKDIR_NAME);
            if cand.is_dir() {
                return Ok((Workdir::at(cand), None));
            }
            below = Some(dir);
        }
        let mut candidates = Vec::new();
        find_below(&start, 3, &mut candidates);
        Err(PrefixError::NoWorkdir { start, candidates })
    }

    /// An error unless lago made this workdir (see [`owned`]).
    pub fn require_lago(&self) -> R<()> {
        if owned::is_lago_workdir(&self.path) {
            return Ok(());
        }
        Err(PrefixError::NotLago {
            path: self.path.clone(),
            what: "workdir",
            why: "it has no .lago-workdir marker and no lago prefix",
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The folder of a prefix name.
    pub fn prefix_path(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// The prefix names in the workdir, sorted (every folder or link to one,
    /// except hidden entries and `current`).
    pub fn prefixes(&self) -> R<Vec<String>> {
        let mut out = Vec::new();
        let rd = fs::read_dir(&self.path).map_err(|e| PrefixError::io(&self.path, e))?;
        for ent in rd {
            let ent = ent.map_err(|e| PrefixError::io(&self.path, e))?;
            let name = ent.file_name().to_string_lossy().into_owned();
            if name == CURRENT || name.starts_with('.') {
                continue;
            }
            if ent.path().is_dir() {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }

    /// The name the `current` link points to, if any.
    pub fn current(&self) -> R<Option<String>> {
        let link = self.path.join(CURRENT);
        match fs::read_link(&link) {
            Ok(t) => Ok(t.file_name().map(|n| n.to_string_lossy().into_owned())),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) if e.kind() == ErrorKind::InvalidInput => Ok(None),
            Err(e) => Err(PrefixError::io(&link, e)),
        }
    }

    /// An error ([`PrefixError::ForeignCurrent`]) when the workdir has a
    /// `current` entry that lago did not make: anything but a symlink to a
    /// bare prefix name. Init checks it before creating anything, since
    /// [`Workdir::set_current`] replaces the entry.
    pub fn require_own_current(&self) -> R<()> {
        let link = self.path.join(CURRENT);
        let meta = match fs::symlink_metadata(&link) {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(PrefixError::io(&link, e)),
        };
        let what = if meta.file_type().is_symlink() {
            let target = fs::read_link(&link).map_err(|e| PrefixError::io(&link, e))?;
            let bare = target
                .to_str()
                .is_some_and(|t| check_prefix_name(t).is_ok());
            if bare {
                return Ok(());
            }
            "a symbolic link to something other than a prefix name"
        } else if meta.is_dir() {
            "a folder"
        } else if meta.is_file() {
            "a regular file"
        } else {
            "a special file"
        };
        Err(PrefixError::ForeignCurrent { path: link, what })
    }

    /// Without a `current` link (an init killed before it set one), the
    /// workdir's only lago prefix stands for it; with none or several, a
    /// [`PrefixError::NoCurrent`] listing them.
    fn only_prefix(&self) -> R<String> {
        let known = self.prefixes().unwrap_or_default();
        let ours: Vec<&String> = known
            .iter()
            .filter(|n| owned::is_lago_prefix(&self.prefix_path(n)))
            .collect();
        match (
            fs::symlink_metadata(self.path.join(CURRENT)),
            ours.as_slice(),
        ) {
            (Err(e), [only]) if e.kind() == ErrorKind::NotFound => {
                tracing::debug!("no current link: using the only prefix, {only}");
                Ok((*only).clone())
            }
            _ => Err(PrefixError::NoCurrent {
                workdir: self.path.clone(),
                known,
            }),
        }
    }

    /// Point `current` at `name` (a relative link, replaced atomically).
    pub fn set_current(&self, name: &str) -> R<()> {
        check_prefix_name(name)?;
        let target = self.prefix_path(name);
        if !target.is_dir() {
            return Err(PrefixError::NoPrefix {
                workdir: self.path.clone(),
                name: name.to_string(),
                known: self.prefixes().unwrap_or_default(),
            });
        }
        let tmp = self
            .path
            .join(format!(".{CURRENT}.tmp.{}", std::process::id()));
        let _ = fs::remove_file(&tmp);
        std::os::unix::fs::symlink(name, &tmp).map_err(|e| PrefixError::io(&tmp, e))?;
        fs::rename(&tmp, self.path.join(CURRENT)).map_err(|e| PrefixError::io(&self.path, e))
    }

    /// Remove the workdir when nothing but what lago puts there is left in
    /// it (`current` link, lock file, marker) and no other lago process
    /// holds it (`lock`, held shared, must become exclusive). Returns
    /// whether it was removed; a workdir holding anything else stays.
    pub fn remove_if_unused(&self, lock: &lock::Lock) -> R<bool> {
        let own = [CURRENT, owned::WORKDIR_MARKER, lock::LOCK_FILE];
        let rd = fs::read_dir(&self.path).map_err(|e| PrefixError::io(&self.path, e))?;
        let mut others = Vec::new();
        for ent in rd.flatten() {
            let name = ent.file_name().to_string_lossy().into_owned();
            let is_own = own.contains(&name.as_str())
                && ent.file_type().is_ok_and(|t| {
                    if name == CURRENT {
                        t.is_symlink()
                    } else {
                        t.is_file()
                    }
                });
            if !is_own {
                others.push(name);
            }
        }
        if !others.is_empty() {
            let lago_prefixes = others
                .iter()
                .any(|n| owned::is_lago_prefix(&self.path.join(n)));
            if !lago_prefixes {
                tracing::warn!(
                    "left the workdir {}: it holds what lago did not make ({})",
                    self.path.display(),
                    others.join(", ")
                );
            }
            return Ok(false);
        }
        if !lock.try_upgrade()? {
            return Ok(false);
        }
        for name in own {
            let p = self.path.join(name);
            match fs::remove_file(&p) {
                Err(e) if e.kind() != ErrorKind::NotFound => return Err(PrefixError::io(&p, e)),
                _ => {}
            }
        }
        fs::remove_dir(&self.path).map_err(|e| PrefixError::io(&self.path, e))?;
        Ok(true)
    }

    /// Remove the `current` link.
    pub fn clear_current(&self) -> R<()> {
        let link = self.path.join(CURRENT);
        match fs::remove_file(&link) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(PrefixError::io(&link, e)),
            _ => Ok(()),
        }
    }

    /// Resolve a prefix name: `None` or `current` follow the `current` link.
    pub fn resolve(&self, name: Option<&str>) -> R<Prefix> {
        let name = match name {
            None | Some(CURRENT) => match self.current()? {
                Some(n) => n,
                None => self.only_prefix()?,
            },
            Some(n) => n.to_string(),
        };
        check_prefix_name(&name)?;
        let path = self.prefix_path(&name);
        if !path.is_dir() {
            return Err(PrefixError::NoPrefix {
                workdir: self.path.clone(),
                name,
                known: self.prefixes().unwrap_or_default(),
            });
        }
        Ok(Prefix {
            path,
            name,
            workdir: Some(self.path.clone()),
        })
    }
}

const PREFIX_NAME_RULE: &str = "expected a name of letters, digits, '.', '_' and '-', \
     starting with a letter or digit, at most 63 characters (no '/', no '..')";

/// Prefix names follow the init-file name rule (no `/`, no `..`, no leading
/// `.`), and `current` is the name of the link.
pub fn check_prefix_name(name: &str) -> R<()> {
    crate::initfile::check_name(name).map_err(|_| PrefixError::BadName {
        name: name.to_string(),
        why: PREFIX_NAME_RULE.into(),
    })?;
    if name == CURRENT {
        return Err(PrefixError::BadName {
            name: name.to_string(),
            why: "`current` is the name of the current-prefix link".into(),
        });
    }
    Ok(())
}

fn find_below(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if depth == 0 || out.len() >= 5 {
        return;
    }
    let Ok(rd) = fs::read_dir(dir) else { return };
    let mut subdirs: Vec<PathBuf> = rd
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    subdirs.sort();
    for d in subdirs {
        if d.file_name().is_some_and(|n| n == WORKDIR_NAME) {
            out.push(d);
        } else if !d
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            find_below(&d, depth - 1, out);
        }
    }
}

/// The header of the stored state (`virt/env`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct EnvHeader {
    lago_version: String,
    prefix: PrefixInfo,
    nets: Vec<String>,
    domains: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    hosts: BTreeMap<String, HostSpec>,
    #[serde(default)]
    extra: Extra,
}

/// A prefix folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefix {
    path: PathBuf,
    name: String,
    workdir: Option<PathBuf>,
}

impl Prefix {
    /// The prefix at `path` (deprecated `-p`: no workdir). It must exist.
    pub fn open(path: &Path) -> R<Prefix> {
        let path = Workdir::at(path).path;
        if !path.is_dir() {
            return Err(PrefixError::Missing { path });
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Prefix {
            path,
            name,
            workdir: None,
        })
    }

    /// A prefix handle without checking the folder (for init).
    pub fn at(path: PathBuf, name: String, workdir: Option<PathBuf>) -> Prefix {
        Prefix {
            path,
            name,
            workdir,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn workdir(&self) -> Option<&Path> {
        self.workdir.as_deref()
    }

    /// The prefix uuid (from the `uuid` file).
    pub fn uuid(&self) -> R<String> {
        let p = self.path.join("uuid");
        match fs::read_to_string(&p) {
            Ok(s) => Ok(s.trim().to_string()),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(PrefixError::NotInitialized {
                path: self.path.clone(),
            }),
            Err(e) => Err(PrefixError::io(&p, e)),
        }
    }

    pub fn is_initialized(&self) -> bool {
        self.path.join(INITIALIZED).is_file()
    }

    /// An error unless the `initialized` marker is there.
    pub fn require_initialized(&self) -> R<()> {
        if !self.path.is_dir() {
            return Err(PrefixError::Missing {
                path: self.path.clone(),
            });
        }
        if !self.is_initialized() {
            return Err(PrefixError::NotInitialized {
                path: self.path.clone(),
            });
        }
        Ok(())
    }

    /// Where the prefix is and who it is.
    pub fn info(&self) -> R<PrefixInfo> {
        Ok(PrefixInfo {
            name: self.name.clone(),
            path: self.path.clone(),
            workdir: self.workdir.clone(),
            uuid: self.uuid()?,
        })
    }

    fn virt(&self) -> PathBuf {
        self.path.join("virt")
    }

    /// Store the whole environment: every net and VM file, then the header.
    /// Files of nets and VMs no longer in `env` are removed.
    pub fn save_env(&self, env: &EnvSpec) -> R<()> {
        self.save_env_opt(env, WriteMode::Durable)
    }

    /// As [`Prefix::save_env`] without an fsync per file: the caller makes
    /// the batch durable (init does with [`sync_filesystem`] before the marker).
    pub(crate) fn save_env_opt(&self, env: &EnvSpec, how: WriteMode) -> R<()> {
        let _state = self.state_lock()?;
        let nets_dir = self.virt().join("nets");
        let vms_dir = self.virt().join("vms");
        for d in [&nets_dir, &vms_dir] {
            fs::create_dir_all(d).map_err(|e| PrefixError::io(d, e))?;
        }
        for net in env.nets.values() {
            self.write_json(&nets_dir.join(format!("{}.json", net.name)), net, how)?;
        }
        for vm in env.domains.values() {
            let stored = paths::to_stored(vm, &self.path);
            self.write_secret_json(&vms_dir.join(format!("{}.json", vm.name)), &stored, how)?;
        }
        let header = EnvHeader {
            lago_version: env!("CARGO_PKG_VERSION").to_string(),
            prefix: env.prefix.clone(),
            nets: env.nets.keys().cloned().collect(),
            domains: env.domains.keys().cloned().collect(),
            hosts: env.hosts.clone(),
            extra: env.extra.clone(),
        };
        self.write_json(&self.virt().join("env"), &header, how)?;
        prune(&nets_dir, &header.nets)?;
        prune(&vms_dir, &header.domains)?;
        Ok(())
    }

    /// Wait for and take the prefix's state lock ([`lock::StateLock`]).
    fn state_lock(&self) -> R<lock::StateLock> {
        lock::StateLock::take(&self.path)
    }

    fn vm_file(&self, name: &str) -> PathBuf {
        self.virt().join("vms").join(format!("{name}.json"))
    }

    /// Store one VM (it must already be in the environment), replacing what
    /// is stored. To change part of a stored VM use [`Prefix::update_vm`].
    pub fn save_vm(&self, vm: &VmSpec) -> R<()> {
        let _state = self.state_lock()?;
        self.write_vm(vm)
    }

    fn write_vm(&self, vm: &VmSpec) -> R<()> {
        self.write_secret_json(
            &self.vm_file(&vm.name),
            &paths::to_stored(vm, &self.path),
            WriteMode::Durable,
        )
    }

    /// Change the stored VM `name` with `change`, under the state lock: the
    /// spec is read from disk after the lock is taken, so changes made
    /// meanwhile by other processes are kept. Returns the VM as stored.
    /// Errors: the VM file missing or unreadable ([`PrefixError::Corrupt`],
    /// [`PrefixError::NotInitialized`]), or the write failing.
    pub fn update_vm(&self, name: &str, change: impl FnOnce(&mut VmSpec)) -> R<VmSpec> {
        let _state = self.state_lock()?;
        let mut vm: VmSpec = self.read_json(&self.vm_file(name))?;
        paths::from_stored(&mut vm, &self.path);
        change(&mut vm);
        self.write_vm(&vm)?;
        Ok(vm)
    }

    /// Store one network (it must already be in the environment).
    pub fn save_net(&self, net: &NetSpec) -> R<()> {
        let _state = self.state_lock()?;
        self.write_json(
            &self.virt().join("nets").join(format!("{}.json", net.name)),
            net,
            WriteMode::Durable,
        )
    }

    fn write_json<T: Serialize>(&self, path: &Path, v: &T, how: WriteMode) -> R<()> {
        self.write_json_mode(path, v, None, how)
    }

    /// A VM spec: it may hold `root-password`/`ssh-password`, so 0600.
    fn write_secret_json<T: Serialize>(&self, path: &Path, v: &T, how: WriteMode) -> R<()> {
        self.write_json_mode(path, v, Some(0o600), how)
    }

    fn write_json_mode<T: Serialize>(
        &self,
        path: &Path,
        v: &T,
        mode: Option<u32>,
        how: WriteMode,
    ) -> R<()> {
        let bytes = serde_json::to_vec_pretty(v).map_err(|e| PrefixError::Corrupt {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })?;
        write_mode(path, &bytes, mode, how).map_err(|e| PrefixError::io(path, e))
    }

    fn read_json<T: for<'de> Deserialize<'de>>(&self, path: &Path) -> R<T> {
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(if self.is_initialized() {
                    PrefixError::Corrupt {
                        path: path.to_path_buf(),
                        msg: "missing".into(),
                    }
                } else {
                    PrefixError::NotInitialized {
                        path: self.path.clone(),
                    }
                })
            }
            Err(e) => return Err(PrefixError::io(path, e)),
        };
        serde_json::from_slice(&bytes).map_err(|e| PrefixError::Corrupt {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })
    }

    /// Load the stored environment. Works on a prefix whose init did not
    /// finish as long as its state was written (destroy needs that); verbs
    /// that need a ready prefix call [`Prefix::require_initialized`] first.
    pub fn load_env(&self) -> R<EnvSpec> {
        if !self.path.is_dir() {
            return Err(PrefixError::Missing {
                path: self.path.clone(),
            });
        }
        let header: EnvHeader = self.read_json(&self.virt().join("env"))?;
        let mut env = EnvSpec {
            prefix: header.prefix,
            nets: Default::default(),
            domains: Default::default(),
            hosts: header.hosts,
            extra: header.extra,
        };
        // The prefix may have been reached through another path (a link).
        env.prefix.path = self.path.clone();
        if self.workdir.is_some() {
            env.prefix.workdir = self.workdir.clone();
        }
        for n in header.nets {
            let net: NetSpec =
                self.read_json(&self.virt().join("nets").join(format!("{n}.json")))?;
            env.nets.insert(n, net);
        }
        for d in header.domains {
            let mut vm: VmSpec =
                self.read_json(&self.virt().join("vms").join(format!("{d}.json")))?;
            paths::from_stored(&mut vm, &self.path);
            env.domains.insert(d, vm);
        }
        Ok(env)
    }

    /// Write the `initialized` marker (after a `syncfs`, so everything
    /// written before it is durable).
    pub fn mark_initialized(&self) -> R<()> {
        let _state = self.state_lock()?;
        sync_filesystem(&self.path).map_err(|e| PrefixError::io(&self.path, e))?;
        write_atomic(&self.path.join(INITIALIZED), b"", None)
            .map_err(|e| PrefixError::io(&self.path, e))
    }

    /// Remove the `initialized` marker.
    pub fn unmark_initialized(&self) -> R<()> {
        let _state = self.state_lock()?;
        let p = self.path.join(INITIALIZED);
        match fs::remove_file(&p) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(PrefixError::io(&p, e)),
            _ => Ok(()),
        }
    }

    /// An error unless lago made this prefix (its `uuid` file, see [`owned`]).
    pub fn require_lago(&self) -> R<()> {
        if owned::is_lago_prefix(&self.path) {
            return Ok(());
        }
        Err(PrefixError::NotLago {
            path: self.path.clone(),
            what: "prefix",
            why: "it has no uuid file of 32 hex characters",
        })
    }

    /// Take the prefix lock for `verb` (see [`lock`]).
    pub fn lock(&self, mode: lock::LockMode, verb: &str) -> R<lock::Lock> {
        lock::Lock::take(&self.path, mode, verb)
    }

    /// Whether nothing of this prefix was ever given to a hypervisor (its
    /// `not-started` marker; prefixes made before the marker existed count
    /// as started).
    pub fn never_started(&self) -> bool {
        self.path.join(NOT_STARTED).is_file()
    }

    /// Write the `not-started` marker (init, and a cleanup that removed
    /// everything from the hypervisor).
    pub fn mark_not_started(&self) -> R<()> {
        let _state = self.state_lock()?;
        let p = self.path.join(NOT_STARTED);
        write_atomic(&p, b"", None).map_err(|e| PrefixError::io(&p, e))
    }

    /// Remove the `not-started` marker: called before a provider is asked to
    /// create anything (start), so a prefix with the marker never needs its
    /// provider to be destroyed.
    pub fn mark_started(&self) -> R<()> {
        let _state = self.state_lock()?;
        let p = self.path.join(NOT_STARTED);
        match fs::remove_file(&p) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(PrefixError::io(&p, e)),
            _ => Ok(()),
        }
    }

    /// An error ([`PrefixError::Mounted`]) when a mount point (a bind mount
    /// of the same file system too) lies at or below the prefix folder:
    /// checked before anything of the prefix is removed.
    pub fn refuse_mounts(&self) -> R<()> {
        let mounts =
            owned::mounts_at_or_below(&self.path).map_err(|e| PrefixError::io(&self.path, e))?;
        if mounts.is_empty() {
            return Ok(());
        }
        Err(PrefixError::Mounted {
            path: self.path.clone(),
            mounts,
        })
    }

    /// Remove the prefix folder, only when lago made it, walking only what
    /// is in it (no symlink followed, no other file system entered; the
    /// `uuid` marker goes last). A prefix reached through a symlink loses
    /// only the link.
    pub fn remove(&self) -> R<()> {
        let meta = match fs::symlink_metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(PrefixError::io(&self.path, e)),
        };
        if meta.file_type().is_symlink() {
            return fs::remove_file(&self.path).map_err(|e| PrefixError::io(&self.path, e));
        }
        self.require_lago()?;
        self.refuse_mounts()?;
        let left = owned::remove_tree(&self.path, &[owned::PREFIX_MARKER, NOT_STARTED])
            .map_err(|e| PrefixError::io(&self.path, e))?;
        if left.is_empty() {
            Ok(())
        } else {
            Err(PrefixError::OtherFileSystem {
                path: self.path.clone(),
                left,
            })
        }
    }
}

fn prune(dir: &Path, keep: &[String]) -> R<()> {
    let keep: BTreeSet<String> = keep.iter().map(|k| format!("{k}.json")).collect();
    let rd = fs::read_dir(dir).map_err(|e| PrefixError::io(dir, e))?;
    for ent in rd.flatten() {
        let name = ent.file_name().to_string_lossy().into_owned();
        if name.ends_with(".json") && !keep.contains(&name) {
            let _ = fs::remove_file(ent.path());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
