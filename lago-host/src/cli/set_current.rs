//! `lago set-current`: Set the current prefix of the workdir.

use clap::{Arg, ArgMatches, Command};

use super::{Context, Output};
use crate::error::Error;

pub fn command() -> Command {
    Command::new("set-current")
        .about("Set the current prefix of the workdir")
        .arg(
            Arg::new("prefix_name")
                .value_name("PREFIX_NAME")
                .required(true)
                .help("Name of the prefix to set as the current one"),
        )
}

pub fn run(_ctx: &mut Context, _args: &ArgMatches) -> Result<Output, Error> {
    Err(Error::not_implemented("lago set-current"))
}
