//! The `lago` command line: global flags, the verb table, the shared
//! [`Context`] and what a verb returns ([`Output`]).
//!
//! Convention (cargo-style): one file per verb, `cli/<verb>.rs`, exporting
//!
//! ```ignore
//! pub fn command() -> clap::Command;
//! pub fn run(ctx: &mut Context, args: &clap::ArgMatches) -> Result<Output, crate::error::Error>;
//! ```
//!
//! and one line in [`VERBS`]. A verb stays thin: it reads its arguments,
//! calls library functions and returns data; [`main_with_args`] renders
//! [`Output::Data`] with the `--out-format` plugin.
//!
//! Verbs added by plugins (CLI plugins, vm-type verbs) are not in the table:
//! an unknown verb makes `lago` load the plugin libraries, turn their specs
//! into clap commands and parse again ([`plugin_verb`]). Built-in verbs that
//! need no plugin library never open one.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgMatches, Command};

use crate::config::Config;
use crate::error::Error;
use crate::plugins::{PluginKind, Registry, SearchPath};
use crate::prefix::{Prefix, Workdir};

pub mod ansible_hosts;
pub mod cleanup;
pub mod collect;
pub mod completion;
pub mod console;
pub mod copy_from_vm;
pub mod copy_to_vm;
pub mod deploy;
pub mod destroy;
pub mod env;
pub mod export;
pub mod generate_config;
pub mod init;
pub mod list;
pub mod plugin_verb;
pub mod plugins;
pub mod revert;
pub mod set_current;
pub mod shell;
pub mod shutdown;
pub mod snapshot;
pub mod start;
pub mod status;
pub mod stop;

/// What a verb hands back to `main`.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Nothing to print; exit 0.
    Nothing,
    /// A data tree, rendered with the `--out-format` plugin and printed.
    Data(serde_json::Value),
    /// Text printed as it is (a newline is added when missing).
    Text(String),
    /// Exit with this code and print nothing (e.g. `shell`'s remote status).
    Exit(i32),
}

/// The signature of a verb's `run`.
pub type RunFn = fn(&mut Context, &ArgMatches) -> Result<Output, Error>;

/// One built-in verb: its name, its clap definition and its run function.
pub struct Verb {
    pub name: &'static str,
    pub command: fn() -> Command,
    pub run: RunFn,
}

macro_rules! verb {
    ($name:literal, $module:ident) => {
        Verb {
            name: $name,
            command: $module::command,
            run: $module::run,
        }
    };
}

/// Every built-in verb, in the order `lago --help` lists them.
pub static VERBS: &[Verb] = &[
    verb!("init", init),
    verb!("start", start),
    verb!("stop", stop),
    verb!("shutdown", shutdown),
    verb!("destroy", destroy),
    verb!("cleanup", cleanup),
    verb!("status", status),
    verb!("list", list),
    verb!("set-current", set_current),
    verb!("shell", shell),
    verb!("console", console),
    verb!("copy-to-vm", copy_to_vm),
    verb!("copy-from-vm", copy_from_vm),
    verb!("snapshot", snapshot),
    verb!("revert", revert),
    verb!("export", export),
    verb!("collect", collect),
    verb!("deploy", deploy),
    verb!("ansible_hosts", ansible_hosts),
    verb!("generate-config", generate_config),
    verb!("plugins", plugins),
    verb!("completion", completion),
    Verb {
        name: "man",
        command: completion::man_command,
        run: completion::run_man,
    },
];

/// Lago's global flags, as parsed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GlobalArgs {
    /// `-l/--loglevel`: debug, info, warning, error.
    pub loglevel: Option<String>,
    /// `--logdepth`: task levels shown, `-1` for all.
    pub logdepth: Option<i64>,
    /// `-f/--out-format`; unset: `[lago] out_format` (default `default`).
    pub out_format: Option<String>,
    pub workdir_path: Option<PathBuf>,
    pub prefix_name: Option<String>,
    /// Deprecated `-p/--prefix-path`.
    pub prefix_path: Option<PathBuf>,
    pub ssh_user: Option<String>,
    pub ssh_password: Option<String>,
    pub ssh_tries: Option<u32>,
    pub ssh_timeout: Option<u32>,
    pub libvirt_url: Option<String>,
    pub libvirt_user: Option<String>,
    pub libvirt_password: Option<String>,
    pub default_vm_type: Option<String>,
    pub default_vm_provider: Option<String>,
    pub default_root_password: Option<String>,
    pub lease_dir: Option<PathBuf>,
    pub ignore_warnings: bool,
}

