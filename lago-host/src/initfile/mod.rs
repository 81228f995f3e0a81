//! The LagoInitFile: reading (YAML or JSON), the model, validation.
//!
//! [`load`] reads a file, [`parse_str`] a text. Both give an [`InitFile`]
//! whose every value has been checked for its type; [`InitFile::validate`]
//! (called by both) checks what spans keys (references, the management net,
//! disks, static addresses). The network planner adds the checks that need a
//! leased subnet. Every problem is an [`InitError`]: the file, the line and
//! column when they can be found, the key path (`domains/vm0/nics/1/net`),
//! what is wrong and what was expected.
//!
//! Keys the host does not know are kept in `extra` maps and end in the
//! planned spec, where plugins read them.

mod locate;
mod prescan;
mod read;
pub mod rules;
pub mod yaml;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lago_plugin_api::spec::{DiskType, Extra, HostSpec, NetType, SshDest, DEFAULT_HOST};
use serde_json::{Map, Value};

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A key path inside the init file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(pub Vec<Seg>);

impl KeyPath {
    pub fn root() -> KeyPath {
        KeyPath(Vec::new())
    }
    pub fn key(&self, k: &str) -> KeyPath {
        let mut v = self.0.clone();
        v.push(Seg::Key(k.to_string()));
        KeyPath(v)
    }
    pub fn idx(&self, i: usize) -> KeyPath {
        let mut v = self.0.clone();
        v.push(Seg::Index(i));
        KeyPath(v)
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, s) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_str("/")?;
            }
            match s {
                // A refused key may hold a newline: the path stays one line.
                Seg::Key(k) => f.write_str(&rules::escape_unsafe(k))?,
                Seg::Index(i) => write!(f, "{i}")?,
            }
        }
        Ok(())
    }
}

/// A rejected init file (boxed: errors travel far and should stay small).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitError(Box<InitErrorData>);

/// What an [`InitError`] says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitErrorData {
    /// The init file, when the input came from one.
    pub file: Option<PathBuf>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Where in the document (empty for a syntax error).
    pub path: KeyPath,
    pub message: String,
    pub expected: Option<String>,
}

impl InitError {
    pub fn new(data: InitErrorData) -> InitError {
        InitError(Box::new(data))
    }
}

impl From<InitErrorData> for InitError {
    fn from(d: InitErrorData) -> InitError {
        InitError::new(d)
    }
}

impl std::ops::Deref for InitError {
    type Target = InitErrorData;
    fn deref(&self) -> &InitErrorData {
        &self.0
    }
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(p) => write!(f, "{}", p.display())?,
            None => f.write_str("<init file>")?,
        }
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        f.write_str(": ")?;
        if !self.path.0.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        if let Some(e) = &self.expected {
            write!(f, " (expected {e})")?;
        }
        Ok(())
    }
}

impl std::error::Error for InitError {}

/// The format of an init file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

/// The text an init file was read from, kept to point at errors.
#[derive(Debug)]
pub struct SourceText {
    pub file: Option<PathBuf>,
    pub text: String,
    pub format: Format,
}

impl SourceText {
    /// Build an error at `path`, with the line and column where the key is.
    pub fn error(
        &self,
        path: KeyPath,
        message: impl Into<String>,
        expected: Option<&str>,
    ) -> InitError {
        let pos = locate::locate(&self.text, &path.0);
        InitError::new(InitErrorData {
            file: self.file.clone(),
            line: pos.map(|p| p.0),
            column: pos.map(|p| p.1),
            path,
            message: message.into(),
            expected: expected.map(str::to_string),
        })
    }
}

