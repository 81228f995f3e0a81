//! Layered INI configuration (`lago.conf`).
//!
//! Sources, merged in this order (later wins):
//! 1. built-in defaults ([`KEYS`]),
//! 2. `/etc/lago/lago.conf`,
//! 3. XDG: each of `$XDG_CONFIG_DIRS` (default `/etc/xdg`) from the least to
//!    the most important, then `$XDG_CONFIG_HOME` (default `~/.config`), each
//!    as `<dir>/lago/lago.conf`,
//! 4. the environment: `LAGO_VAR` → `[lago] var`, `LAGO__SECTION__VAR` →
//!    `[section] var` (names lower-cased),
//! 5. command-line flags (the `overrides` of [`Config::load`]).
//!
//! Global keys live in `[lago]`; each verb's own keys in the section named
//! after it (`[init] template_store = ...`). Keys lago does not know are kept
//! (plugins may read them) and printed by `generate-config`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The root section of global keys.
pub const ROOT: &str = "lago";

/// A key lago knows, with its default and help.
#[derive(Debug, Clone, Copy)]
pub struct KeyDef {
    pub section: &'static str,
    pub key: &'static str,
    /// `None`: unset unless a source sets it.
    pub default: Option<&'static str>,
    pub help: &'static str,
}

const fn k(
    section: &'static str,
    key: &'static str,
    default: Option<&'static str>,
    help: &'static str,
) -> KeyDef {
    KeyDef {
        section,
        key,
        default,
        help,
    }
}

/// Every key lago knows, in the order `generate-config` prints them.
pub const KEYS: &[KeyDef] = &[
    k(
        ROOT,
        "loglevel",
        Some("info"),
        "Log level on stderr: debug, info (the task tree), warning, error",
    ),
    k(
        ROOT,
        "logdepth",
        Some("3"),
        "How many nested task levels stderr shows, -1 for all",
    ),
    k(
        ROOT,
        "out_format",
        Some("default"),
        "Output format of verbs that return data: default, json, yaml, flat, or a plugin's",
    ),
    k(
        ROOT,
        "ssh_user",
        Some("root"),
        "Default SSH user of the VMs",
    ),
    k(
        ROOT,
        "ssh_password",
        None,
        "SSH password of the VMs whose init file entry sets none (their root password when unset)",
    ),
    k(
        ROOT,
        "ssh_tries",
        Some("100"),
        "How many times to try to reach a VM by SSH",
    ),
    k(
        ROOT,
        "ssh_timeout",
        Some("10"),
        "Seconds to wait for each SSH attempt",
    ),
    k(
        ROOT,
        "console_stall_timeout",
        Some("300"),
        "Seconds a booting VM's console may print nothing new before waiting for its SSH fails (0: no limit)",
    ),
    k(
        ROOT,
        "libvirt_url",
        Some("qemu:///system"),
        "libvirt connection URI of the local-libvirt provider",
    ),
    k(
        ROOT,
        "libvirt_user",
        None,
        "SASL user name given to libvirt when it asks for authentication",
    ),
    k(
        ROOT,
        "libvirt_password",
        None,
        "SASL password given to libvirt when it asks for authentication",
    ),
    k(
        ROOT,
        "domain_type",
        Some("auto"),
        "Acceleration of the local-libvirt provider: auto, kvm or qemu (TCG)",
    ),
    k(
        ROOT,
        "warm_start",
        Some("auto"),
        "local-libvirt: start VMs from their template's warm image where possible (auto, the default) or always boot (off); `lago start --cold` is off once",
    ),
    k(
        ROOT,
        "default_vm_type",
        Some("default"),
        "vm-type plugin of a VM whose init file entry names none",
    ),
    k(
        ROOT,
        "default_vm_provider",
        Some("local-libvirt"),
        "vm-provider plugin of a VM whose init file entry names none",
    ),
    k(
        ROOT,
        "default_root_password",
        Some("123456"),
        "Root password of a VM whose init file entry and template give none",
    ),
    k(
        ROOT,
        "lease_dir",
        Some("/var/lib/lago/subnets"),
        "Folder of the subnet lease store, shared by every prefix of the host",
    ),
    k(
        ROOT,
        "lease_timeout",
        Some("30"),
        "Seconds to wait for the lock of the subnet lease store",
    ),
    k(
        ROOT,
        "ignore_warnings",
        Some("false"),
        "Do not print warnings on stderr (the prefix log keeps them)",
    ),
    k(
        "init",
        "template_repo_path",
        None,
        "Template repository file (path or URL) describing the templates",
    ),
    k(
        "init",
        "template_repo_name",
        None,
        "Name of a repository in template_repos to take templates from",
    ),
    k(
        "init",
        "template_store",
        Some("/var/lib/lago/store"),
        "Local store of downloaded template images",
    ),
    k(
        "init",
        "template_repos",
        Some("/var/lib/lago/repos"),
        "Folder of known template repositories",
    ),
];

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
    Env(String),
    Flag,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Default => f.write_str("built-in default"),
            Source::File(p) => write!(f, "{}", p.display()),
            Source::Env(v) => write!(f, "environment variable {v}"),
            Source::Flag => f.write_str("command line"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration file {path} is not valid INI: {msg}")]
    Parse { path: PathBuf, msg: String },
    #[error("[{section}] {key} = {value:?} (from {source_}) is not valid: expected {expected}")]
    Value {
        section: String,
        key: String,
        value: String,
        source_: Source,
        expected: &'static str,
    },
}

