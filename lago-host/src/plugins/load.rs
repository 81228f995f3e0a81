//! Loading one plugin library with abi_stable.
//!
//! Each file is opened with `lib_header_from_path(path)?.init_root_module()`
//! (never `RootModule::load_from_*`, which keeps one library per interface
//! type and would hand back the first plugin for every later file).
//! Libraries are never unloaded.

use std::fmt;
use std::path::{Path, PathBuf};

use abi_stable::abi_stability::abi_checking::{
    check_layout_compatibility, AbiInstability, ExpectedFound,
};
use abi_stable::library::{lib_header_from_path, LibraryError, RootModule};
use abi_stable::type_layout::{TLFieldOrFunction, TypeLayout};
use abi_stable::StableAbi;
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
    /// Whether the outcome depends on the file alone (kept in the plugin
    /// index). A loader failure may depend on other files (a missing
    /// dependency installed later), so it is tried again on every run.
    pub lasting: bool,
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

/// Open `path`. `Ok(None)`: a shared library that is not a lago plugin
/// (skipped quietly). `Err`: a file the loader cannot open (not ELF, another
/// architecture, a missing dependency) or a lago plugin library that cannot
/// be used (one warning each).
pub fn load_library(path: &Path) -> Result<Option<LoadedLibrary>, Skipped> {
    let skip = |reason: String, details: String| Skipped {
        path: path.to_path_buf(),
        reason,
        details,
        lasting: true,
    };
    let header = match lib_header_from_path(path) {
        Ok(h) => h,
        Err(LibraryError::OpenError { err, .. }) => {
            // A candidate the loader refuses is what a plugin author most
            // needs to hear about: say why in the one line.
            let loader = err.to_string();
            return Err(Skipped {
                lasting: false,
                ..skip(open_failure_reason(path, &loader), loader)
            });
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
                "its interface layout does not match this lago's (lago-plugin-api {version}): \
                 {}; rebuild it against lago-plugin-api {INTERFACE_VERSION} \
                 (details with --loglevel debug)",
                layout_mismatch(header.layout())
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

/// Where the library's root-module layout parts from this lago's, in one
/// clause: the innermost mismatching type, what differs, and both sizes
/// (abi_stable's own report is a many-line dump, kept for the debug log).
fn layout_mismatch(found: Option<&'static TypeLayout>) -> String {
    let unknown = || "the layouts differ".to_string();
    let Some(found) = found else {
        return unknown();
    };
    let Err(errors) = check_layout_compatibility(<LagoPluginRef as StableAbi>::LAYOUT, found)
    else {
        return unknown();
    };
    // The outer levels often only say "an inner type differs": take the
    // first level that names a difference.
    let first = errors
        .errors
        .iter()
        .find(|e| !e.errs.is_empty())
        .or_else(|| errors.errors.iter().next());
    let Some(first) = first else {
        return unknown();
    };
    let (expected, found) = match first.stack_trace.last() {
        Some(ExpectedFound {
            expected: TLFieldOrFunction::Field(e),
            found: TLFieldOrFunction::Field(f),
        }) => (e.layout(), f.layout()),
        _ => (errors.interface, errors.implementation),
    };
    let what = first
        .errs
        .iter()
        .next()
        .map_or_else(|| "its layout differs".to_string(), describe_instability);
    format!(
        "type `{}`: {what}; size {} bytes expected, {} found",
        expected.full_type(),
        expected.size(),
        found.size()
    )
}

/// One abi_stable layout difference in words (expected vs found).
fn describe_instability(e: &AbiInstability) -> String {
    fn ef<T: fmt::Display>(what: &str, v: &ExpectedFound<T>) -> String {
        format!("{what} (expected {}, found {})", v.expected, v.found)
    }
    match e {
        AbiInstability::Name(v) => ef("another type", v),
        AbiInstability::Package(v) => ef("another package", v),
        AbiInstability::PackageVersion(v) => ef("another package version", v),
        AbiInstability::Size(v) => ef("another size", v),
        AbiInstability::Alignment(v) => ef("another alignment", v),
        AbiInstability::FieldCountMismatch(v) => ef("another number of fields", v),
        AbiInstability::UnexpectedField(v) => ef("another field", v),
        AbiInstability::TooManyVariants(v) => ef("another number of variants", v),
        AbiInstability::MismatchedPrefixSize(v) => ef("another prefix", v),
        other => {
            // The variant name is enough for the rest (the debug log has all).
            let debug = format!("{other:?}");
            let name = debug.split(['(', ' ', '{']).next().unwrap_or("");
            format!("`{name}` differs")
        }
    }
}

/// Why the dynamic loader refused `path`, in words: glibc reports a library
/// of another architecture as "No such file or directory", so the ELF header
/// is looked at first; otherwise the loader's own message (a missing
/// dependency names the library it could not find).
fn open_failure_reason(path: &Path, loader: &str) -> String {
    let mut header = [0u8; 20];
    let read = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut header))
        .unwrap_or(0);
    if read < header.len() || header[..4] != *b"\x7fELF" {
        return format!("it is not an ELF shared library (loader: {loader})");
    }
    let class_64 = header[4] == 2;
    let machine = u16::from_le_bytes([header[18], header[19]]);
    let ours = native_elf_machine();
    if class_64 != cfg!(target_pointer_width = "64")
        || (header[5] == 1) != cfg!(target_endian = "little")
        || ours.is_some_and(|m| m != machine)
    {
        return format!(
            "it was built for another architecture (ELF machine {machine}, {}-bit), \
             this lago runs on {} (loader: {loader})",
            if class_64 { 64 } else { 32 },
            std::env::consts::ARCH
        );
    }
    format!("the loader cannot open it: {}", first_line(loader))
}

/// The ELF `e_machine` of this build's architecture (the common ones).
fn native_elf_machine() -> Option<u16> {
    match std::env::consts::ARCH {
        "x86_64" => Some(62),
        "x86" => Some(3),
        "aarch64" => Some(183),
        "arm" => Some(40),
        "riscv64" => Some(243),
        "powerpc64" => Some(21),
        _ => None,
    }
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