/// A checked init file.
#[derive(Debug, Clone)]
pub struct InitFile {
    pub source: Arc<SourceText>,
    pub domains: BTreeMap<String, DomainDef>,
    pub nets: BTreeMap<String, NetDef>,
    /// The libvirt hosts besides the default one (`hosts:`), by name.
    pub hosts: BTreeMap<String, HostSpec>,
    /// Unknown top-level keys.
    pub extra: Extra,
    /// Warnings about keys that were kept but look wrong (a misspelt known
    /// key, a deprecated one), each `file:line:col: path: text`.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DomainDef {
    pub memory: Option<u64>,
    pub vcpu: Option<u32>,
    pub cpu_model: Option<String>,
    pub cpu_custom: Option<Value>,
    pub nics: Vec<NicDef>,
    pub disks: Vec<DiskDef>,
    pub artifacts: Vec<String>,
    pub groups: Vec<String>,
    pub bootstrap: Option<bool>,
    pub ssh_user: Option<String>,
    pub ssh_password: Option<String>,
    pub root_password: Option<String>,
    pub service_provider: Option<String>,
    pub vm_provider: Option<String>,
    pub vm_type: Option<String>,
    pub metadata: Extra,
    pub boot_time_sec: Option<u64>,
    pub distro: Option<String>,
    /// The host the VM runs on (a key of `hosts:`); None for the default.
    pub host: Option<String>,
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NicDef {
    pub net: String,
    pub ip: Option<Ipv4Addr>,
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DiskDef {
    pub disk_type: DiskType,
    pub template_name: Option<String>,
    pub template_type: Option<String>,
    pub template_version: Option<String>,
    /// As written (environment variables not yet expanded).
    pub path: Option<String>,
    pub url: Option<String>,
    pub size: Option<String>,
    pub format: Option<String>,
    pub dev: Option<String>,
    pub name: Option<String>,
    pub build: Option<Value>,
    pub metadata: Extra,
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NetDef {
    pub net_type: NetType,
    /// DHCP pool as last octets (Lago's `dhcp: {start: 100, end: 254}`).
    pub dhcp: Option<(u8, u8)>,
    pub management: Option<bool>,
    pub dns_domain_name: Option<String>,
    pub gw: Option<Ipv4Addr>,
    pub mtu: Option<u32>,
    /// Extra DNS records (`{host: ip}`) the network serves, Lago's
    /// `dns_records`; management networks only.
    pub dns_records: BTreeMap<String, Ipv4Addr>,
    pub extra: Extra,
}

/// Read and check an init file. `.json` files are read as JSON, everything
/// else as YAML. Only a regular file of at most
/// [`read::MAX_INIT_FILE_BYTES`] is read. Warnings (see
/// [`InitFile::warnings`]) are logged.
pub fn load(path: &Path) -> Result<InitFile, InitError> {
    let (value, source) = read(path)?;
    let init = from_value(value, source)?;
    for w in &init.warnings {
        tracing::warn!("{w}");
    }
    Ok(init)
}

/// An init file as written: its parsed document (not yet checked) and its
/// text, for [`from_value`]. Lets `init` hand each domain to its vm-type's
/// `normalize_spec` before the model is built. Only a regular file of at
/// most [`read::MAX_INIT_FILE_BYTES`] is read.
pub fn read(path: &Path) -> Result<(Value, Arc<SourceText>), InitError> {
    let text = read::read_text(path).map_err(|message| InitErrorData {
        file: Some(path.to_path_buf()),
        line: None,
        column: None,
        path: KeyPath::root(),
        message,
        expected: None,
    })?;
    let format = match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("json") => Format::Json,
        _ => Format::Yaml,
    };
    parse_document(&text, Some(path.to_path_buf()), format)
}

/// Parse and check an init file's text.
pub fn parse_str(text: &str, file: Option<PathBuf>, format: Format) -> Result<InitFile, InitError> {
    let (value, source) = parse_document(text, file, format)?;
    from_value(value, source)
}

/// Parse an init file's text into its document (no checks yet).
fn parse_document(
    text: &str,
    file: Option<PathBuf>,
    format: Format,
) -> Result<(Value, Arc<SourceText>), InitError> {
    let text = read::strip_bom(text);
    prescan::check(text).map_err(|f| {
        let (line, column, message, expected) = match f {
            prescan::Finding::TooDeep(l, c) => (
                l,
                c,
                format!("nested more than {} levels deep", prescan::MAX_DEPTH),
                format!(
                    "at most {} levels of nested mappings and lists",
                    prescan::MAX_DEPTH
                ),
            ),
            prescan::Finding::LeadingZero(l, c, t) => (
                l,
                c,
                format!("the integer {t} has a leading zero: Lago (YAML 1.1) read it as octal, YAML 1.2 as decimal"),
                "the number without leading zeros (or 0o for octal)".to_string(),
            ),
        };
        InitErrorData {
            file: file.clone(),
            line: Some(line),
            column: Some(column),
            path: KeyPath::root(),
            message,
            expected: Some(expected),
        }
    })?;
    let value = match format {
        Format::Json => read::json_no_duplicates(text).map_err(|e| InitErrorData {
            file: file.clone(),
            line: Some(e.line()),
            column: Some(e.column()),
            path: KeyPath::root(),
            message: format!("not valid JSON: {}", strip_json_position(&e.to_string())),
            expected: None,
        })?,
        Format::Yaml => yaml::parse(text).map_err(|e| InitErrorData {
            file: file.clone(),
            line: e.line,
            column: e.column,
            path: KeyPath::root(),
            message: format!("not valid YAML: {}", e.message),
            expected: None,
        })?,
    };
    let source = Arc::new(SourceText {
        file,
        text: text.to_string(),
        format,
    });
    Ok((value, source))
}

/// Build and check the model of a parsed init file ([`read`]); errors point
/// into `source`. Warnings are kept in [`InitFile::warnings`].
pub fn from_value(value: Value, source: Arc<SourceText>) -> Result<InitFile, InitError> {
    let reader = Reader {
        src: &source,
        warnings: RefCell::new(Vec::new()),
    };
    reader.check_text(&KeyPath::root(), &value)?;
    let init = reader.init_file(value)?;
    let init = InitFile {
        source: source.clone(),
        warnings: reader.warnings.take(),
        ..init
    };
    init.validate()?;
    Ok(init)
}

fn strip_json_position(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

fn type_name(v: &Value) -> String {
    match v {
        Value::Null => "nothing (null)".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

/// The rule a malformed address such as `192,168.200.3` or
/// `999.999.999.150` breaks when Lago accepted it: Lago kept only the text
/// after the last dot as the host's octet. lago refuses it rather than guess
/// the rest (the same address rule for every IP in the file).
fn lago_last_octet_note(text: &str) -> String {
    match text.trim().rsplit_once('.') {
        Some((_, last)) if last.parse::<u8>().is_ok() => format!(
            " (Lago used only its last octet, {last}, and ignored the rest; lago reads the whole address and refuses a malformed one)"
        ),
        _ => String::new(),
    }
}

/// Converts the parsed document into the model, checking each value's type.
struct Reader<'a> {
    src: &'a Arc<SourceText>,
    warnings: RefCell<Vec<String>>,
}

type R<T> = Result<T, InitError>;

impl Reader<'_> {
    fn err(&self, path: KeyPath, msg: impl Into<String>, expected: &str) -> InitError {
        self.src.error(path, msg, Some(expected))
    }

    fn wrong(&self, path: KeyPath, v: &Value, expected: &str) -> InitError {
        self.err(
            path,
            format!("wrong type: found {}", type_name(v)),
            expected,
        )
    }

    fn object(&self, path: &KeyPath, v: Value, expected: &str) -> R<Map<String, Value>> {
        match v {
            Value::Object(m) => Ok(m),
            Value::Null => Ok(Map::new()),
            other => Err(self.wrong(path.clone(), &other, expected)),
        }
    }

    /// Every key and string of the document, free-form ones included, is
    /// free of control and bidi characters ([`rules::no_control`]): any of
    /// them may end in a generated file, a hypervisor name or on a terminal
    /// (`lago status`, inventories), where a newline or an escape sequence
    /// would forge lines. Checked once here so the readers below need not.
    fn check_text(&self, path: &KeyPath, v: &Value) -> R<()> {
        let expected = "text without control characters or bidirectional controls";
        match v {
            Value::String(s) => self.rule(path, s, rules::no_control, expected),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .try_for_each(|(i, it)| self.check_text(&path.idx(i), it)),
            Value::Object(m) => m.iter().try_for_each(|(k, it)| {
                let kp = path.key(k);
                rules::no_control(k)
                    .map_err(|why| self.err(kp.clone(), format!("the key {why}"), expected))?;
                self.check_text(&kp, it)
            }),
            _ => Ok(()),
        }
    }

    /// A string value (control characters were refused by [`Self::check_text`]).
    fn string(&self, path: &KeyPath, v: Value) -> R<String> {
        match v {
            Value::String(s) => Ok(s),
            // YAML reads `name: 7` or `version: 1.0` as numbers: accept them as text.
            Value::Number(n) => Ok(n.to_string()),
            other => Err(self.wrong(path.clone(), &other, "a string")),
        }
    }

    /// Apply a value rule, as an error at `path`.
    fn rule(
        &self,
        path: &KeyPath,
        s: &str,
        rule: fn(&str) -> Result<(), String>,
        expected: &str,
    ) -> R<()> {
        rule(s).map_err(|why| self.err(path.clone(), why, expected))
    }

    /// Close a mapping: its remaining keys become the free-form `extra`.
    /// A key lago plans itself is refused (it would sit beside the planned
    /// value in the stored state); one that looks like a misspelt known key
    /// is kept with a warning.
    fn finish(
        &self,
        m: Map<String, Value>,
        p: &KeyPath,
        known: &[&str],
        planned: &[&str],
    ) -> R<Extra> {
        for k in m.keys() {
            if planned.contains(&k.as_str()) {
                return Err(self.err(
                    p.key(k),
                    format!("`{k}` is planned by lago and cannot be set in the init file"),
                    "the key removed (lago fills it in)",
                ));
            }
            if let Some(likely) = rules::likely_key(k, known) {
                self.warn(
                    p.key(k),
                    &format!("unknown key `{k}` (kept); did you mean `{likely}`?"),
                );
            }
        }
        Ok(m.into_iter().collect())
    }

    fn warn(&self, path: KeyPath, text: &str) {
        let e = self.src.error(path, text, None);
        self.warnings.borrow_mut().push(e.to_string());
    }

    fn opt_string(
        &self,
        m: &mut Map<String, Value>,
        path: &KeyPath,
        key: &str,
    ) -> R<Option<String>> {
        match m.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => self.string(&path.key(key), v).map(Some),
        }
    }

    fn opt_u64(
        &self,
        m: &mut Map<String, Value>,
        path: &KeyPath,
        key: &str,
        expected: &str,
    ) -> R<Option<u64>> {
        match m.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
            // Lago took `int(value)`: `memory: "4096"` is a number too.
            Some(Value::String(s)) if s.trim().parse::<u64>().is_ok() => Ok(s.trim().parse().ok()),
            // Past u64 (the reader keeps such integers as their digits).
            Some(Value::String(s)) if s.trim().parse::<u128>().is_ok() => Err(self.err(
                path.key(key),
                format!("{} is too large a number", s.trim()),
                expected,
            )),
            Some(v) => Err(self.wrong(path.key(key), &v, expected)),
        }
    }

    fn opt_bool(&self, m: &mut Map<String, Value>, path: &KeyPath, key: &str) -> R<Option<bool>> {
        match m.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            // YAML 1.1 spellings, as PyYAML read them for Lago.
            Some(Value::String(s)) if rules::yaml11_bool(s.trim()).is_some() => {
                Ok(rules::yaml11_bool(s.trim()))
            }
            Some(v) => Err(self.wrong(path.key(key), &v, "true or false (or yes/no, on/off)")),
        }
    }

