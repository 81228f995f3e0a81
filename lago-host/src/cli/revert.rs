//! `lago revert`: Revert resources to a snapshot.

use clap::{Arg, ArgMatches, Command};

use super::{Context, Output};
use crate::error::Error;

pub fn command() -> Command {
    Command::new("revert")
        .about("Revert resources to a snapshot")
        .arg(
            Arg::new("snapshot_name")
                .value_name("SNAPSHOT_NAME")
                .required(true)
                .help("Name of the snapshot to revert to"),
        )
}

pub fn run(_ctx: &mut Context, _args: &ArgMatches) -> Result<Output, Error> {
    Err(Error::not_implemented("lago revert"))
}