impl GlobalArgs {
    /// Read the global flags out of the top-level matches.
    pub fn from_matches(m: &ArgMatches) -> GlobalArgs {
        let s = |id: &str| m.get_one::<String>(id).cloned();
        let p = |id: &str| m.get_one::<String>(id).map(PathBuf::from);
        let n = |id: &str| m.get_one::<u32>(id).copied();
        GlobalArgs {
            loglevel: s("loglevel"),
            logdepth: m.get_one::<i64>("logdepth").copied(),
            out_format: s("out_format"),
            workdir_path: p("workdir_path"),
            prefix_name: s("prefix_name"),
            prefix_path: p("prefix_path"),
            ssh_user: s("ssh_user"),
            ssh_password: s("ssh_password"),
            ssh_tries: n("ssh_tries"),
            ssh_timeout: n("ssh_timeout"),
            libvirt_url: s("libvirt_url"),
            libvirt_user: s("libvirt_user"),
            libvirt_password: s("libvirt_password"),
            default_vm_type: s("default_vm_type"),
            default_vm_provider: s("default_vm_provider"),
            default_root_password: s("default_root_password"),
            lease_dir: p("lease_dir"),
            ignore_warnings: m.get_flag("ignore_warnings"),
        }
    }

    /// The flags given on the command line as configuration overrides
    /// `(section, key, value)`, all in `[lago]`, keyed as Lago's config keys.
    pub fn config_overrides(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        let mut put = |key: &str, value: Option<String>| {
            if let Some(v) = value {
                out.push(("lago".to_string(), key.to_string(), v));
            }
        };
        put("loglevel", self.loglevel.clone());
        put("logdepth", self.logdepth.map(|v| v.to_string()));
        put("out_format", self.out_format.clone());
        put(
            "ignore_warnings",
            self.ignore_warnings.then(|| "true".to_string()),
        );
        put("ssh_user", self.ssh_user.clone());
        put("ssh_password", self.ssh_password.clone());
        put("ssh_tries", self.ssh_tries.map(|v| v.to_string()));
        put("ssh_timeout", self.ssh_timeout.map(|v| v.to_string()));
        put("libvirt_url", self.libvirt_url.clone());
        put("libvirt_user", self.libvirt_user.clone());
        put("libvirt_password", self.libvirt_password.clone());
        put("default_vm_type", self.default_vm_type.clone());
        put("default_vm_provider", self.default_vm_provider.clone());
        put("default_root_password", self.default_root_password.clone());
        put(
            "lease_dir",
            self.lease_dir.as_ref().map(|p| p.display().to_string()),
        );
        out
    }
}

/// What every verb gets: the global flags, the configuration, and (lazily)
/// the plugin registry and the resolved workdir/prefix.
pub struct Context {
    pub globals: GlobalArgs,
    pub config: Config,
    /// argv[0]'s file name (`lago` or `lagocli`), for messages.
    pub bin_name: String,
    /// Where plugin libraries are looked for.
    pub search_path: SearchPath,
    registry: Option<Registry>,
}

impl Context {
    pub fn new(globals: GlobalArgs, config: Config, bin_name: String) -> Context {
        Context {
            globals,
            config,
            bin_name,
            search_path: SearchPath::from_env(),
            registry: None,
        }
    }

    /// The out-format name: `-f`, else `[lago] out_format` (file or
    /// `LAGO_OUT_FORMAT`), else `default`.
    pub fn out_format(&self) -> &str {
        self.config.out_format()
    }

    fn registry_mut(&mut self) -> Result<&mut Registry, Error> {
        if self.registry.is_none() {
            crate::plugins::host::install_for_builtins();
            self.registry = Some(Registry::builtins()?);
        }
        self.registry
            .as_mut()
            .ok_or_else(|| Error::internal("plugin registry missing"))
    }

    /// The built-in plugins only: no library is opened.
    pub fn builtin_plugins(&mut self) -> Result<&Registry, Error> {
        Ok(&*self.registry_mut()?)
    }

    /// Every plugin: the built-ins and every library on the search path
    /// (opened on the first call).
    pub fn plugins(&mut self) -> Result<&Registry, Error> {
        let path = self.search_path.clone();
        let reg = self.registry_mut()?;
        reg.load_all(&path)?;
        Ok(&*reg)
    }

