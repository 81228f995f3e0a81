//! The library API under the `lago` CLI, shaped after Lago's Python SDK
//! (`lago.sdk`): [`init`] an environment from an init file, or [`load_env`]
//! one that exists, then drive it through [`Env`], its [`Vm`]s and [`Net`]s.
//!
//! ```no_run
//! use std::path::Path;
//! use lago::sdk::{self, InitOptions};
//!
//! # fn main() -> Result<(), lago::sdk::SdkError> {
//! let env = sdk::init(Path::new("LagoInitFile"), Path::new("/tmp/wd"), &InitOptions::default())?;
//! env.start(&[])?;
//! let vm = env.get_vm("vm01")?;
//! let status = vm.ssh(&["hostname"])?;
//! assert_eq!(status.code, 0);
//! env.destroy()?;
//! # Ok(())
//! # }
//! ```
//!
//! The CLI verbs call the same functions through [`init_with`] and
//! [`Env::open`] with the registry and configuration of their
//! [`Context`](crate::cli::Context); [`init`] and [`load_env`] load the
//! configuration themselves (files, `LAGO__SECTION__KEY` variables, the
//! options' overrides) and use one plugin registry per process.
//!
//! Every call returns [`SdkError`], whose kinds a caller can match and whose
//! messages are the CLI's.

mod disks;
mod env;
mod error;
mod prefix_ops;
mod status;
mod vm;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use crate::environment::Env;
pub use crate::ops::DestroyTarget;
pub use crate::ssh::CommandStatus;
pub use crate::workflows::collect::VmCollection;
pub use crate::workflows::deploy::ScriptRun;
pub use disks::ExportOptions;
pub use env::Collection;
pub use error::SdkError;
pub use prefix_ops::{ansible_inventory, cleanup, destroy};
pub use status::{prefix_status, status_tree};
pub use vm::{Net, Service, Vm};

use crate::config::Config;
use crate::ops::init::{PrepareOptions, RepoChoice};
use crate::ops::{InitRequest, WithPlugins};
use crate::plugins::{Registry, SearchPath};
use crate::prefix::{Prefix, Workdir, DEFAULT_PREFIX};

/// What [`init`] is asked for beyond the init file and the workdir: Lago's
/// `lago init` options (`sdk.init(**kwargs)`).
#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    /// The prefix name in the workdir; `None` is `default` (`current` is
    /// refused: it names the current-prefix link).
    pub prefix_name: Option<String>,
    /// Deprecated `-p`: create the prefix exactly here, with no workdir.
    pub prefix_path: Option<PathBuf>,
    /// Point the workdir's `current` at the new prefix.
    pub set_current: bool,
    /// `--template-repo-path`: a repository file or URL.
    pub template_repo_path: Option<String>,
    /// `--template-repo-name`: a repository in `template_repos`.
    pub template_repo_name: Option<String>,
    /// `--template-store`: where templates are stored.
    pub template_store: Option<PathBuf>,
    /// `--template-repos`: where repository files are looked for.
    pub template_repos: Option<PathBuf>,
    /// `--skip-bootstrap`: no VM is bootstrapped.
    pub skip_bootstrap: bool,
    /// `--skip-build`: the disks' `build` sections are dropped.
    pub skip_build: bool,
    /// `--ssh-key`: a private key (unencrypted, OpenSSH or PEM) the VMs
    /// already accept; the prefix uses a 0600 copy of it instead of a
    /// generated key, and no VM is bootstrapped (as with `skip_bootstrap`:
    /// the key is already installed in the images, Lago's use of it).
    pub ssh_key: Option<PathBuf>,
    /// Where to find the configuration and the plugins.
    pub load: LoadOptions,
}

