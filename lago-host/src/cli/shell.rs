//! `lago shell`: Open shell on the domain or run as script/command.

use clap::{Arg, ArgMatches, Command};

use super::{Context, Output};
use crate::error::Error;

pub fn command() -> Command {
    Command::new("shell")
        .about("Open shell on the domain or run as script/command")
        .arg(
            Arg::new("host")
                .value_name("HOST")
                .required(true)
                .help("Host to connect to (a unique suffix of its name is enough)"),
        )
        .arg(
            Arg::new("args")
                .value_name("ARGS")
                .num_args(0..)
                .trailing_var_arg(true)
                .allow_hyphen_values(true)
                .help(
                    "If none provided, an interactive shell will be started. If arguments \
                     start with -c, what follows will be executed as a command. Otherwise, \
                     if a single one is provided and is a local file, it will be run as a \
                     script on the domain; else the arguments are the remote command.",
                ),
        )
}

pub fn run(_ctx: &mut Context, _args: &ArgMatches) -> Result<Output, Error> {
    Err(Error::not_implemented("lago shell"))
}