    /// What every library holds, opening only those the plugin index does
    /// not know (for listing: `lago plugins`).
    pub fn plugin_index(&mut self) -> Result<&Registry, Error> {
        let path = self.search_path.clone();
        let reg = self.registry_mut()?;
        reg.scan(&path)?;
        Ok(&*reg)
    }

    /// The built-ins and the libraries holding a plugin `want` accepts
    /// (kind, name); other libraries stay closed.
    pub fn plugins_where(
        &mut self,
        want: impl Fn(PluginKind, &str) -> bool,
    ) -> Result<&Registry, Error> {
        let path = self.search_path.clone();
        let reg = self.registry_mut()?;
        reg.load_where(&path, want)?;
        Ok(&*reg)
    }

    /// Make sure the `-f` out-format exists, opening only the library that
    /// has it when it is not a built-in. Called before a verb runs, so a typo
    /// does not waste the verb's work.
    pub fn check_out_format(&mut self) -> Result<(), Error> {
        let name = self.out_format().to_string();
        if self.builtin_plugins()?.out_formats.contains_key(&name) {
            return Ok(());
        }
        let reg = self.plugins_where(|k, n| k == PluginKind::OutFormat && n == name)?;
        if reg.out_formats.contains_key(&name) {
            Ok(())
        } else {
            Err(Error::user(format!(
                "unknown out-format `{name}` (available: {})",
                reg.list()
                    .into_iter()
                    .filter(|p| p.kind == PluginKind::OutFormat)
                    .map(|p| p.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    }

    /// Render `tree` with the `-f` out-format.
    pub fn render(&mut self, tree: &serde_json::Value) -> Result<String, Error> {
        self.check_out_format()?;
        let name = self.out_format().to_string();
        let reg = self.registry_mut()?;
        reg.format(&name, tree)
    }

    /// The workdir named by `-w`, or found by walking up from the current
    /// folder.
    pub fn workdir(&self) -> Result<Workdir, Error> {
        Ok(self.workdir_and_prefix_name()?.0)
    }

    /// The workdir (as [`Context::workdir`]) and the prefix name to use in
    /// it: `-P NAME`, else the prefix the current folder is in (`cd
    /// .lago/p1 && lago status` uses p1, as Lago), else `None` (the current
    /// one).
    pub fn workdir_and_prefix_name(&self) -> Result<(Workdir, Option<String>), Error> {
        let (wd, here) = match &self.globals.workdir_path {
            Some(p) => (Workdir::open(p)?, None),
            None => Workdir::discover_with_prefix(&std::env::current_dir()?)?,
        };
        Ok((wd, self.globals.prefix_name.clone().or(here)))
    }

    /// The prefix in use: `-p PATH` (deprecated), else the prefix
    /// [`Context::workdir_and_prefix_name`] names (or the current one) in the
    /// workdir. Opens the prefix log.
    pub fn prefix(&self) -> Result<Prefix, Error> {
        let prefix = match &self.globals.prefix_path {
            Some(p) => Prefix::open(p)?,
            None => {
                let (wd, name) = self.workdir_and_prefix_name()?;
                wd.resolve(name.as_deref())?
            }
        };
        if let Err(e) = crate::logging::attach_prefix_log(prefix.path()) {
            tracing::debug!("cannot open the log of {}: {e}", prefix.path().display());
        }
        crate::ops::adopt_leases(&prefix, &self.config);
        Ok(prefix)
    }

    /// What a CLI plugin gets: workdir, prefix and, when the prefix is
    /// initialized, its environment. Missing parts are left empty.
    pub fn cli_context(&self) -> lago_plugin_api::CliContext {
        let mut cc = lago_plugin_api::CliContext {
            out_format: self.out_format().to_string(),
            ..Default::default()
        };
        if let Ok(prefix) = self.prefix() {
            cc.workdir = prefix.workdir().map(PathBuf::from);
            cc.prefix = Some(prefix.path().to_path_buf());
            if prefix.is_initialized() {
                cc.env = prefix.load_env().ok();
            }
        }
        cc
    }
}

/// The global flags, Lago's names and help.
pub fn global_args() -> Vec<Arg> {
    let opt = |id: &'static str, long: &'static str, help: &'static str| {
        Arg::new(id)
            .long(long)
            .help(help)
            .action(ArgAction::Set)
            .global(true)
    };
    vec![
        // Not global: Lago's `snapshot -l` is `--list`, so the log level
        // goes before the verb, as in Lago.
        opt(
            "loglevel",
            "loglevel",
            "Log level to use, before the verb (default: info)",
        )
        .global(false)
        .short('l')
        .value_name("LEVEL")
        .value_parser(["info", "debug", "error", "warning"]),
        opt(
            "logdepth",
            "logdepth",
            "How many nested task levels to show, -1 for all (default: 3)",
        )
        .value_name("N")
        .allow_negative_numbers(true)
        .value_parser(clap::value_parser!(i64).range(-1..)),
        opt(
            "out_format",
            "out-format",
            "Output format: default, json, yaml, flat, or one a plugin adds",
        )
        .short('f')
        .value_name("FORMAT"),
        opt(
            "prefix_path",
            "prefix-path",
            "Path to the prefix to use, will be deprecated, use --workdir-path instead",
        )
        .short('p')
        .value_name("PATH"),
        opt(
            "workdir_path",
            "workdir-path",
            "Path to the workdir to use.",
        )
        .short('w')
        .value_name("PATH"),
        opt("prefix_name", "prefix-name", "Name of the prefix to use.")
            .short('P')
            .value_name("NAME"),
        opt("ssh_user", "ssh-user", "User for SSH provider.").value_name("USER"),
        opt("ssh_password", "ssh-password", "Password for SSH provider.").value_name("PASSWORD"),
        opt(
            "ssh_tries",
            "ssh-tries",
            "Number of ssh time outs to wait before failing.",
        )
        .value_name("N")
        .value_parser(clap::value_parser!(u32)),
        opt(
            "ssh_timeout",
            "ssh-timeout",
            "Seconds to wait before marking SSH connection as failed.",
        )
        .value_name("SECONDS")
        .value_parser(clap::value_parser!(u32)),
        opt("libvirt_url", "libvirt_url", "libvirt URI").value_name("URL"),
        opt("libvirt_user", "libvirt-user", "libvirt user").value_name("USER"),
        opt("libvirt_password", "libvirt-password", "libvirt password").value_name("PASSWORD"),
        opt("default_vm_type", "default_vm_type", "Default vm type").value_name("TYPE"),
        opt(
            "default_vm_provider",
            "default_vm_provider",
            "Default vm provider",
        )
        .value_name("PROVIDER"),
        opt(
            "default_root_password",
            "default_root_password",
            "Default root password",
        )
        .value_name("PASSWORD"),
        opt(
            "lease_dir",
            "lease_dir",
            "Path to store created subnets configurations",
        )
        .value_name("PATH"),
        Arg::new("ignore_warnings")
            .long("ignore-warnings")
            .help("Do not show warnings")
            .action(ArgAction::SetTrue)
            .global(true),
    ]
    .into_iter()
    .map(|a| a.help_heading("Global options"))
    .collect()
}

/// The top-level command with the global flags and every built-in verb.
pub fn root_command(bin_name: &str) -> Command {
    let mut cmd = Command::new(bin_name.to_string())
        .about("Command line interface to lago: reproducible multi-VM test environments")
        .version(env!("CARGO_PKG_VERSION"))
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand_value_name("VERB")
        // Lago's argparse took any unique prefix of a long option.
        .infer_long_args(true)
        .after_help(
            "Plugins may add more verbs: `lago --help` lists them, `lago plugins` lists the \
             plugins, `lago VERB --help` shows a verb's help.",
        )
        .args(global_args());
    for v in VERBS {
        cmd = cmd.subcommand((v.command)());
    }
    cmd
}

/// Start logging as the configuration says: `loglevel`, `logdepth` and
/// `ignore_warnings` (each from `-l`/`--logdepth`/`--ignore-warnings`, else
/// `LAGO_*`, else lago.conf, else Lago's defaults `info` and `3`).
fn init_logging(config: &Config) -> Result<(), Error> {
    let bad = |e: crate::config::ConfigError| Error::user_from(&e);
    crate::logging::init(crate::progress::ViewSettings {
        level: config.loglevel().map_err(bad)?,
        depth: config.logdepth().map_err(bad)?,
        ignore_warnings: config.ignore_warnings().map_err(bad)?,
        live: true,
    });
    Ok(())
}

/// Parse `argv`, run the verb, and return the process exit code. Errors are
/// printed here, as one line.
pub fn main_with_args(argv: Vec<OsString>) -> i32 {
    let bin_name = argv
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "lago".to_string());
    match run(&bin_name, &argv) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{bin_name}: error: {e}");
            e.exit_code()
        }
    }
}

/// How a clap parse failure ends: help and version print to stdout (exit 0),
/// usage errors to stderr (exit 2).
fn clap_exit(e: clap::Error) -> i32 {
    let _ = e.print();
    if e.use_stderr() {
        crate::error::EXIT_USER
    } else {
        0
    }
}

/// `argv` for the log, with the values of password options (`--ssh-password
/// X`, `--libvirt-password=X`, and their prefixes) hidden.
fn redact_passwords(argv: &[OsString]) -> Vec<String> {
    // Any unique prefix of a long option works, so `--ssh-p X` may be the
    // password: hide the value of every option that could abbreviate one
    // whose name holds `password`.
    const SECRET_OPTIONS: &[&str] = &[
        "--ssh-password",
        "--libvirt-password",
        "--default_root_password",
        "--default-root-password",
    ];
    let is_password = |a: &str| {
        a.starts_with("--")
            && (a.contains("pass")
                || (a.len() > 2 && SECRET_OPTIONS.iter().any(|o| o.starts_with(a))))
    };
    let mut out = Vec::with_capacity(argv.len());
    let mut hide_next = false;
    for arg in argv.iter().map(|a| a.to_string_lossy().into_owned()) {
        if hide_next {
            out.push("***".to_string());
            hide_next = false;
        } else if let Some((name, _)) = arg.split_once('=').filter(|(n, _)| is_password(n)) {
            out.push(format!("{name}=***"));
        } else {
            hide_next = is_password(&arg);
            out.push(arg);
        }
    }
    out
}

/// For an unknown `--option` that is the prefix of several long options
/// (of the top level and of the verb in `argv`): the one-line error naming
/// them, as argparse gave (clap only suggests one).
pub fn ambiguous_option(cmd: &Command, argv: &[OsString], e: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let given = arg.strip_prefix("--")?.split('=').next()?;
    let verb = argv
        .iter()
        .skip(1)
        .filter_map(|a| a.to_str())
        .find_map(|a| cmd.find_subcommand(a));
    let mut candidates: Vec<String> = cmd
        .get_arguments()
        .chain(verb.into_iter().flat_map(Command::get_arguments))
        .filter_map(Arg::get_long)
        .filter(|long| long.starts_with(given))
        .map(|long| format!("--{long}"))
        .collect();
    candidates.sort();
    candidates.dedup();
    (candidates.len() > 1).then(|| {
        format!(
            "ambiguous option `--{given}`: it could be {}",
            candidates.join(", ")
        )
    })
}

fn run(bin_name: &str, argv: &[OsString]) -> Result<i32, Error> {
    let root = root_command(bin_name).allow_external_subcommands(true);
    let matches = match root.clone().try_get_matches_from(argv) {
        Ok(m) => m,
        Err(e) => {
            return match ambiguous_option(&root, argv, &e) {
                Some(msg) => Err(Error::user(msg)),
                None => Ok(plugin_verb::help_or_exit(e, bin_name)),
            }
        }
    };
    let globals = GlobalArgs::from_matches(&matches);
    let config = Config::load(&globals.config_overrides()).map_err(|e| Error::user_from(&e))?;
    init_logging(&config)?;
    for unknown in config.unknown_keys() {
        tracing::warn!("{unknown}");
    }
    tracing::debug!(
        "lago {} {:?}",
        env!("CARGO_PKG_VERSION"),
        redact_passwords(argv)
    );
    if globals.prefix_path.is_some() {
        tracing::warn!(
            "The option --prefix-path is going to be deprecated, use --workdir and --prefix instead"
        );
    }
    // -P names a folder in the workdir: the name rule holds on every verb.
    if let Some(name) = globals.prefix_name.as_deref().filter(|n| *n != "current") {
        crate::prefix::check_prefix_name(name)?;
    }
    crate::plugins::host::set_config(&config);
    let mut ctx = Context::new(globals, config, bin_name.to_string());
    let Some((name, sub)) = matches.subcommand() else {
        return Err(Error::user("no verb given"));
    };
    let output = match VERBS.iter().find(|v| v.name == name) {
        Some(verb) => {
            ctx.check_out_format()?;
            (verb.run)(&mut ctx, sub)?
        }
        None => match plugin_verb::run_external(&mut ctx, name, argv)? {
            plugin_verb::Parsed::Ran(out) => out,
            plugin_verb::Parsed::Exit(code) => return Ok(code),
        },
    };
    emit(&mut ctx, output)
}

/// Print a verb's output; return the exit code. A closed stdout (`lago ... |
/// head`) ends the output quietly.
pub fn emit(ctx: &mut Context, output: Output) -> Result<i32, Error> {
    let text = match output {
        Output::Nothing => return Ok(0),
        Output::Exit(code) => return Ok(code),
        Output::Data(v) => ctx.render(&v)?,
        Output::Text(t) => t,
    };
    let mut out = std::io::stdout().lock();
    let written = out
        .write_all(text.as_bytes())
        .and_then(|()| {
            if text.ends_with('\n') {
                Ok(())
            } else {
                out.write_all(b"\n")
            }
        })
        .and_then(|()| out.flush());
    match written {
        Ok(()) => Ok(0),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        Err(e) => Err(Error::internal(format!("cannot write the output: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<ArgMatches, clap::Error> {
        root_command("lago").try_get_matches_from(args)
    }

    #[test]
    fn passwords_stay_out_of_the_log() {
        let argv: Vec<OsString> = [
            "lago",
            "--ssh-password",
            "s1",
            "--libvirt-password=s2",
            "--libvirt-pas",
            "s3",
            "--ssh-p",
            "s4",
            "--libvirt-p=s5",
            "--default_root_password",
            "s6",
            "--ssh-user",
            "root",
            "status",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let shown = redact_passwords(&argv).join(" ");
        assert_eq!(
            shown,
            "lago --ssh-password *** --libvirt-password=*** --libvirt-pas *** --ssh-p *** \
             --libvirt-p=*** --default_root_password *** --ssh-user root status"
        );
    }

    #[test]
    fn clap_accepts_every_verb_definition() {
        root_command("lago").debug_assert();
    }

    #[test]
    fn loglevel_before_the_verb_and_snapshot_list() -> Result<(), clap::Error> {
        let m = parse(&["lago", "-l", "debug", "snapshot", "-l"])?;
        assert_eq!(
            m.get_one::<String>("loglevel").map(String::as_str),
            Some("debug")
        );
        let (_, sub) = m
            .subcommand()
            .ok_or_else(|| clap::Error::new(clap::error::ErrorKind::MissingSubcommand))?;
        assert!(sub.get_flag("list_only"));
        Ok(())
    }

    #[test]
    fn globals_after_the_verb() -> Result<(), clap::Error> {
        let m = parse(&["lago", "status", "-f", "json", "-P", "other"])?;
        let g = GlobalArgs::from_matches(&m);
        assert_eq!(g.out_format.as_deref(), Some("json"));
        assert_eq!(g.prefix_name.as_deref(), Some("other"));
        Ok(())
    }

    #[test]
    fn shell_passes_its_arguments_through() -> Result<(), clap::Error> {
        let m = parse(&["lago", "shell", "vm0", "ls", "-l", "-f", "x", "--help"])?;
        let (_, sub) = m
            .subcommand()
            .ok_or_else(|| clap::Error::new(clap::error::ErrorKind::MissingSubcommand))?;
        let args: Vec<&String> = sub
            .get_many::<String>("args")
            .map(Iterator::collect)
            .unwrap_or_default();
        assert_eq!(args, ["ls", "-l", "-f", "x", "--help"]);
        assert_eq!(GlobalArgs::from_matches(&m).out_format, None);
        Ok(())
    }

    #[test]
    fn flags_become_lago_section_overrides() -> Result<(), clap::Error> {
        let m = parse(&[
            "lago",
            "--ssh-user",
            "admin",
            "--lease_dir",
            "/tmp/l",
            "list",
        ])?;
        let o = GlobalArgs::from_matches(&m).config_overrides();
        assert!(o.contains(&("lago".into(), "ssh_user".into(), "admin".into())));
        assert!(o.contains(&("lago".into(), "lease_dir".into(), "/tmp/l".into())));
        Ok(())
    }
}