    fn opt_ip(&self, m: &mut Map<String, Value>, path: &KeyPath, key: &str) -> R<Option<Ipv4Addr>> {
        match m.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| {
                self.err(
                    path.key(key),
                    format!("malformed IPv4 address {s:?}{}", lago_last_octet_note(&s)),
                    "an IPv4 address such as 192.168.200.10",
                )
            }),
            Some(v) => Err(self.wrong(path.key(key), &v, "an IPv4 address such as 192.168.200.10")),
        }
    }

    fn string_list(&self, m: &mut Map<String, Value>, path: &KeyPath, key: &str) -> R<Vec<String>> {
        let p = path.key(key);
        match m.remove(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            // A single string stands for a list of one.
            Some(Value::String(s)) => Ok(vec![s]),
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| self.string(&p.idx(i), v))
                .collect(),
            Some(v) => Err(self.wrong(p, &v, "a list of strings")),
        }
    }

    fn extra_map(&self, m: &mut Map<String, Value>, path: &KeyPath, key: &str) -> R<Extra> {
        match m.remove(key) {
            None | Some(Value::Null) => Ok(Extra::new()),
            Some(Value::Object(o)) => Ok(o.into_iter().collect()),
            Some(v) => Err(self.wrong(path.key(key), &v, "a mapping")),
        }
    }

    fn init_file(&self, v: Value) -> R<InitFile> {
        let root = KeyPath::root();
        let mut top = match v {
            Value::Object(m) => m,
            other => return Err(self.wrong(root, &other, "a mapping with `domains` and `nets`")),
        };
        let mut domains = BTreeMap::new();
        let dp = root.key("domains");
        match top.remove("domains") {
            None | Some(Value::Null) => {
                return Err(self.err(
                    dp,
                    "no domains are defined",
                    "a mapping of VM names to their definitions",
                ))
            }
            Some(v) => {
                let m = self.object(&dp, v, "a mapping of VM names to their definitions")?;
                for (name, d) in m {
                    let p = dp.key(&name);
                    check_name(&name).map_err(|why| self.err(p.clone(), why, NAME_RULE))?;
                    domains.insert(name, self.domain(&p, d)?);
                }
            }
        }
        let mut nets = BTreeMap::new();
        let np = root.key("nets");
        match top.remove("nets") {
            None | Some(Value::Null) => {
                return Err(self.err(
                    np,
                    "no networks are defined",
                    "a mapping of network names to their definitions",
                ))
            }
            Some(v) => {
                let m = self.object(&np, v, "a mapping of network names to their definitions")?;
                for (name, n) in m {
                    let p = np.key(&name);
                    check_name(&name).map_err(|why| self.err(p.clone(), why, NAME_RULE))?;
                    nets.insert(name, self.net(&p, n)?);
                }
            }
        }
        let hosts = self.hosts(&root, top.remove("hosts"))?;
        for (name, d) in &domains {
            if let Some(h) = &d.host {
                if !hosts.contains_key(h) {
                    let known: Vec<&str> = hosts.keys().map(String::as_str).collect();
                    return Err(self.err(
                        dp.key(name).key("host"),
                        format!("unknown host {h:?}"),
                        &if known.is_empty() {
                            "a host defined under the top-level `hosts:` (there is none)"
                                .to_string()
                        } else {
                            format!(
                                "one of the hosts defined under `hosts:`: {}",
                                known.join(", ")
                            )
                        },
                    ));
                }
            }
        }
        Ok(InitFile {
            source: self.src.clone(),
            domains,
            nets,
            hosts,
            extra: self.finish(top, &root, rules::TOP_KEYS, rules::TOP_PLANNED)?,
            warnings: Vec::new(),
        })
    }

    /// The top-level `hosts:` map: `NAME: {libvirt_url, ssh, address}`.
    fn hosts(&self, root: &KeyPath, v: Option<Value>) -> R<BTreeMap<String, HostSpec>> {
        let hp = root.key("hosts");
        let mut out = BTreeMap::new();
        let m = match v {
            None | Some(Value::Null) => return Ok(out),
            Some(v) => self.object(&hp, v, "a mapping of host names to `{libvirt_url: ...}`")?,
        };
        for (name, h) in m {
            let p = hp.key(&name);
            check_name(&name).map_err(|why| self.err(p.clone(), why, NAME_RULE))?;
            if name == DEFAULT_HOST {
                return Err(self.err(
                    p,
                    format!(
                        "the host name `{DEFAULT_HOST}` is reserved for the VMs without `host:`"
                    ),
                    "another name",
                ));
            }
            let mut hm = self.object(&p, h, "a mapping with `libvirt_url`")?;
            let libvirt_url = match self.opt_string(&mut hm, &p, "libvirt_url")? {
                Some(u) => u,
                None => {
                    return Err(self.err(
                        p.key("libvirt_url"),
                        "the host has no `libvirt_url`",
                        "libvirt's URL of the host, such as qemu+ssh://root@hv2/system",
                    ))
                }
            };
            self.rule(
                &p.key("libvirt_url"),
                &libvirt_url,
                rules::remote_libvirt_url,
                rules::REMOTE_URL_RULE,
            )?;
            let ssh = self.opt_string(&mut hm, &p, "ssh")?;
            if let Some(s) = &ssh {
                if SshDest::parse(s).is_none() {
                    return Err(self.err(
                        p.key("ssh"),
                        format!("{s:?} is not an SSH destination"),
                        "[user@]host[:port], such as root@hv2 or root@10.0.0.2:2222",
                    ));
                }
            }
            let address = self.opt_ip(&mut hm, &p, "address")?;
            // Two names for one machine would join its bridge to itself.
            let machine = |h: &HostSpec| {
                h.address
                    .map(|a| a.to_string())
                    .or_else(|| h.url_host().map(str::to_ascii_lowercase))
            };
            let this = HostSpec {
                libvirt_url: libvirt_url.clone(),
                ssh: None,
                address,
                extra: Extra::new(),
            };
            if let Some((other, _)) = out
                .iter()
                .find(|(_, h): &(&String, &HostSpec)| machine(h) == machine(&this))
            {
                return Err(self.err(
                    p,
                    format!(
                        "host {name} is the same machine as host {other} ({})",
                        machine(&this).unwrap_or_default()
                    ),
                    "one entry per libvirt host (VMs of both go on one host)",
                ));
            }
            let extra = self.finish(hm, &p, rules::HOST_KEYS, &[])?;
            out.insert(
                name,
                HostSpec {
                    libvirt_url,
                    ssh,
                    address,
                    extra,
                },
            );
        }
        Ok(out)
    }

    fn domain(&self, p: &KeyPath, v: Value) -> R<DomainDef> {
        let mut m = self.object(p, v, "a mapping of the VM's keys")?;
        // Lago's `type: ova` domain (with `url`): Lago unpacked the OVA and
        // took memory, vcpus and disks from its OVF. lago does not, and
        // must not plan a VM without them, so it refuses the domain.
        if m.get("type").and_then(Value::as_str) == Some("ova") {
            return Err(self.err(
                p.key("type"),
                "a domain of type `ova` (Lago unpacked the OVA at `url` and took memory, vcpus and disks from its OVF) is not supported by lago",
                "the VM written out: `memory`, `vcpu` and its disks (the OVA's disk converted with `qemu-img convert -O qcow2` as a `type: file` disk)",
            ));
        }
        let vcpu = match self.opt_u64(&mut m, p, "vcpu", "a whole number of virtual CPUs")? {
            Some(n) if n == 0 || n > 4096 => {
                return Err(self.err(
                    p.key("vcpu"),
                    format!("{n} virtual CPUs"),
                    "between 1 and 4096",
                ))
            }
            n => n.map(|n| n as u32),
        };
        // `memory: ~` (an empty Jinja value, say) is no silent default.
        if m.get("memory").is_some_and(Value::is_null) {
            return Err(self.err(
                p.key("memory"),
                "memory has no value (null)",
                "a whole number of MiB, or no `memory` key for the default",
            ));
        }
        let memory = self.opt_u64(&mut m, p, "memory", "a whole number of MiB")?;
        match memory {
            Some(0) => {
                return Err(self.err(
                    p.key("memory"),
                    "0 MiB of memory",
                    "a positive number of MiB",
                ))
            }
            Some(n) if n > rules::MAX_MEMORY_MIB => {
                return Err(self.err(
                    p.key("memory"),
                    format!("{n} MiB of memory is more than libvirt accepts"),
                    &format!("at most {} MiB", rules::MAX_MEMORY_MIB),
                ))
            }
            _ => {}
        }
        let nics_p = p.key("nics");
        let nics = match m.remove("nics") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| self.nic(&nics_p.idx(i), v))
                .collect::<R<Vec<_>>>()?,
            Some(v) => return Err(self.wrong(nics_p, &v, "a list of nics such as `- net: lago`")),
        };
        let disks_p = p.key("disks");
        let disks = match m.remove("disks") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| self.disk(&disks_p.idx(i), v))
                .collect::<R<Vec<_>>>()?,
            Some(v) => return Err(self.wrong(disks_p, &v, "a list of disks")),
        };
        let cpu_custom = match m.remove("cpu_custom") {
            None | Some(Value::Null) => None,
            Some(v @ Value::Object(_)) => Some(v),
            Some(v) => {
                return Err(self.wrong(
                    p.key("cpu_custom"),
                    &v,
                    "a mapping describing libvirt's <cpu> element",
                ))
            }
        };
        let cpu_model = self.opt_string(&mut m, p, "cpu_model")?;
        if let Some(c) = &cpu_model {
            self.rule(
                &p.key("cpu_model"),
                c,
                rules::cpu_model,
                rules::CPU_MODEL_RULE,
            )?;
            if cpu_custom.is_some() {
                return Err(self.err(
                    p.key("cpu_custom"),
                    "`cpu_custom` and `cpu_model` are both set",
                    "one of them: `cpu_model` names a model, `cpu_custom` describes the whole <cpu>",
                ));
            }
        }
        let metadata = self.metadata(&mut m, p)?;
        let groups = self.string_list(&mut m, p, "groups")?;
        for (i, g) in groups.iter().enumerate() {
            self.rule(
                &p.key("groups").idx(i),
                g,
                rules::group_name,
                rules::GROUP_RULE,
            )?;
        }
        let ssh_user = self.opt_string(&mut m, p, "ssh-user")?;
        if let Some(u) = &ssh_user {
            self.rule(&p.key("ssh-user"), u, rules::login_name, rules::LOGIN_RULE)?;
        }
        Ok(DomainDef {
            memory,
            vcpu,
            cpu_model,
            cpu_custom,
            nics,
            disks,
            artifacts: self.string_list(&mut m, p, "artifacts")?,
            groups,
            bootstrap: self.opt_bool(&mut m, p, "bootstrap")?,
            ssh_user,
            ssh_password: self.opt_string(&mut m, p, "ssh-password")?,
            root_password: self.opt_string(&mut m, p, "root-password")?,
            service_provider: self.opt_string(&mut m, p, "service_provider")?,
            vm_provider: self.opt_string(&mut m, p, "vm-provider")?,
            vm_type: self.opt_string(&mut m, p, "vm-type")?,
            metadata,
            boot_time_sec: self.opt_u64(&mut m, p, "boot_time_sec", "a whole number of seconds")?,
            distro: self.opt_string(&mut m, p, "distro")?,
            host: self.opt_string(&mut m, p, "host")?,
            extra: self.finish(m, p, rules::VM_KEYS, rules::VM_PLANNED)?,
        })
    }

    /// A VM's `metadata`: free-form, but its `deploy-scripts` are a list of
    /// paths. Lago's older `ovirt-scripts` is read as `deploy-scripts` (with
    /// a deprecation warning) when `deploy-scripts` is not given, as Lago's
    /// `_get_scripts` did.
    fn metadata(&self, m: &mut Map<String, Value>, p: &KeyPath) -> R<Extra> {
        let mut metadata = self.extra_map(m, p, "metadata")?;
        let mp = p.key("metadata");
        if let Some(old) = metadata.get("ovirt-scripts") {
            let non_empty = matches!(old, Value::Array(a) if !a.is_empty());
            if metadata.contains_key("deploy-scripts") {
                self.warn(
                    mp.key("ovirt-scripts"),
                    "deprecated `ovirt-scripts` is ignored: `deploy-scripts` is set",
                );
            } else if non_empty || !old.is_array() {
                self.warn(
                    mp.key("ovirt-scripts"),
                    "deprecated `ovirt-scripts`: read as `deploy-scripts` (rename it)",
                );
                if let Some(v) = metadata.remove("ovirt-scripts") {
                    self.scripts(&mp.key("ovirt-scripts"), &v)?;
                    metadata.insert("deploy-scripts".into(), v);
                }
            }
        }
        if let Some(s) = metadata.get("deploy-scripts") {
            self.scripts(&mp.key("deploy-scripts"), s)?;
        }
        Ok(metadata)
    }

    fn scripts(&self, sp: &KeyPath, v: &Value) -> R<()> {
        match v {
            Value::Array(items) => {
                for (i, it) in items.iter().enumerate() {
                    if !it.is_string() {
                        return Err(self.wrong(sp.idx(i), it, "the path of a script"));
                    }
                }
                Ok(())
            }
            other => Err(self.wrong(sp.clone(), other, "a list of script paths")),
        }
    }

    fn nic(&self, p: &KeyPath, v: Value) -> R<NicDef> {
        let mut m = match v {
            Value::Object(m) => m,
            other => return Err(self.wrong(p.clone(), &other, "a nic such as `{net: lago}`")),
        };
        let net = match self.opt_string(&mut m, p, "net")? {
            Some(n) => n,
            None => {
                return Err(self.err(
                    p.key("net"),
                    "a nic without `net`",
                    "the name of a network in `nets`",
                ))
            }
        };
        Ok(NicDef {
            net,
            ip: self.opt_ip(&mut m, p, "ip")?,
            extra: self.finish(m, p, rules::NIC_KEYS, rules::NIC_PLANNED)?,
        })
    }

    fn disk(&self, p: &KeyPath, v: Value) -> R<DiskDef> {
        let mut m = match v {
            Value::Object(m) => m,
            other => return Err(self.wrong(p.clone(), &other, "a disk mapping")),
        };
        let type_p = p.key("type");
        let disk_type = match m.remove("type") {
            Some(Value::String(t)) => match t.as_str() {
                "template" => Some(DiskType::Template),
                "file" => Some(DiskType::File),
                "empty" => Some(DiskType::Empty),
                other => {
                    return Err(self.err(
                        type_p,
                        format!("unknown disk type {other:?}"),
                        "template, file or empty",
                    ))
                }
            },
            None | Some(Value::Null) => None,
            Some(v) => return Err(self.wrong(type_p, &v, "template, file or empty")),
        };
        let template_name = self.opt_string(&mut m, p, "template_name")?;
        let path = self.opt_string(&mut m, p, "path")?;
        if path.as_deref().is_some_and(|s| s.trim().is_empty()) {
            return Err(self.err(
                p.key("path"),
                "the disk path is empty",
                "the path of an image file",
            ));
        }
        let url = self.opt_string(&mut m, p, "url")?;
        // Lago's examples always name the type; infer it when they do not.
        let disk_type = match disk_type {
            Some(t) => t,
            None if template_name.is_some() => DiskType::Template,
            None if path.is_some() || url.is_some() => DiskType::File,
            None if m.contains_key("size") => DiskType::Empty,
            None => {
                return Err(self.err(type_p, "a disk without `type`", "template, file or empty"))
            }
        };
        let size_p = p.key("size");
        let size = match m.remove("size") {
            None | Some(Value::Null) => None,
            // Stored in one spelling (` 1 m ` → `1M`, `"1"` → `1G`): what is
            // checked is what qemu-img gets.
            Some(Value::String(s)) => Some(s),
            // An integer is GiB (Lago's examples write `size: 10` for 10G).
            Some(Value::Number(n)) if n.as_u64().is_some() => Some(format!("{n}G")),
            Some(v) => return Err(self.wrong(size_p, &v, rules::SIZE_RULE)),
        };
        let size = match size {
            Some(s) => Some(
                rules::normalise_size(&s)
                    .map_err(|why| self.err(size_p, why, rules::SIZE_RULE))?
                    .0,
            ),
            None => None,
        };
        let format = self.opt_string(&mut m, p, "format")?;
        if let Some(f) = &format {
            if !matches!(f.as_str(), "qcow2" | "raw" | "iso") {
                return Err(self.err(
                    p.key("format"),
                    format!("unknown disk format {f:?}"),
                    "qcow2, raw or iso",
                ));
            }
        }
        let dev = match self.opt_string(&mut m, p, "dev")? {
            Some(d) => Some((d, "dev")),
            None => self.opt_string(&mut m, p, "device")?.map(|d| (d, "device")),
        };
        if let Some((d, key)) = &dev {
            if !valid_dev(d) {
                return Err(self.err(
                    p.key(key),
                    format!("bad device name {d:?}"),
                    "vd*, sd* or hd* followed by letters, e.g. vda",
                ));
            }
        }
        let template_type = self.opt_string(&mut m, p, "template_type")?;
        if let Some(t) = &template_type {
            if !matches!(t.as_str(), "lago" | "qcow2") {
                return Err(self.err(
                    p.key("template_type"),
                    format!("unknown template type {t:?}"),
                    "lago or qcow2",
                ));
            }
        }
        let name = self.opt_string(&mut m, p, "name")?;
        if let Some(n) = &name {
            check_name(n).map_err(|why| self.err(p.key("name"), why, NAME_RULE))?;
        }
        let build = match m.remove("build") {
            None | Some(Value::Null) => None,
            Some(v @ Value::Array(_)) => Some(v),
            Some(v) => {
                return Err(self.wrong(
                    p.key("build"),
                    &v,
                    "a list of builders such as `- virt-customize: {...}`",
                ))
            }
        };
        Ok(DiskDef {
            disk_type,
            template_name,
            template_type,
            template_version: self.opt_string(&mut m, p, "template_version")?,
            path,
            url,
            size,
            format,
            dev: dev.map(|d| d.0),
            name,
            build,
            metadata: self.extra_map(&mut m, p, "metadata")?,
            extra: self.finish(m, p, rules::DISK_KEYS, rules::DISK_PLANNED)?,
        })
    }

    fn net(&self, p: &KeyPath, v: Value) -> R<NetDef> {
        let mut m = self.object(p, v, "a mapping of the network's keys")?;
        let type_p = p.key("type");
        let net_type = match m.remove("type") {
            None | Some(Value::Null) => NetType::Nat,
            Some(Value::String(t)) => match t.as_str() {
                "nat" => NetType::Nat,
                "bridge" => NetType::Bridge,
                other => {
                    return Err(self.err(
                        type_p,
                        format!("unknown network type {other:?}"),
                        "nat or bridge",
                    ))
                }
            },
            Some(v) => return Err(self.wrong(type_p, &v, "nat or bridge")),
        };
        let dhcp_p = p.key("dhcp");
        let dhcp = match m.remove("dhcp") {
            None | Some(Value::Null) => None,
            Some(Value::Object(mut d)) => {
                let start = self.octet(&mut d, &dhcp_p, "start")?;
                let end = self.octet(&mut d, &dhcp_p, "end")?;
                if start > end {
                    return Err(self.err(
                        dhcp_p,
                        format!("the DHCP pool starts at .{start}, after its end .{end}"),
                        "start <= end",
                    ));
                }
                Some((start, end))
            }
            Some(v) => return Err(self.wrong(dhcp_p, &v, "a mapping {start: 100, end: 254}")),
        };
        let mtu = match self.opt_u64(&mut m, p, "mtu", "an MTU in bytes")? {
            Some(n) if !(68..=65535).contains(&n) => {
                return Err(self.err(p.key("mtu"), format!("MTU {n}"), "between 68 and 65535"))
            }
            n => n.map(|n| n as u32),
        };
        let dns_domain_name = self.opt_string(&mut m, p, "dns_domain_name")?;
        if let Some(d) = &dns_domain_name {
            self.rule(
                &p.key("dns_domain_name"),
                d,
                rules::dns_domain,
                rules::DNS_RULE,
            )?;
        }
        Ok(NetDef {
            net_type,
            dhcp,
            management: self.opt_bool(&mut m, p, "management")?,
            dns_domain_name,
            gw: self.opt_ip(&mut m, p, "gw")?,
            mtu,
            dns_records: self.dns_records(&mut m, p)?,
            extra: self.finish(m, p, rules::NET_KEYS, rules::NET_PLANNED)?,
        })
    }

    /// Lago's `dns_records: {host: ip}`.
    fn dns_records(
        &self,
        m: &mut Map<String, Value>,
        p: &KeyPath,
    ) -> R<BTreeMap<String, Ipv4Addr>> {
        let mut out = BTreeMap::new();
        for (host, v) in self.extra_map(m, p, "dns_records")? {
            let hp = p.key("dns_records").key(&host);
            self.rule(
                &hp,
                &host,
                rules::dns_name,
                "a DNS host name such as www.example.org",
            )?;
            let mut one = Map::new();
            one.insert(host.clone(), v);
            let ip = self.opt_ip(&mut one, &p.key("dns_records"), &host)?;
            if let Some(ip) = ip {
                out.insert(host, ip);
            }
        }
        Ok(out)
    }

    /// A DHCP bound: a last octet (`100`) or a full address (`192.168.200.100`).
    fn octet(&self, m: &mut Map<String, Value>, p: &KeyPath, key: &str) -> R<u8> {
        let kp = p.key(key);
        let expected = "a last octet between 2 and 254, such as 100";
        match m.remove(key) {
            Some(Value::Number(n)) => match n.as_u64() {
                Some(o @ 2..=254) => Ok(o as u8),
                _ => Err(self.err(kp, format!("DHCP bound {n} is out of range"), expected)),
            },
            // `"100"` (a number written as a string, as Lago accepted) or
            // `"192.168.200.100"`.
            Some(Value::String(s)) => {
                match (s.trim().parse::<u8>(), s.trim().parse::<Ipv4Addr>()) {
                    (Ok(o @ 2..=254), _) => Ok(o),
                    (_, Ok(ip)) if (2..=254).contains(&ip.octets()[3]) => Ok(ip.octets()[3]),
                    _ => Err(self.err(kp, format!("malformed DHCP bound {s:?}"), expected)),
                }
            }
            None | Some(Value::Null) => Err(self.err(kp, "missing DHCP bound", expected)),
            Some(v) => Err(self.wrong(kp, &v, expected)),
        }
    }
}

