//! `lago snapshot`: Create snapshots for all deployed resources.

use clap::{Arg, ArgAction, ArgMatches, Command};

use super::{Context, Output};
use crate::error::Error;

pub fn command() -> Command {
    Command::new("snapshot")
        .about("Create snapshots for all deployed resources")
        .arg(
            Arg::new("list_only")
                .short('l')
                .long("list")
                .action(ArgAction::SetTrue)
                .help("List current available snapshots"),
        )
        .arg(
            Arg::new("snapshot_name")
                .value_name("SNAPSHOT_NAME")
                .help("Name of the snapshot to create"),
        )
}

pub fn run(_ctx: &mut Context, _args: &ArgMatches) -> Result<Output, Error> {
    Err(Error::not_implemented("lago snapshot"))
}