/// How [`init`] and [`load_env`] find their configuration and plugins.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Configuration overrides `(section, key, value)`, applied over the
    /// configuration files and `LAGO__SECTION__KEY` variables (e.g.
    /// `("lago", "ssh_tries", "20")`).
    pub config: Vec<(String, String, String)>,
    /// A folder whose `liblago_*.so` plugin libraries are loaded (as the
    /// `lago` binary loads those beside it); `None`: the running program's
    /// folder. `$LAGO_PLUGIN_PATH` and the usual folders are searched too.
    /// Only the first call of a process loads plugins (see [`registry`]).
    pub plugin_dir: Option<PathBuf>,
}

impl LoadOptions {
    /// The configuration: files, `LAGO__SECTION__KEY` variables, overrides.
    pub fn config(&self) -> Result<Config, SdkError> {
        let config = Config::load(&self.config)
            .map_err(|e| SdkError::BadInput(crate::error::render_chain(&e)))?;
        // Plugins read the configuration through the host (`Host::config`).
        crate::plugins::host::set_config(&config);
        Ok(config)
    }
}

/// The `plugins` folder of the Python package this library runs in, set by
/// [`set_package_plugin_dir`].
static PACKAGE_PLUGIN_DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Search `dir` too for plugin libraries (`liblago_*.so`), after every other
/// folder: the Python package `lago` calls this at import with the folder
/// its wheel carries the default plugins in. Only the first call counts,
/// and only before the first [`registry`] call.
pub fn set_package_plugin_dir(dir: PathBuf) {
    let _ = PACKAGE_PLUGIN_DIR.set(dir);
}

/// The plugin registry of this process: the built-ins and every plugin
/// library on the search path, loaded on the first call (later calls get the
/// same registry whatever their `plugin_dir`: libraries are never unloaded).
pub fn registry(plugin_dir: Option<&Path>) -> Result<&'static Registry, SdkError> {
    static REGISTRY: Mutex<Option<&'static Registry>> = Mutex::new(None);
    let mut slot = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(reg) = *slot {
        return Ok(reg);
    }
    crate::plugins::host::install_for_builtins();
    let mut reg = Registry::builtins().map_err(crate::error::Error::from)?;
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf));
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let path = SearchPath::new(
        std::env::var_os(crate::plugins::discovery::PLUGIN_PATH_VAR).as_deref(),
        home.as_deref(),
        plugin_dir.or(exe_dir.as_deref()),
    )
    .with_package_dir(PACKAGE_PLUGIN_DIR.get().map(PathBuf::as_path));
    reg.load_all(&path).map_err(crate::error::Error::from)?;
    // One registry for the life of the process, shared by every Env.
    let reg: &'static Registry = Box::leak(Box::new(reg));
    *slot = Some(reg);
    Ok(reg)
}

/// Lago's `sdk.init`: plan the environment of `init_file` in a new prefix of
/// `workdir` (created when missing), lease its subnets, prepare its disks
/// from templates and bootstrap them; returns the environment, not started.
/// Nothing is left behind when it fails.
///
/// Errors: [`SdkError::BadInput`] for a refused init file, an existing
/// prefix or an unknown template; [`SdkError::Provider`] when a provider
/// cannot prepare a disk; [`SdkError::Internal`] for I/O failures.
pub fn init(
    init_file: &Path,
    workdir: &Path,
    options: &InitOptions,
) -> Result<Env<'static>, SdkError> {
    let config = options.load.config()?;
    let registry = registry(options.load.plugin_dir.as_deref())?;
    init_with(config, registry, init_file, workdir, options)
}