const NAME_RULE: &str = "a name of letters, digits, '.', '_' and '-', starting with a letter or digit, at most 63 characters";

/// VM, network and disk names end in file names and hypervisor names.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok_first = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let ok_rest = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if name.is_empty() || name.len() > 63 || !ok_first || !ok_rest {
        return Err(format!("the name {name:?} is not allowed"));
    }
    Ok(())
}

fn valid_dev(d: &str) -> bool {
    let rest = d
        .strip_prefix("vd")
        .or_else(|| d.strip_prefix("sd"))
        .or_else(|| d.strip_prefix("hd"));
    matches!(rest, Some(r) if !r.is_empty() && r.len() <= 3 && r.chars().all(|c| c.is_ascii_lowercase()))
}

/// Bytes of a size such as `10G`, `512M`, `1T`, `4096K`, `4096B` or `10`
/// (GiB) (see [`rules::normalise_size`]).
pub fn parse_size(s: &str) -> Option<u64> {
    rules::normalise_size(s).ok().map(|(_, bytes)| bytes)
}

/// The subnets lago leases NAT networks from: 192.168.200.0/24 to
/// 192.168.255.0/24.
pub const LEASE_RANGE: std::ops::RangeInclusive<u8> = 200..=255;

impl InitFile {
    fn err(&self, path: KeyPath, msg: impl Into<String>, expected: Option<&str>) -> InitError {
        self.source.error(path, msg, expected)
    }

