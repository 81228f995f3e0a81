//! Plugins: the one registry of built-in and loaded plugins of the five kinds.
//!
//! * Built-ins (the out-formats `default`, `json`, `yaml`, `flat` and the
//!   `default` vm-type) implement the same plain traits as third-party
//!   plugins and register a [`PluginSet`] through `inventory` ([`Builtin`]).
//! * Libraries (`lib*.so`) are found on the search path ([`discovery`]) and
//!   loaded with abi_stable ([`load`]); each gives a [`PluginSet`] too.
//!
//! Both end in [`Registry`], keyed by (kind, name), with each plugin's source
//! and interface version. Libraries are loaded lazily: [`Registry::builtins`]
//! costs no `dlopen`; [`Registry::load_libraries`] is called by the verbs
//! that need more.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use abi_stable::std_types::RResult;
use lago_plugin_api::abi::{CliVerbBox, OutFormatBox, VmProviderBox, VmServiceBox, VmTypeBox};
use lago_plugin_api::{PluginError, PluginSet, INTERFACE_VERSION};
use serde::Serialize;

use crate::error::Error;

pub mod default_vm_type;
pub mod discovery;
pub mod host;
pub mod load;

pub use discovery::SearchPath;

/// A built-in plugin set, registered with `inventory::submit!`:
///
/// ```ignore
/// fn plugins() -> PluginSet { PluginSet::new().out_format("json", Json) }
/// inventory::submit! { crate::plugins::Builtin(plugins) }
/// ```
pub struct Builtin(pub fn() -> PluginSet);

inventory::collect!(Builtin);

/// The five plugin kinds (Lago's entry-point groups).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum PluginKind {
    #[serde(rename = "out-format")]
    OutFormat,
    #[serde(rename = "cli")]
    Cli,
    #[serde(rename = "vm-type")]
    VmType,
    #[serde(rename = "vm-provider")]
    VmProvider,
    #[serde(rename = "vm-service")]
    VmService,
}

impl PluginKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::OutFormat => "out-format",
            PluginKind::Cli => "cli",
            PluginKind::VmType => "vm-type",
            PluginKind::VmProvider => "vm-provider",
            PluginKind::VmService => "vm-service",
        }
    }
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a plugin comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    BuiltIn,
    Library(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::BuiltIn => f.write_str("built-in"),
            Source::Library(p) => write!(f, "{}", p.display()),
        }
    }
}

/// One registered plugin.
pub struct Entry<T> {
    pub name: String,
    pub source: Source,
    /// The interface version it was built against.
    pub version: String,
    pub plugin: T,
}

/// What `lago plugins` shows about one plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PluginInfo {
    pub kind: PluginKind,
    pub name: String,
    pub source: String,
    pub version: String,
}

/// Errors of building the registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("two {kind} plugins are named `{name}`: {first} and {second}; remove one of them")]
    Duplicate {
        kind: PluginKind,
        name: String,
        first: String,
        second: String,
    },
    #[error("built-in plugin set: {0}")]
    Builtin(PluginError),
}

impl From<RegistryError> for Error {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Duplicate { .. } => Error::user_from(&e),
            RegistryError::Builtin(_) => Error::internal_from(&e),
        }
    }
}

/// The one registry of plugins, by kind and name.
#[derive(Default)]
pub struct Registry {
    pub out_formats: BTreeMap<String, Entry<OutFormatBox>>,
    pub verbs: BTreeMap<String, Entry<CliVerbBox>>,
    pub vm_types: BTreeMap<String, Entry<VmTypeBox>>,
    pub providers: BTreeMap<String, Entry<VmProviderBox>>,
    pub services: BTreeMap<String, Entry<VmServiceBox>>,
    libraries_loaded: bool,
    /// One line per library skipped as incompatible (already logged).
    pub skipped: Vec<String>,
}

impl Registry {
    /// The built-in plugins only (no library is opened).
    pub fn builtins() -> Result<Registry, RegistryError> {
        let mut reg = Registry::default();
        for b in inventory::iter::<Builtin> {
            reg.add_set((b.0)(), Source::BuiltIn, INTERFACE_VERSION)?;
        }
        Ok(reg)
    }

