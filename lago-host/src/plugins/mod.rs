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
//! costs no `dlopen`; [`Registry::scan`] learns what every library holds
//! (from the [`cache`] index when the file is unchanged, else by opening
//! it); [`Registry::load_where`] and [`Registry::load_all`] open the
//! libraries a command needs.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use abi_stable::std_types::RResult;
use lago_plugin_api::abi::{CliVerbBox, OutFormatBox, VmProviderBox, VmServiceBox, VmTypeBox};
use lago_plugin_api::{PluginError, PluginSet, INTERFACE_VERSION};
use serde::{Deserialize, Serialize};

use crate::error::Error;

pub mod cache;
pub mod client;
pub mod default_vm_type;
pub mod discovery;
pub mod host;
pub mod load;
pub mod states;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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

/// One library on the search path and what is known of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Library {
    pub path: PathBuf,
    pub state: LibState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LibState {
    /// Known from the index, not opened by this process.
    Indexed {
        version: String,
        plugins: Vec<(PluginKind, String)>,
    },
    /// Opened: its plugins are in the registry's maps.
    Loaded { version: String },
    /// A lago plugin library that was refused (warned about).
    Skipped,
    /// Not a lago plugin library.
    NotPlugin,
}

/// The one registry of plugins, by kind and name.
#[derive(Default)]
pub struct Registry {
    pub out_formats: BTreeMap<String, Entry<OutFormatBox>>,
    pub verbs: BTreeMap<String, Entry<CliVerbBox>>,
    pub vm_types: BTreeMap<String, Entry<VmTypeBox>>,
    pub providers: BTreeMap<String, Entry<VmProviderBox>>,
    pub services: BTreeMap<String, Entry<VmServiceBox>>,
    /// Every candidate library, in search order (after [`Registry::scan`]).
    pub libraries: Vec<Library>,
    scanned: bool,
    /// One line per library skipped as incompatible (already logged).
    pub skipped: Vec<String>,
    /// Plugins of loaded libraries whose (kind, name) was already taken: not
    /// callable, but listed (see [`Registry::conflicts`]).
    shadowed: Vec<PluginInfo>,
}

/// Two or more plugins of one kind and name, in search order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub kind: PluginKind,
    pub name: String,
    /// Every plugin of that kind and name (at least two), first found first.
    pub plugins: Vec<PluginInfo>,
}

impl Conflict {
    /// The error a command that needs this plugin refuses with.
    pub fn error(&self) -> RegistryError {
        let source = |i: usize| {
            self.plugins
                .get(i)
                .map(|p| p.source.clone())
                .unwrap_or_default()
        };
        RegistryError::Duplicate {
            kind: self.kind,
            name: self.name.clone(),
            first: source(0),
            second: source(1),
        }
    }
}

