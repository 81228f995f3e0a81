//! `lago collect`: Collect logs from VMs, list of collected logs can be specified in the init file, under artifacts parameter.

use clap::{Arg, ArgAction, ArgMatches, Command};

use super::{Context, Output};
use crate::error::Error;

pub fn command() -> Command {
    Command::new("collect")
        .about("Collect logs from VMs, list of collected logs can be specified in the init file, under artifacts parameter")
        .arg(
            Arg::new("output")
                .long("output")
                .required(true)
                .value_name("OUTPUT")
                .help("Path to place all the extracted at"),
        )
        .arg(
            Arg::new("no_skip")
                .long("no-skip")
                .action(ArgAction::SetTrue)
                .help("do not skip missing paths"),
        )
}

pub fn run(_ctx: &mut Context, _args: &ArgMatches) -> Result<Output, Error> {
    Err(Error::not_implemented("lago collect"))
}