    /// Build an error pointing at `path` in this init file.
    pub fn error(
        &self,
        path: KeyPath,
        msg: impl Into<String>,
        expected: Option<&str>,
    ) -> InitError {
        self.err(path, msg, expected)
    }

    /// Every VM's `service_provider` names one of `known` (the vm-service
    /// plugins there are).
    pub fn check_service_providers(&self, known: &[String]) -> Result<(), InitError> {
        for (vm, d) in &self.domains {
            let Some(sp) = &d.service_provider else {
                continue;
            };
            if !known.contains(sp) {
                return Err(self.err(
                    KeyPath::root()
                        .key("domains")
                        .key(vm)
                        .key("service_provider"),
                    format!("no vm-service plugin is named {sp:?}"),
                    Some(&format!("one of: {}", known.join(", "))),
                ));
            }
        }
        Ok(())
    }

    /// The management networks: those marked `management: true`, else the
    /// first by name. Each VM has exactly one nic on one of them.
    pub fn mgmt_nets(&self) -> BTreeSet<&str> {
        let marked: BTreeSet<&str> = self
            .nets
            .iter()
            .filter(|(_, n)| n.management == Some(true))
            .map(|(k, _)| k.as_str())
            .collect();
        if !marked.is_empty() {
            return marked;
        }
        self.nets
            .keys()
            .next()
            .map(String::as_str)
            .into_iter()
            .collect()
    }