fn names_of(set: &PluginSet) -> Vec<(PluginKind, String)> {
    let mut v = Vec::new();
    v.extend(
        set.out_formats
            .iter()
            .map(|n| (PluginKind::OutFormat, n.name.to_string())),
    );
    v.extend(
        set.verbs
            .iter()
            .map(|n| (PluginKind::Cli, n.name.to_string())),
    );
    v.extend(
        set.vm_types
            .iter()
            .map(|n| (PluginKind::VmType, n.name.to_string())),
    );
    v.extend(
        set.providers
            .iter()
            .map(|n| (PluginKind::VmProvider, n.name.to_string())),
    );
    v.extend(
        set.services
            .iter()
            .map(|n| (PluginKind::VmService, n.name.to_string())),
    );
    v
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

    /// Whether [`Registry::scan`] ran.
    pub fn scanned(&self) -> bool {
        self.scanned
    }

    /// Learn what every library on `path` holds (once): from the index for
    /// unchanged files, else by opening them. Incompatible libraries are
    /// skipped with one warning each. Two plugins of one kind and name are
    /// kept for listing ([`Registry::conflicts`]); a command that needs one
    /// of them refuses ([`Registry::load_where`]).
    pub fn scan(&mut self, path: &SearchPath) -> Result<(), RegistryError> {
        self.scan_with_index(path, cache::Index::open(cache::Index::default_path()))
    }

    /// [`Registry::scan`] with a given index (tests).
    pub fn scan_with_index(
        &mut self,
        path: &SearchPath,
        mut index: cache::Index,
    ) -> Result<(), RegistryError> {
        if self.scanned {
            return Ok(());
        }
        self.scanned = true;
        let candidates = path.candidates();
        index.retain(&candidates);
        let mut result = Ok(());
        for file in candidates {
            let id = cache::FileId::of(&file);
            let cached = id.as_ref().and_then(|id| index.lookup(&file, id).cloned());
            let state = match cached {
                Some(outcome) => {
                    tracing::debug!("{}: known from the plugin index", file.display());
                    match outcome {
                        cache::Outcome::NotPlugin => LibState::NotPlugin,
                        cache::Outcome::Skipped { warning, details } => {
                            tracing::warn!("{warning}");
                            tracing::debug!("{}: {details}", file.display());
                            self.skipped.push(warning);
                            LibState::Skipped
                        }
                        cache::Outcome::Plugins { version, plugins } => {
                            LibState::Indexed { version, plugins }
                        }
                    }
                }
                None => {
                    let (state, outcome) = self.open_library(&file);
                    if let (Some(id), Some(outcome)) = (id, outcome) {
                        index.record(&file, id, outcome);
                    }
                    match state {
                        Ok(s) => s,
                        Err(e) => {
                            result = Err(e);
                            break;
                        }
                    }
                }
            };
            self.libraries.push(Library { path: file, state });
        }
        index.save();
        result
    }

    /// Open `file` and register its plugins; the outcome to keep in the
    /// index (none when it may change while the file does not).
    fn open_library(
        &mut self,
        file: &std::path::Path,
    ) -> (Result<LibState, RegistryError>, Option<cache::Outcome>) {
        match load::load_library(file) {
            Ok(Some(lib)) => {
                let plugins = names_of(&lib.set);
                let version = lib.version.clone();
                let r = self
                    .add_set(lib.set, Source::Library(file.to_path_buf()), &lib.version)
                    .map(|()| LibState::Loaded {
                        version: version.clone(),
                    });
                (r, Some(cache::Outcome::Plugins { version, plugins }))
            }
            Ok(None) => (Ok(LibState::NotPlugin), Some(cache::Outcome::NotPlugin)),
            Err(skip) => {
                let warning = skip.warning_line();
                tracing::warn!("{warning}");
                tracing::debug!("{}: {}", file.display(), skip.details);
                self.skipped.push(warning.clone());
                let outcome = skip.lasting.then_some(cache::Outcome::Skipped {
                    warning,
                    details: skip.details,
                });
                (Ok(LibState::Skipped), outcome)
            }
        }
    }

    /// Every (kind, name) that two or more plugins claim (built-in, loaded
    /// or indexed), in search order.
    pub fn conflicts(&self) -> Vec<Conflict> {
        let mut by_key: BTreeMap<(PluginKind, String), Vec<PluginInfo>> = BTreeMap::new();
        for info in self.list() {
            let same = by_key.entry((info.kind, info.name.clone())).or_default();
            if !same.iter().any(|p| p.source == info.source) {
                same.push(info);
            }
        }
        by_key
            .into_iter()
            .filter(|(_, plugins)| plugins.len() > 1)
            .map(|((kind, name), plugins)| Conflict {
                kind,
                name,
                plugins,
            })
            .collect()
    }

    /// Open every scanned library whose index lists a plugin matching `want`.
    /// A plugin `want` accepts that two libraries (or a library and a
    /// built-in) provide is an error naming both.
    pub fn load_where(
        &mut self,
        path: &SearchPath,
        want: impl Fn(PluginKind, &str) -> bool,
    ) -> Result<(), RegistryError> {
        self.scan(path)?;
        for i in 0..self.libraries.len() {
            let wanted = match &self.libraries[i].state {
                LibState::Indexed { plugins, .. } => plugins.iter().any(|(k, n)| want(*k, n)),
                _ => false,
            };
            if wanted {
                self.load_indexed(i)?;
            }
        }
        match self.conflicts().into_iter().find(|c| want(c.kind, &c.name)) {
            Some(c) => Err(c.error()),
            None => Ok(()),
        }
    }

    /// Open every library on `path`.
    pub fn load_all(&mut self, path: &SearchPath) -> Result<(), RegistryError> {
        self.load_where(path, |_, _| true)
    }

    /// Same as [`Registry::load_all`].
    pub fn load_libraries(&mut self, path: &SearchPath) -> Result<(), RegistryError> {
        self.load_all(path)
    }

    fn load_indexed(&mut self, i: usize) -> Result<(), RegistryError> {
        let file = self.libraries[i].path.clone();
        tracing::debug!("{}: opening (indexed)", file.display());
        let (state, _) = self.open_library(&file);
        self.libraries[i].state = state?;
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
        fn add_named<T>(
            map: &mut BTreeMap<String, Entry<T>>,
            kind: PluginKind,
            items: impl IntoIterator<Item = lago_plugin_api::Named<T>>,
            source: &Source,
            version: &str,
            shadowed: &mut Vec<PluginInfo>,
        ) {
            for item in items {
                let name = item.name.into_string();
                if map.contains_key(&name) {
                    // The first one found keeps the name; this one is listed.
                    shadowed.push(PluginInfo {
                        kind,
                        name,
                        source: source.to_string(),
                        version: version.to_string(),
                    });
                    continue;
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
        }
        add_named(
            &mut self.out_formats,
            PluginKind::OutFormat,
            out_formats,
            &source,
            version,
            &mut self.shadowed,
        );
        add_named(
            &mut self.verbs,
            PluginKind::Cli,
            verbs,
            &source,
            version,
            &mut self.shadowed,
        );
        add_named(
            &mut self.vm_types,
            PluginKind::VmType,
            vm_types,
            &source,
            version,
            &mut self.shadowed,
        );
        add_named(
            &mut self.providers,
            PluginKind::VmProvider,
            providers,
            &source,
            version,
            &mut self.shadowed,
        );
        add_named(
            &mut self.services,
            PluginKind::VmService,
            services,
            &source,
            version,
            &mut self.shadowed,
        );
        Ok(())
    }

    /// Every plugin (loaded, indexed or shadowed), sorted by kind then name.
    /// Plugins of one kind and name are in search order (built-in first).
    pub fn list(&self) -> Vec<PluginInfo> {
        let rank = |source: &str| {
            if source == Source::BuiltIn.to_string() {
                return 0;
            }
            self.libraries
                .iter()
                .position(|l| l.path.as_os_str() == std::ffi::OsStr::new(source))
                .map_or(usize::MAX, |i| i + 1)
        };
        let mut all = self.list_unsorted();
        all.sort_by_cached_key(|p| (p.kind, p.name.clone(), rank(&p.source)));
        all
    }

    fn list_unsorted(&self) -> Vec<PluginInfo> {
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
        all.extend(self.shadowed.iter().cloned());
        for lib in &self.libraries {
            if let LibState::Indexed { version, plugins } = &lib.state {
                all.extend(plugins.iter().map(|(kind, name)| PluginInfo {
                    kind: *kind,
                    name: name.clone(),
                    source: lib.path.display().to_string(),
                    version: version.clone(),
                }));
            }
        }
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