    /// Whether [`Registry::load_libraries`] ran.
    pub fn libraries_loaded(&self) -> bool {
        self.libraries_loaded
    }

    /// Load every plugin library on `path` (once). Incompatible libraries
    /// are skipped with one warning each; duplicates are an error.
    pub fn load_libraries(&mut self, path: &SearchPath) -> Result<(), RegistryError> {
        if self.libraries_loaded {
            return Ok(());
        }
        self.libraries_loaded = true;
        for file in path.candidates() {
            match load::load_library(&file) {
                Ok(Some(lib)) => self.add_set(lib.set, Source::Library(file), &lib.version)?,
                Ok(None) => {}
                Err(skip) => {
                    tracing::warn!("{}", skip.warning_line());
                    tracing::debug!("{}: {}", file.display(), skip.details);
                    self.skipped.push(skip.warning_line());
                }
            }
        }
        Ok(())
    }

    /// Register every plugin of `set`.
    pub fn add_set(
        &mut self,
        set: PluginSet,
        source: Source,
        version: &str,
    ) -> Result<(), RegistryError> {
        let PluginSet {
            out_formats,
            verbs,
            vm_types,
            providers,
            services,
        } = set;
        fn add<T>(
            map: &mut BTreeMap<String, Entry<T>>,
            kind: PluginKind,
            items: impl IntoIterator<Item = lago_plugin_api::Named<T>>,
            source: &Source,
            version: &str,
        ) -> Result<(), RegistryError> {
            for item in items {
                let name = item.name.into_string();
                if let Some(prev) = map.get(&name) {
                    return Err(RegistryError::Duplicate {
                        kind,
                        name,
                        first: prev.source.to_string(),
                        second: source.to_string(),
                    });
                }
                map.insert(
                    name.clone(),
                    Entry {
                        name,
                        source: source.clone(),
                        version: version.to_string(),
                        plugin: item.plugin,
                    },
                );
            }
            Ok(())
        }
        add(
            &mut self.out_formats,
            PluginKind::OutFormat,
            out_formats,
            &source,
            version,
        )?;
        add(&mut self.verbs, PluginKind::Cli, verbs, &source, version)?;
        add(
            &mut self.vm_types,
            PluginKind::VmType,
            vm_types,
            &source,
            version,
        )?;
        add(
            &mut self.providers,
            PluginKind::VmProvider,
            providers,
            &source,
            version,
        )?;
        add(
            &mut self.services,
            PluginKind::VmService,
            services,
            &source,
            version,
        )?;
        Ok(())
    }

    /// Every plugin, sorted by kind then name.
    pub fn list(&self) -> Vec<PluginInfo> {
        fn infos<T>(kind: PluginKind, map: &BTreeMap<String, Entry<T>>) -> Vec<PluginInfo> {
            map.values()
                .map(|e| PluginInfo {
                    kind,
                    name: e.name.clone(),
                    source: e.source.to_string(),
                    version: e.version.clone(),
                })
                .collect()
        }
        let mut all = infos(PluginKind::OutFormat, &self.out_formats);
        all.extend(infos(PluginKind::Cli, &self.verbs));
        all.extend(infos(PluginKind::VmType, &self.vm_types));
        all.extend(infos(PluginKind::VmProvider, &self.providers));
        all.extend(infos(PluginKind::VmService, &self.services));
        all
    }

    /// Render `tree` with the out-format `name`.
    pub fn format(&self, name: &str, tree: &serde_json::Value) -> Result<String, Error> {
        let entry = self.out_formats.get(name).ok_or_else(|| {
            Error::user(format!(
                "unknown out-format `{name}` (available: {})",
                self.out_formats
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        let json = serde_json::to_string(tree)?;
        into_result(entry.plugin.format(json.as_str().into()))
            .map(|s| s.into_string())
            .map_err(Error::from)
    }
}

/// `RResult` → `Result`.
pub fn into_result<T>(r: RResult<T, PluginError>) -> Result<T, PluginError> {
    match r {
        RResult::ROk(v) => Ok(v),
        RResult::RErr(e) => Err(e),
    }
}