#[derive(Debug, Clone)]
struct Entry {
    value: String,
    source: Source,
}

/// Which files and environment a [`Config`] is read from. [`Sources::system`]
/// is what `lago` uses; tests build their own.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// INI files, least important first; missing ones are skipped.
    pub files: Vec<PathBuf>,
    /// Environment variables (name, value); only `LAGO_*` ones are used.
    pub env: Vec<(String, String)>,
}

impl Sources {
    /// `/etc/lago/lago.conf`, the XDG files, and the process environment.
    pub fn system() -> Sources {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Sources {
            files: system_files(&env),
            env,
        }
    }
}

fn system_files(env: &[(String, String)]) -> Vec<PathBuf> {
    let var = |n: &str| {
        env.iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let mut files = vec![PathBuf::from("/etc/lago/lago.conf")];
    let dirs = var("XDG_CONFIG_DIRS").unwrap_or_else(|| "/etc/xdg".into());
    // The first entry of XDG_CONFIG_DIRS is the most important: merge it last.
    let mut dirs: Vec<&str> = dirs.split(':').filter(|d| !d.is_empty()).collect();
    dirs.reverse();
    files.extend(dirs.iter().map(|d| Path::new(d).join("lago/lago.conf")));
    let home = var("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|h| Path::new(&h).join(".config")));
    if let Some(h) = home {
        files.push(h.join("lago/lago.conf"));
    }
    files
}

/// The merged configuration.
#[derive(Debug, Clone)]
pub struct Config {
    sections: BTreeMap<String, BTreeMap<String, Entry>>,
}

impl Config {
    /// Load from the system sources, then apply `overrides`
    /// (section, key, value) from the command line.
    pub fn load(overrides: &[(String, String, String)]) -> Result<Config, ConfigError> {
        Config::load_from(&Sources::system(), overrides)
    }

    /// The built-in defaults only.
    pub fn defaults() -> Config {
        let mut c = Config {
            sections: BTreeMap::new(),
        };
        for kd in KEYS {
            if let Some(d) = kd.default {
                c.put(kd.section, kd.key, d.to_string(), Source::Default);
            }
        }
        c
    }

    /// Load from explicit sources (tests, the library API).
    pub fn load_from(
        sources: &Sources,
        overrides: &[(String, String, String)],
    ) -> Result<Config, ConfigError> {
        let mut c = Config::defaults();
        for f in &sources.files {
            c.merge_file(f)?;
        }
        for (name, value) in &sources.env {
            if let Some((section, key)) = env_key(name) {
                c.put(&section, &key, value.clone(), Source::Env(name.clone()));
            }
        }
        for (s, key, v) in overrides {
            c.put(s, key, v.clone(), Source::Flag);
        }
        Ok(c)
    }

    fn merge_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => return Ok(()),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        if let Some(msg) = first_bad_ini_line(&text) {
            return Err(ConfigError::Parse {
                path: path.to_path_buf(),
                msg,
            });
        }
        let ini = ini::Ini::load_from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            msg: format!(
                "line {}: {}",
                e.line,
                e.msg.replace("Some(", "").replace(')', "")
            ),
        })?;
        for (section, props) in ini.iter() {
            let section = section.unwrap_or(ROOT).trim().to_ascii_lowercase();
            for (key, value) in props.iter() {
                self.put(
                    &section,
                    &key.trim().to_ascii_lowercase(),
                    value.to_string(),
                    Source::File(path.to_path_buf()),
                );
            }
        }
        Ok(())
    }

    /// Set a value (as a command-line flag would).
    pub fn set(&mut self, section: &str, key: &str, value: impl Into<String>) {
        self.put(section, key, value.into(), Source::Flag);
    }

    fn put(&mut self, section: &str, key: &str, value: String, source: Source) {
        self.sections
            .entry(section.to_string())
            .or_default()
            .insert(key.to_string(), Entry { value, source });
    }

    /// Keys of lago's own sections (`[lago]`, `[init]`) that lago does not
    /// know, set in a file or a `LAGO__SECTION__KEY` variable (a typo such
    /// as `domain_typ`): one message each, naming the key and where it was
    /// set. Other sections belong to plugins and are not judged.
    pub fn unknown_keys(&self) -> Vec<String> {
        let mut out = Vec::new();
        for section in [ROOT, "init"] {
            let Some(entries) = self.sections.get(section) else {
                continue;
            };
            for (key, entry) in entries {
                let known = KEYS.iter().any(|k| k.section == section && k.key == key);
                let judged = match &entry.source {
                    Source::File(_) => true,
                    Source::Env(name) => name.starts_with("LAGO__"),
                    Source::Default | Source::Flag => false,
                };
                if !known && judged {
                    out.push(format!(
                        "{}: unknown key `{key}` in section [{section}], ignored \
                         (`lago generate-config --verbose` lists the keys lago knows)",
                        entry.source
                    ));
                }
            }
        }
        out
    }

    /// The value of a key, `None` when unset. An empty value counts as unset.
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.sections
            .get(section)
            .and_then(|s| s.get(key))
            .map(|e| e.value.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Where the value of a key came from.
    pub fn source(&self, section: &str, key: &str) -> Option<&Source> {
        self.sections
            .get(section)
            .and_then(|s| s.get(key))
            .map(|e| &e.source)
    }

    /// A section's keys and values.
    pub fn section(&self, section: &str) -> BTreeMap<&str, &str> {
        self.sections
            .get(section)
            .map(|s| {
                s.iter()
                    .map(|(k, e)| (k.as_str(), e.value.as_str()))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn bad(&self, section: &str, key: &str, expected: &'static str) -> ConfigError {
        ConfigError::Value {
            section: section.into(),
            key: key.into(),
            value: self.get(section, key).unwrap_or_default().into(),
            source_: self
                .source(section, key)
                .cloned()
                .unwrap_or(Source::Default),
            expected,
        }
    }

    /// An unsigned integer value.
    pub fn get_u64(&self, section: &str, key: &str) -> Result<Option<u64>, ConfigError> {
        match self.get(section, key) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| self.bad(section, key, "a non-negative integer")),
        }
    }

    /// A boolean value (`true/false`, `yes/no`, `on/off`, `1/0`).
    pub fn get_bool(&self, section: &str, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.get(section, key) {
            None => Ok(None),
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => Ok(Some(true)),
                "false" | "no" | "off" | "0" => Ok(Some(false)),
                _ => Err(self.bad(section, key, "true or false")),
            },
        }
    }

    /// A path value, `~` expanded.
    pub fn get_path(&self, section: &str, key: &str) -> Option<PathBuf> {
        self.get(section, key).map(expand_tilde)
    }

    // Typed getters of the keys others need.

    pub fn lease_dir(&self) -> PathBuf {
        self.get_path(ROOT, "lease_dir")
            .unwrap_or_else(|| PathBuf::from("/var/lib/lago/subnets"))
    }
    pub fn lease_timeout(&self) -> Result<std::time::Duration, ConfigError> {
        Ok(std::time::Duration::from_secs(
            self.get_u64(ROOT, "lease_timeout")?.unwrap_or(30),
        ))
    }
    /// `loglevel`: the most verbose level shown on stderr (Lago's names).
    pub fn loglevel(&self) -> Result<lago_plugin_api::LogLevel, ConfigError> {
        let v = self.get(ROOT, "loglevel").unwrap_or("info");
        crate::logging::parse_level(v.trim())
            .ok_or_else(|| self.bad(ROOT, "loglevel", "debug, info, warning or error"))
    }
    /// `logdepth`: how many nested task levels stderr shows; `-1`: all.
    pub fn logdepth(&self) -> Result<i64, ConfigError> {
        match self.get(ROOT, "logdepth") {
            None => Ok(3),
            Some(v) => match v.trim().parse::<i64>() {
                Ok(n) if n >= -1 => Ok(n),
                _ => Err(self.bad(ROOT, "logdepth", "an integer, -1 for all levels")),
            },
        }
    }
    /// `ignore_warnings`: hide warnings on stderr (they stay in the prefix
    /// log).
    pub fn ignore_warnings(&self) -> Result<bool, ConfigError> {
        Ok(self.get_bool(ROOT, "ignore_warnings")?.unwrap_or(false))
    }
    /// `out_format`: the out-format plugin of verbs that return data.
    pub fn out_format(&self) -> &str {
        self.get(ROOT, "out_format").unwrap_or("default")
    }
    /// `ssh_password`: the SSH password for VMs whose init file entry sets
    /// none (`ssh-password`); unset: their root password.
    pub fn ssh_password(&self) -> Option<&str> {
        self.get(ROOT, "ssh_password")
    }
    /// `libvirt_user` / `libvirt_password`: SASL credentials the
    /// local-libvirt provider answers libvirt's authentication with.
    pub fn libvirt_credentials(&self) -> (Option<&str>, Option<&str>) {
        (
            self.get(ROOT, "libvirt_user"),
            self.get(ROOT, "libvirt_password"),
        )
    }
    pub fn ssh_user(&self) -> &str {
        self.get(ROOT, "ssh_user").unwrap_or("root")
    }
    pub fn ssh_tries(&self) -> Result<u64, ConfigError> {
        Ok(self.get_u64(ROOT, "ssh_tries")?.unwrap_or(100))
    }
    pub fn ssh_timeout(&self) -> Result<u64, ConfigError> {
        Ok(self.get_u64(ROOT, "ssh_timeout")?.unwrap_or(10))
    }
    /// `[lago] console_stall_timeout`, seconds (see [`crate::boot_watch`]).
    pub fn console_stall_timeout(&self) -> Result<u64, ConfigError> {
        Ok(self
            .get_u64(ROOT, "console_stall_timeout")?
            .unwrap_or(crate::boot_watch::DEFAULT_STALL_SECS))
    }
    pub fn libvirt_url(&self) -> &str {
        self.get(ROOT, "libvirt_url").unwrap_or("qemu:///system")
    }
    /// `auto`, `kvm` or `qemu`.
    pub fn domain_type(&self) -> Result<&str, ConfigError> {
        match self.get(ROOT, "domain_type").unwrap_or("auto") {
            v @ ("auto" | "kvm" | "qemu") => Ok(v),
            _ => Err(self.bad(ROOT, "domain_type", "auto, kvm or qemu")),
        }
    }
    pub fn default_vm_type(&self) -> &str {
        self.get(ROOT, "default_vm_type").unwrap_or("default")
    }
    pub fn default_vm_provider(&self) -> &str {
        self.get(ROOT, "default_vm_provider")
            .unwrap_or("local-libvirt")
    }
    pub fn default_root_password(&self) -> Option<&str> {
        self.get(ROOT, "default_root_password")
    }
    pub fn template_store(&self) -> PathBuf {
        self.get_path("init", "template_store")
            .unwrap_or_else(|| PathBuf::from("/var/lib/lago/store"))
    }
    pub fn template_repos(&self) -> PathBuf {
        self.get_path("init", "template_repos")
            .unwrap_or_else(|| PathBuf::from("/var/lib/lago/repos"))
    }

    /// The effective configuration as INI, every known key preceded by its
    /// help as a comment. Unset keys are printed commented out when
    /// `verbose`; `verbose` also names each value's source.
    pub fn to_ini(&self, verbose: bool) -> String {
        let mut sections: Vec<&str> = vec![ROOT];
        for kd in KEYS {
            if !sections.contains(&kd.section) {
                sections.push(kd.section);
            }
        }
        for s in self.sections.keys() {
            if !sections.contains(&s.as_str()) {
                sections.push(s);
            }
        }
        let mut out = String::new();
        for section in sections {
            let mut body = String::new();
            for kd in KEYS.iter().filter(|kd| kd.section == section) {
                let value = self.get(section, kd.key);
                if value.is_none() && !verbose {
                    continue;
                }
                let _ = writeln!(body, "# {}", kd.help);
                if verbose {
                    if let Some(src) = self.source(section, kd.key) {
                        if value.is_some() {
                            let _ = writeln!(body, "# (from {src})");
                        }
                    }
                }
                match value {
                    Some(v) => {
                        let _ = writeln!(body, "{} = {}", kd.key, v);
                    }
                    None => {
                        let _ = writeln!(body, "# {} =", kd.key);
                    }
                }
            }
            if let Some(keys) = self.sections.get(section) {
                for (key, e) in keys {
                    if KEYS.iter().any(|kd| kd.section == section && kd.key == key) {
                        continue;
                    }
                    let _ = writeln!(body, "# (a key lago does not know, from {})", e.source);
                    let _ = writeln!(body, "{} = {}", key, e.value);
                }
            }
            if body.is_empty() {
                continue;
            }
            if !out.is_empty() {
                out.push('\n');
            }
            let _ = writeln!(out, "[{section}]");
            out.push_str(&body);
        }
        out
    }
}

