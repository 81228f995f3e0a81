//! Loading one plugin library with abi_stable.
//!
//! Each file is opened with `lib_header_from_path(path)?.init_root_module()`
//! (never `RootModule::load_from_*`, which keeps one library per interface
//! type and would hand back the first plugin for every later file).
//! Libraries are never unloaded.

use std::fmt;
use std::path::{Path, PathBuf};

use abi_stable::library::{lib_header_from_path, LibraryError, RootModule};
use lago_plugin_api::{LagoPluginRef, PluginSet, INTERFACE_VERSION};

use super::host::new_host_object;
use super::into_result;

/// A loaded library's plugins and the interface version it was built with.
pub struct LoadedLibrary {
    pub set: PluginSet,
    pub version: String,
}

/// Why a lago plugin library was refused.
#[derive(Debug, Clone)]
pub struct Skipped {
    pub path: PathBuf,
    /// One line, for the warning.
    pub reason: String,
    /// Everything abi_stable said, for the debug log.
    pub details: String,
}

impl Skipped {
    /// The one warning line shown for a refused library.
    pub fn warning_line(&self) -> String {
        format!(
            "skipping plugin library {}: {}",
            self.path.display(),
            self.reason
        )
    }
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.warning_line())
    }
}

/// `major.minor.patch` of a version string (pre-release suffix ignored).
fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let core = v.split(['-', '+']).next()?;
    let mut it = core.split('.').map(|p| p.parse::<u64>().ok());
    Some((it.next()??, it.next()??, it.next()??))
}

/// The compatibility rule: same major, and before 1.0 the same minor.
pub fn compatible(host: &str, lib: &str) -> bool {
    match (parse_version(host), parse_version(lib)) {
        (Some((hm, hn, _)), Some((lm, ln, _))) => hm == lm && (hm != 0 || hn == ln),
        _ => false,
    }
}

/// The versions a host built against `host` accepts, for messages (`0.1.x`).
pub fn accepted_range(host: &str) -> String {
    match parse_version(host) {
        Some((0, minor, _)) => format!("0.{minor}.x"),
        Some((major, _, _)) => format!("{major}.x"),
        None => host.to_string(),
    }
}

/// Open `path`. `Ok(None)`: not a lago plugin library (skipped quietly).
/// `Err`: a lago plugin library that cannot be used (one warning).
pub fn load_library(path: &Path) -> Result<Option<LoadedLibrary>, Skipped> {
    let skip = |reason: String, details: String| Skipped {
        path: path.to_path_buf(),
        reason,
        details,
    };
    let header = match lib_header_from_path(path) {
        Ok(h) => h,
        Err(LibraryError::OpenError { err, .. }) => {
            tracing::debug!("{}: not loadable, skipped: {err}", path.display());
            return Ok(None);
        }
        Err(LibraryError::GetSymbolError { .. }) => {
            tracing::debug!("{}: not a lago plugin (no root module)", path.display());
            return Ok(None);
        }
        Err(e) => {
            return Err(skip(
                "it was built with an incompatible abi_stable".to_string(),
                e.to_string(),
            ))
        }
    };
    let consts = header.root_mod_consts();
    if consts.name().as_str() != LagoPluginRef::NAME {
        tracing::debug!(
            "{}: an abi_stable library for `{}`, not a lago plugin",
            path.display(),
            consts.name()
        );
        return Ok(None);
    }
    let version = header.version_strings().version.to_string();
    if !compatible(INTERFACE_VERSION, &version) {
        return Err(skip(
            format!(
                "built against lago-plugin-api {version}, this lago needs {}",
                accepted_range(INTERFACE_VERSION)
            ),
            format!("interface version {version}, host interface {INTERFACE_VERSION}"),
        ));
    }
    let module = header.init_root_module::<LagoPluginRef>().map_err(|e| {
        let reason = match &e {
            LibraryError::AbiInstability(_) => format!(
                "its interface layout does not match this lago's (lago-plugin-api {version}); \
                 rebuild it against lago-plugin-api {INTERFACE_VERSION} \
                 (details with --loglevel debug)"
            ),
            LibraryError::IncompatibleVersionNumber { .. } => format!(
                "built against lago-plugin-api {version}, this lago needs {}",
                accepted_range(INTERFACE_VERSION)
            ),
            other => first_line(&other.to_string()),
        };
        skip(reason, e.to_string())
    })?;
    into_result((module.init())(new_host_object())).map_err(|e| {
        skip(
            format!("its initialisation failed: {}", e.message),
            e.message.to_string(),
        )
    })?;
    let set = into_result((module.plugins())()).map_err(|e| {
        skip(
            format!("listing its plugins failed: {}", e.message),
            e.message.to_string(),
        )
    })?;
    tracing::debug!(
        "{}: {} plugin(s), interface {version}",
        path.display(),
        set.len()
    );
    Ok(Some(LoadedLibrary { set, version }))
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compatibility_rule() {
        assert!(compatible("0.1.0", "0.1.7"));
        assert!(compatible("0.1.3", "0.1.0"));
        assert!(!compatible("0.1.0", "0.2.0"));
        assert!(!compatible("0.1.0", "99.0.0"));
        assert!(compatible("1.2.0", "1.0.5"));
        assert!(!compatible("1.2.0", "2.0.0"));
        assert!(!compatible("0.1.0", "garbage"));
        assert_eq!(accepted_range("0.1.4"), "0.1.x");
        assert_eq!(accepted_range("2.3.4"), "2.x");
    }
}
