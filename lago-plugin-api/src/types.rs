//! Small `StableAbi` data types that cross the boundary as they are.

use std::path::PathBuf;

use abi_stable::{
    std_types::{ROption, RString, RVec},
    StableAbi,
};
use serde::{Deserialize, Serialize};

use crate::spec::EnvSpec;

/// The result of a command run in a VM (Lago's `CommandStatus`): exit code,
/// standard output and standard error kept apart.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq, Default)]
pub struct CommandStatus {
    pub code: i32,
    pub out: RVec<u8>,
    pub err: RVec<u8>,
}

impl CommandStatus {
    pub fn success(&self) -> bool {
        self.code == 0
    }
    /// Standard output as text (lossy UTF-8).
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out).into_owned()
    }
    /// Standard error as text (lossy UTF-8).
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.err).into_owned()
    }
}

/// State of a service in a VM (Lago's `ServiceState`).
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ServiceState {
    /// The service does not exist in the VM.
    Missing,
    Inactive,
    Active,
}

impl ServiceState {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceState::Missing => "MISSING",
            ServiceState::Inactive => "INACTIVE",
            ServiceState::Active => "ACTIVE",
        }
    }
}

/// Log levels, least verbose first (so `a <= b` means "a is shown when b is").
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn from_tracing(level: &tracing::Level) -> LogLevel {
        match *level {
            tracing::Level::ERROR => LogLevel::Error,
            tracing::Level::WARN => LogLevel::Warn,
            tracing::Level::INFO => LogLevel::Info,
            tracing::Level::DEBUG => LogLevel::Debug,
            tracing::Level::TRACE => LogLevel::Trace,
        }
    }
    pub fn to_tracing(self) -> tracing::Level {
        match self {
            LogLevel::Error => tracing::Level::ERROR,
            LogLevel::Warn => tracing::Level::WARN,
            LogLevel::Info => tracing::Level::INFO,
            LogLevel::Debug => tracing::Level::DEBUG,
            LogLevel::Trace => tracing::Level::TRACE,
        }
    }
}

/// A command-line verb described as data: the host turns it into a clap
/// command at run time.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct CliSpec {
    /// The verb (`lago <name>`). For a CLI plugin the host uses the name the
    /// plugin was exported under; for vm-type verbs this name.
    pub name: RString,
    /// One-line help.
    pub help: RString,
    pub args: RVec<ArgSpec>,
}

impl CliSpec {
    pub fn new(name: impl Into<String>, help: impl Into<String>) -> Self {
        CliSpec {
            name: RString::from(name.into()),
            help: RString::from(help.into()),
            args: RVec::new(),
        }
    }
    /// Add an argument.
    pub fn arg(mut self, arg: ArgSpec) -> Self {
        self.args.push(arg);
        self
    }
}

/// One argument of a [`CliSpec`]. An argument with neither `long` nor
/// `short` is positional. Parsed values reach the plugin as a JSON object keyed
/// by `name`: a flag → `true`/`false`; an option or positional → a string or
/// `null`; with `multiple` → an array of strings.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct ArgSpec {
    pub name: RString,
    pub help: RString,
    pub long: ROption<RString>,
    /// A short flag letter, as a Unicode scalar value.
    pub short: ROption<u32>,
    pub takes_value: bool,
    pub required: bool,
    pub multiple: bool,
    pub default: ROption<RString>,
}

impl ArgSpec {
    fn base(name: &str, help: &str) -> Self {
        ArgSpec {
            name: name.into(),
            help: help.into(),
            long: ROption::RNone,
            short: ROption::RNone,
            takes_value: false,
            required: false,
            multiple: false,
            default: ROption::RNone,
        }
    }
    /// `--name`, a boolean flag.
    pub fn flag(name: &str, help: &str) -> Self {
        ArgSpec {
            long: ROption::RSome(name.replace('_', "-").into()),
            ..Self::base(name, help)
        }
    }
    /// `--name VALUE`.
    pub fn option(name: &str, help: &str) -> Self {
        ArgSpec {
            long: ROption::RSome(name.replace('_', "-").into()),
            takes_value: true,
            ..Self::base(name, help)
        }
    }
    /// A positional argument.
    pub fn positional(name: &str, help: &str) -> Self {
        ArgSpec {
            takes_value: true,
            ..Self::base(name, help)
        }
    }
    pub fn long(mut self, long: &str) -> Self {
        self.long = ROption::RSome(long.into());
        self
    }
    pub fn short(mut self, short: char) -> Self {
        self.short = ROption::RSome(short as u32);
        self
    }
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub fn multiple(mut self) -> Self {
        self.multiple = true;
        self.takes_value = true;
        self
    }
    pub fn default_value(mut self, value: &str) -> Self {
        self.default = ROption::RSome(value.into());
        self
    }
    pub fn is_positional(&self) -> bool {
        self.long.is_none() && self.short.is_none()
    }
    pub fn short_char(&self) -> Option<char> {
        self.short.into_option().and_then(char::from_u32)
    }
}

/// What a CLI verb gets besides its arguments (crosses as JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CliContext {
    /// The workdir in use, when one was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<PathBuf>,
    /// The prefix folder in use, when one was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<PathBuf>,
    /// The `--out-format` name (the host renders what `run` returns).
    pub out_format: String,
    /// The planned environment, when the prefix is initialized.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<EnvSpec>,
}