/// `LAGO_VAR` → (`lago`, `var`), `LAGO__SECTION__VAR` → (`section`, `var`).
pub fn env_key(name: &str) -> Option<(String, String)> {
    if let Some(rest) = name.strip_prefix("LAGO__") {
        let (section, key) = rest.split_once("__")?;
        if section.is_empty() || key.is_empty() {
            return None;
        }
        return Some((section.to_ascii_lowercase(), key.to_ascii_lowercase()));
    }
    let key = name.strip_prefix("LAGO_")?;
    if key.is_empty() {
        return None;
    }
    Some((ROOT.to_string(), key.to_ascii_lowercase()))
}

fn expand_tilde(v: &str) -> PathBuf {
    if let Some(rest) = v.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return Path::new(&home).join(rest);
        }
    }
    PathBuf::from(v)
}

/// The first line of an INI text that is none of: blank, a `#` or `;`
/// comment, a `[section]` header, a `key = value` (or `key: value`) line;
/// said in plain words with its number and text.
fn first_bad_ini_line(text: &str) -> Option<String> {
    text.lines().enumerate().find_map(|(i, line)| {
        let t = line.trim();
        let what = if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            return None;
        } else if t.starts_with('[') {
            if t.ends_with(']') {
                return None;
            }
            "a section header without its closing `]`"
        } else if t.contains('=') || t.contains(':') {
            return None;
        } else {
            "expected `key = value`, a `[section]` header or a `#` comment"
        };
        Some(format!("line {}: {what}, found {t:?}", i + 1))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key lago does not know in its own sections is named with where it
    /// was set; plugin sections and single-underscore variables are not.
    #[test]
    fn unknown_keys_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("lago.conf");
        std::fs::write(
            &file,
            "[lago]\ndomain_typ = qemu\nssh_user = a\n[custom]\nanything = 1\n",
        )
        .expect("write");
        let sources = Sources {
            files: vec![file.clone()],
            env: vec![
                ("LAGO__INIT__TEMPLATE_STOR".into(), "/x".into()),
                ("LAGO_PLUGIN_PATH".into(), "/p".into()),
            ],
        };
        let c = Config::load_from(&sources, &[]).expect("load");
        let unknown = c.unknown_keys();
        assert_eq!(unknown.len(), 2, "{unknown:?}");
        assert!(
            unknown[0].starts_with(&format!(
                "{}: unknown key `domain_typ` in section [lago]",
                file.display()
            )),
            "{unknown:?}"
        );
        assert!(
            unknown[1].starts_with("environment variable LAGO__INIT__TEMPLATE_STOR: unknown key `template_stor` in section [init]"),
            "{unknown:?}"
        );
    }

    /// A syntax error in a configuration file is said in plain words, with
    /// the line's number and text (not the parser's internals).
    #[test]
    fn ini_syntax_errors_in_plain_words() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("lago.conf");
        for (text, expected) in [
            (
                "[lago]\n# fine\nssh_user = a\ndomain_typ qemu\n",
                "line 4: expected `key = value`, a `[section]` header or a `#` comment, found \"domain_typ qemu\"",
            ),
            ("[lago\nssh_user = a\n", "line 1: a section header without its closing `]`"),
        ] {
            std::fs::write(&file, text).expect("write");
            let sources = Sources {
                files: vec![file.clone()],
                env: vec![],
            };
            let e = Config::load_from(&sources, &[]).expect_err("bad ini").to_string();
            assert!(e.contains(expected), "{e}");
            assert!(e.contains(&file.display().to_string()), "{e}");
            assert!(!e.contains("Some("), "{e}");
        }
    }

    #[test]
    fn env_names() {
        assert_eq!(
            env_key("LAGO_SSH_USER"),
            Some(("lago".into(), "ssh_user".into()))
        );
        assert_eq!(
            env_key("LAGO__INIT__TEMPLATE_STORE"),
            Some(("init".into(), "template_store".into()))
        );
        assert_eq!(
            env_key("LAGO__LONG_SECTION__VAR_1"),
            Some(("long_section".into(), "var_1".into()))
        );
        assert_eq!(env_key("LAGO__INIT"), None);
        assert_eq!(env_key("PATH"), None);
    }

    #[test]
    fn layering() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a.conf");
        let b = dir.path().join("b.conf");
        std::fs::write(
            &a,
            "[lago]\nssh_user = alice\nssh_tries = 5\n[init]\ntemplate_store = /a\n",
        )
        .expect("write");
        std::fs::write(&b, "[lago]\nssh_user = bob\n[custom]\nx = 1\n").expect("write");
        let sources = Sources {
            files: vec![a.clone(), dir.path().join("missing.conf"), b.clone()],
            env: vec![
                ("LAGO__INIT__TEMPLATE_STORE".into(), "/var/tmp".into()),
                ("LAGO_SSH_TRIES".into(), "7".into()),
                ("HOME".into(), "/root".into()),
            ],
        };
        let c = Config::load_from(&sources, &[("lago".into(), "ssh_tries".into(), "9".into())])
            .expect("load");
        assert_eq!(c.ssh_user(), "bob");
        assert_eq!(c.source("lago", "ssh_user"), Some(&Source::File(b)));
        assert_eq!(c.template_store(), PathBuf::from("/var/tmp"));
        assert_eq!(c.ssh_tries().expect("int"), 9);
        assert_eq!(c.get("custom", "x"), Some("1"));
        assert_eq!(c.libvirt_url(), "qemu:///system");
        let ini = c.to_ini(false);
        assert!(ini.contains("[init]\n"), "{ini}");
        assert!(ini.contains("template_store = /var/tmp\n"), "{ini}");
        assert!(ini.contains("# Local store of downloaded template images\n"));
        assert!(!ini.contains("template_repo_name"));
        assert!(c.to_ini(true).contains("# template_repo_name =\n"));
    }

    #[test]
    fn bad_values() {
        let mut c = Config::defaults();
        c.set("lago", "ssh_tries", "many");
        let e = c.ssh_tries().expect_err("bad int").to_string();
        assert!(e.contains("ssh_tries") && e.contains("integer"), "{e}");
        c.set("lago", "domain_type", "xen");
        assert!(c.domain_type().is_err());
    }

    #[test]
    fn xdg_order() {
        let env = vec![
            ("XDG_CONFIG_DIRS".to_string(), "/x1:/x2".to_string()),
            ("HOME".to_string(), "/home/u".to_string()),
        ];
        assert_eq!(
            system_files(&env),
            vec![
                PathBuf::from("/etc/lago/lago.conf"),
                PathBuf::from("/x2/lago/lago.conf"),
                PathBuf::from("/x1/lago/lago.conf"),
                PathBuf::from("/home/u/.config/lago/lago.conf"),
            ]
        );
    }
}