/// [`init`] with a configuration and registry the caller has (the CLI's).
/// `options.load` is not used.
pub fn init_with<'r>(
    mut config: Config,
    registry: &'r Registry,
    init_file: &Path,
    workdir: &Path,
    options: &InitOptions,
) -> Result<Env<'r>, SdkError> {
    if let Some(v) = &options.template_store {
        config.set("init", "template_store", v.display().to_string());
    }
    if let Some(v) = &options.template_repos {
        config.set("init", "template_repos", v.display().to_string());
    }
    let req = InitRequest {
        init_file: init_file.to_path_buf(),
        workdir: workdir.to_path_buf(),
        // `current` is refused by the name rule: it is the link's name.
        prefix_name: options
            .prefix_name
            .clone()
            .unwrap_or_else(|| DEFAULT_PREFIX.to_string()),
        prefix_path: options.prefix_path.clone(),
        set_current: options.set_current,
        service_providers: Some(registry.services.keys().cloned().collect()),
        ssh_key: options.ssh_key.clone(),
    };
    let repo = RepoChoice {
        path: options.template_repo_path.clone(),
        name: options.template_repo_name.clone(),
    };
    let mut plugins = WithPlugins {
        registry,
        config: &config,
        repo,
        options: PrepareOptions {
            skip_bootstrap: options.skip_bootstrap || options.ssh_key.is_some(),
            skip_build: options.skip_build,
        },
    };
    let (prefix, _) = crate::progress::task("Initialize and populate prefix", || {
        crate::ops::init(&req, &config, &mut plugins)
    })?;
    Env::open(prefix, config, registry)
}

/// Lago's `sdk.load_env`: the initialized environment of the prefix
/// `prefix_name` of `workdir` (`None` or `current`: the workdir's current
/// prefix), e.g. one another process made with [`init`].
///
/// A prefix another process is initializing is waited for (up to
/// [`INIT_WAIT`]).
///
/// Errors: [`SdkError::NotFound`] for a missing workdir or prefix,
/// [`SdkError::BadInput`] for a prefix whose init did not finish (or is
/// still running after [`INIT_WAIT`]).
pub fn load_env(
    workdir: &Path,
    prefix_name: Option<&str>,
    options: &LoadOptions,
) -> Result<Env<'static>, SdkError> {
    let config = options.config()?;
    let registry = registry(options.plugin_dir.as_deref())?;
    let name = prefix_name.filter(|n| *n != "current");
    if let Some(n) = name {
        crate::prefix::check_prefix_name(n)?;
    }
    let workdir = Workdir::open(workdir)?;
    let prefix = match workdir.resolve(name) {
        Ok(prefix) => prefix,
        // The current prefix is set when its init ends: the workdir's only
        // prefix, being initialized by another process, is waited for.
        Err(e) if name.is_none() => match workdir.prefixes()?.as_slice() {
            [only] => {
                wait_for_init(&workdir.resolve(Some(only.as_str()))?)?;
                workdir.resolve(None).map_err(|_| e)?
            }
            _ => return Err(e.into()),
        },
        Err(e) => return Err(e.into()),
    };
    wait_for_init(&prefix)?;
    Env::open(prefix, config, registry)
}

/// How long [`load_env`] waits for another process's init of the prefix.
pub const INIT_WAIT: Duration = Duration::from_secs(600);
/// How long a prefix folder without its uuid and without a lock holder is
/// taken for an init that is just starting (it makes the folder, then takes
/// the lock).
const INIT_GRACE: Duration = Duration::from_secs(3);

/// Returns once `prefix` is initialized, waiting (up to [`INIT_WAIT`]) while
/// another process's init holds it; an init that did not finish and is not
/// running is left to [`Env::open`]'s error.
fn wait_for_init(prefix: &Prefix) -> Result<(), SdkError> {
    let started = Instant::now();
    loop {
        if prefix.is_initialized() || !prefix.path().is_dir() {
            return Ok(());
        }
        let holder = crate::prefix::lock::holder(prefix.path());
        let waited = started.elapsed();
        match holder {
            Some(holder) if waited >= INIT_WAIT => {
                return Err(SdkError::BadInput(format!(
                    "the prefix {} is being initialized by another process ({holder}): its \
                     init is still running after {} s; load it again when that init is done",
                    prefix.path().display(),
                    waited.as_secs()
                )))
            }
            Some(_) => {}
            // No holder: an init that is about to take the lock (no uuid
            // yet), else one that ended without finishing.
            None if waited < INIT_GRACE && !prefix.path().join("uuid").exists() => {}
            None => return Ok(()),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Python and test threads share an Env: it must cross threads.
    #[test]
    fn env_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Env<'static>>();
        check::<Service<'static>>();
    }
}
