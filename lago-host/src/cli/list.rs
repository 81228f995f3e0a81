//! `lago list`: List the prefixes (envs) in a Workdir.

use clap::{Arg, ArgMatches, Command};

use super::{Context, Output};
use crate::error::Error;

pub fn command() -> Command {
    Command::new("list")
        .about("List the prefixes (envs) in a Workdir")
        .arg(Arg::new("workdir_path").value_name("WORKDIR_PATH").help(
            "Path to the Workdir. If not provided Lago will try to find a Workdir relative to the current directory.",
        ))
}

pub fn run(_ctx: &mut Context, _args: &ArgMatches) -> Result<Output, Error> {
    Err(Error::not_implemented("lago list"))
}