    /// The management network of a VM: the net of its nic on a management
    /// network.
    pub fn mgmt_net_of(&self, vm: &DomainDef) -> Option<&str> {
        let mgmt = self.mgmt_nets();
        vm.nics
            .iter()
            .map(|n| n.net.as_str())
            .find(|n| mgmt.contains(n))
            .and_then(|n| self.nets.get_key_value(n).map(|(k, _)| k.as_str()))
    }

    /// The checks that span keys. Called by [`parse_str`].
    pub fn validate(&self) -> Result<(), InitError> {
        let root = KeyPath::root();
        if self.domains.is_empty() {
            return Err(self.err(
                root.key("domains"),
                "no domains are defined",
                Some("at least one VM"),
            ));
        }
        if self.nets.is_empty() {
            return Err(self.err(
                root.key("nets"),
                "no networks are defined",
                Some("at least one network"),
            ));
        }
        let mgmt_set = self.mgmt_nets();
        let mgmt = mgmt_set.iter().copied().collect::<Vec<_>>().join(" or ");
        for (name, net) in &self.nets {
            let p = root.key("nets").key(name);
            if !mgmt_set.contains(name.as_str()) && net.dns_domain_name.is_some() {
                return Err(self.err(
                    p.key("dns_domain_name"),
                    format!("network {name} is not a management network but has a DNS domain"),
                    Some("`dns_domain_name` only on management networks"),
                ));
            }
            if !mgmt_set.contains(name.as_str()) && !net.dns_records.is_empty() {
                return Err(self.err(
                    p.key("dns_records"),
                    format!("network {name} is not a management network but has DNS records"),
                    Some("`dns_records` only on management networks (they serve DNS)"),
                ));
            }
            if mgmt_set.contains(name.as_str()) && net.net_type != NetType::Nat {
                return Err(self.err(
                    p.key("type"),
                    format!("the management network {name} is a bridge"),
                    Some("a management network of type nat (it serves DHCP and DNS)"),
                ));
            }
            if let Some(gw) = net.gw {
                let o = gw.octets();
                if net.net_type == NetType::Nat
                    && (o[0] != 192 || o[1] != 168 || !LEASE_RANGE.contains(&o[2]))
                {
                    return Err(self.err(
                        p.key("gw"),
                        format!("gateway {gw} is out of the range lago leases subnets from"),
                        Some("an address in 192.168.200.0/24 to 192.168.255.0/24"),
                    ));
                }
                if o[3] == 0 || o[3] == 255 {
                    return Err(self.err(
                        p.key("gw"),
                        format!("gateway {gw} is the network or broadcast address"),
                        Some("a host address such as 192.168.200.1"),
                    ));
                }
            }
        }
        // Static addresses: inside the subnet, unique.
        let mut static_ips: BTreeMap<(String, u8), KeyPath> = BTreeMap::new();
        let mut subnet_of_net: BTreeMap<&str, ([u8; 3], KeyPath)> = BTreeMap::new();
        for (vm, d) in &self.domains {
            let p = root.key("domains").key(vm);
            if d.nics.is_empty() {
                return Err(self.err(
                    p.key("nics"),
                    format!("VM {vm} has no nics, so no management nic"),
                    Some(&format!(
                        "a nic on the management network, e.g. `nics: [{{net: {mgmt}}}]`"
                    )),
                ));
            }
            let mut mgmt_nic: Option<(usize, &str)> = None;
            for (i, nic) in d.nics.iter().enumerate() {
                let np = p.key("nics").idx(i);
                let Some(net) = self.nets.get(&nic.net) else {
                    let known: Vec<&str> = self.nets.keys().map(String::as_str).collect();
                    return Err(self.err(
                        np.key("net"),
                        format!("unknown network {:?}", nic.net),
                        Some(&format!(
                            "one of the networks in `nets`: {}",
                            known.join(", ")
                        )),
                    ));
                };
                if mgmt_set.contains(nic.net.as_str()) {
                    if let Some((first, first_net)) = mgmt_nic {
                        let msg = if first_net == nic.net {
                            format!("VM {vm} has a second nic on the management network {first_net} (nic {first} is on it)")
                        } else {
                            format!("VM {vm} is on two management networks: {first_net} (nic {first}) and {}", nic.net)
                        };
                        return Err(self.err(
                            np.key("net"),
                            msg,
                            Some("exactly one management nic per VM"),
                        ));
                    }
                    mgmt_nic = Some((i, nic.net.as_str()));
                }
                let Some(ip) = nic.ip else { continue };
                let ipp = np.key("ip");
                let o = ip.octets();
                let expected_subnet: Option<[u8; 3]> = net.gw.map(|g| {
                    let g = g.octets();
                    [g[0], g[1], g[2]]
                });
                match expected_subnet {
                    Some(s) if [o[0], o[1], o[2]] != s => {
                        return Err(self.err(
                            ipp,
                            format!(
                                "static IP {ip} is outside the subnet {}.{}.{}.0/24 of network {}",
                                s[0], s[1], s[2], nic.net
                            ),
                            Some(&format!("an address in {}.{}.{}.0/24", s[0], s[1], s[2])),
                        ))
                    }
                    Some(_) => {}
                    None if net.net_type == NetType::Nat => {
                        if o[0] != 192 || o[1] != 168 || !LEASE_RANGE.contains(&o[2]) {
                            return Err(self.err(
                                ipp,
                                format!("static IP {ip} is outside the subnets lago leases"),
                                Some("an address in 192.168.200.0/24 to 192.168.255.0/24 (it moves into the leased subnet, keeping its last octet), or set the network's `gw`"),
                            ));
                        }
                        match subnet_of_net.get(nic.net.as_str()) {
                            Some((s, first)) if *s != [o[0], o[1], o[2]] => {
                                return Err(self.err(
                                    ipp,
                                    format!(
                                        "static IP {ip} is outside the subnet {}.{}.{}.0/24 of network {} (set by {first})",
                                        s[0], s[1], s[2], nic.net
                                    ),
                                    Some(&format!("an address in {}.{}.{}.0/24", s[0], s[1], s[2])),
                                ))
                            }
                            Some(_) => {}
                            None => {
                                subnet_of_net.insert(nic.net.as_str(), ([o[0], o[1], o[2]], ipp.clone()));
                            }
                        }
                    }
                    None => {}
                }
                if net.net_type == NetType::Nat || net.gw.is_some() {
                    let gw_octet = net.gw.map(|g| g.octets()[3]).unwrap_or(1);
                    if o[3] == 0 || o[3] == 255 || o[3] == gw_octet {
                        return Err(self.err(
                            ipp,
                            format!("static IP {ip} is the network, broadcast or gateway address"),
                            Some("a host address between .2 and .254 other than the gateway"),
                        ));
                    }
                    if let Some((s, e)) = net.dhcp {
                        if (s..=e).contains(&o[3]) {
                            return Err(self.err(
                                ipp,
                                format!("static IP {ip} is inside the DHCP pool .{s}-.{e} of network {}", nic.net),
                                Some("an address outside the DHCP pool"),
                            ));
                        }
                    }
                }
                let key = (nic.net.clone(), o[3]);
                if let Some(first) = static_ips.get(&key) {
                    return Err(self.err(
                        ipp,
                        format!(
                            "duplicate static IP {ip} on network {} (also at {first})",
                            nic.net
                        ),
                        Some("a different address for each nic"),
                    ));
                }
                static_ips.insert(key, ipp);
            }
            if mgmt_nic.is_none() {
                return Err(self.err(
                    p.key("nics"),
                    format!("VM {vm} has no nic on the management network {mgmt}"),
                    Some(&format!("one nic with `net: {mgmt}`")),
                ));
            }
            let mut names = BTreeSet::new();
            let mut devs = BTreeSet::new();
            for (i, disk) in d.disks.iter().enumerate() {
                let dp = p.key("disks").idx(i);
                match disk.disk_type {
                    DiskType::Template => {
                        let qcow2 = disk.template_type.as_deref() == Some("qcow2");
                        if disk.template_name.is_none() && !qcow2 {
                            return Err(self.err(
                                dp.key("template_name"),
                                "a template disk without `template_name`",
                                Some("the name of a template, e.g. `template_name: el7.3-base`"),
                            ));
                        }
                        if qcow2 && disk.path.is_none() {
                            return Err(self.err(
                                dp.key("path"),
                                "a template disk of `template_type: qcow2` without `path`",
                                Some("the path of the qcow2 image to use as the base"),
                            ));
                        }
                    }
                    DiskType::File => {
                        if disk.path.is_none() && disk.url.is_none() {
                            return Err(self.err(
                                dp.key("path"),
                                "a file disk without `path` or `url`",
                                Some("the path of an image file"),
                            ));
                        }
                    }
                    DiskType::Empty => {
                        if disk.size.is_none() {
                            return Err(self.err(
                                dp.key("size"),
                                "an empty disk without `size`",
                                Some("a size such as 10G"),
                            ));
                        }
                    }
                }
                let (name, dev) = disk_name_dev(disk, i);
                if !names.insert(name.clone()) {
                    return Err(self.err(
                        dp.key("name"),
                        format!("two disks of VM {vm} are named {name}"),
                        Some("a different name for each disk"),
                    ));
                }
                if !devs.insert(dev.clone()) {
                    return Err(self.err(
                        dp.key("dev"),
                        format!("two disks of VM {vm} use device {dev}"),
                        Some("a different device for each disk"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The name and device of a disk, defaults applied: device `vd<letter>` by
/// position, name `root` for the first disk and `disk<i>` after.
pub fn disk_name_dev(disk: &DiskDef, index: usize) -> (String, String) {
    let dev = disk
        .dev
        .clone()
        .unwrap_or_else(|| format!("vd{}", dev_letters(index)));
    let name = disk.name.clone().unwrap_or_else(|| {
        if index == 0 {
            "root".to_string()
        } else {
            format!("disk{index}")
        }
    });
    (name, dev)
}

fn dev_letters(mut i: usize) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'a' + (i % 26) as u8);
        if i < 26 {
            break;
        }
        i = i / 26 - 1;
    }
    s.reverse();
    String::from_utf8(s).unwrap_or_default()
}

/// Expand `$NAME` and `${NAME}` with `lookup`; `$` not followed by a name is
/// kept. An unknown variable is an error naming it.
pub fn expand_vars(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let (name, next) = if b.get(i + 1) == Some(&b'{') {
                match s[i + 2..].find('}') {
                    Some(e) => (&s[i + 2..i + 2 + e], i + 3 + e),
                    None => return Err(format!("unterminated ${{ in {s:?}")),
                }
            } else {
                let e = s[i + 1..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .map(|e| i + 1 + e)
                    .unwrap_or(s.len());
                (&s[i + 1..e], e)
            };
            if name.is_empty() {
                out.push('$');
                i += 1;
                continue;
            }
            match lookup(name) {
                Some(v) => out.push_str(&v),
                None => return Err(format!("undefined environment variable ${name}")),
            }
            i = next;
        } else {
            let ch = s[i..].chars().next().unwrap_or_default();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    Ok(out)
}

/// A refused init file is the user's to fix.
impl From<InitError> for crate::error::Error {
    fn from(e: InitError) -> Self {
        crate::error::Error::user(e.to_string())
    }
}

#[cfg(test)]
mod tests;
