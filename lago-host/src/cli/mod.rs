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
//! calls library functions and returns data; `main` renders
//! [`Output::Data`] with the `--out-format` plugin.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgMatches, Command};

use crate::error::Error;

pub mod ansible_hosts;
pub mod cleanup;
pub mod collect;
pub mod console;
pub mod copy_from_vm;
pub mod copy_to_vm;
pub mod deploy;
pub mod destroy;
pub mod export;
pub mod generate_config;
pub mod init;
pub mod list;
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
];

/// Lago's global flags, as parsed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GlobalArgs {
    /// `-l/--loglevel`: debug, info, warning, error.
    pub loglevel: Option<String>,
    pub logdepth: Option<u32>,
    /// `-f/--out-format`, default `default`.
    pub out_format: String,
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
            logdepth: n("logdepth"),
            out_format: s("out_format").unwrap_or_else(|| "default".to_string()),
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

/// Stand-in configuration until `crate::config::Config` lands: the command
/// line overrides only.
#[derive(Debug, Clone, Default)]
pub struct Config {
    overrides: Vec<(String, String, String)>,
}

impl Config {
    pub fn load(overrides: &[(String, String, String)]) -> Result<Config, Error> {
        Ok(Config {
            overrides: overrides.to_vec(),
        })
    }

    /// The value of `[section] key`, if set.
    pub fn get(&self, section: &str, key: &str) -> Option<String> {
        self.overrides
            .iter()
            .rev()
            .find(|(s, k, _)| s == section && k == key)
            .map(|(_, _, v)| v.clone())
    }
}

/// What every verb gets: the global flags, the configuration, and (lazily)
/// the plugin registry and the resolved workdir/prefix.
pub struct Context {
    pub globals: GlobalArgs,
    pub config: Config,
    /// argv[0]'s file name (`lago` or `lagocli`), for messages.
    pub bin_name: String,
}

impl Context {
    pub fn new(globals: GlobalArgs, config: Config, bin_name: String) -> Context {
        Context {
            globals,
            config,
            bin_name,
        }
    }

    /// The out-format name chosen with `-f`.
    pub fn out_format(&self) -> &str {
        &self.globals.out_format
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
        opt("loglevel", "loglevel", "Log level to use")
            .short('l')
            .value_parser(["info", "debug", "error", "warning"]),
        opt("logdepth", "logdepth", "How many task levels to show")
            .value_parser(clap::value_parser!(u32)),
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
        opt("ssh_user", "ssh-user", "User for SSH provider."),
        opt("ssh_password", "ssh-password", "Password for SSH provider."),
        opt(
            "ssh_tries",
            "ssh-tries",
            "Number of ssh time outs to wait before failing.",
        )
        .value_parser(clap::value_parser!(u32)),
        opt(
            "ssh_timeout",
            "ssh-timeout",
            "Seconds to wait before marking SSH connection as failed.",
        )
        .value_parser(clap::value_parser!(u32)),
        opt("libvirt_url", "libvirt_url", "libvirt URI").value_name("URL"),
        opt("libvirt_user", "libvirt-user", "libvirt user"),
        opt("libvirt_password", "libvirt-password", "libvirt password"),
        opt("default_vm_type", "default_vm_type", "Default vm type"),
        opt(
            "default_vm_provider",
            "default_vm_provider",
            "Default vm provider",
        ),
        opt(
            "default_root_password",
            "default_root_password",
            "Default root password",
        ),
        opt(
            "lease_dir",
            "lease_dir",
            "Path to store created subnets configurations",
        )
        .value_name("PATH"),
        Arg::new("ignore_warnings")
            .long("ignore-warnings")
            .help("Do not print warnings")
            .action(ArgAction::SetTrue)
            .global(true),
    ]
}

/// The top-level command with the global flags and every built-in verb.
pub fn root_command(bin_name: &str) -> Command {
    let mut cmd = Command::new("lago")
        .bin_name(bin_name.to_string())
        .about("Command line interface to lago: reproducible multi-VM test environments")
        .version(env!("CARGO_PKG_VERSION"))
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand_value_name("VERB")
        .args(global_args());
    for v in VERBS {
        cmd = cmd.subcommand((v.command)());
    }
    cmd
}

/// Parse `argv`, run the verb, and return the process exit code. Errors are
/// printed here, as one line.
pub fn main_with_args(argv: Vec<OsString>) -> i32 {
    let bin_name = argv
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "lago".to_string());
    let matches = match root_command(&bin_name).try_get_matches_from(&argv) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                crate::error::EXIT_USER
            } else {
                0
            };
        }
    };
    let globals = GlobalArgs::from_matches(&matches);
    let result = Config::load(&globals.config_overrides()).and_then(|config| {
        let mut ctx = Context::new(globals, config, bin_name.clone());
        let (name, sub) = matches
            .subcommand()
            .ok_or_else(|| Error::user("no verb given"))?;
        let verb = VERBS
            .iter()
            .find(|v| v.name == name)
            .ok_or_else(|| Error::user(format!("unknown verb `{name}`")))?;
        (verb.run)(&mut ctx, sub)
    });
    match result {
        Ok(Output::Nothing) => 0,
        Ok(Output::Data(v)) => {
            println!("{v}");
            0
        }
        Ok(Output::Text(t)) => {
            if t.ends_with('\n') {
                print!("{t}");
            } else {
                println!("{t}");
            }
            0
        }
        Ok(Output::Exit(code)) => code,
        Err(e) => {
            eprintln!("{bin_name}: error: {e}");
            e.exit_code()
        }
    }
}
