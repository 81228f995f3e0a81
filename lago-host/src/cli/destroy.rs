//! `lago destroy`: Cleanup and remove the whole prefix and any files in it.

use clap::{Arg, ArgAction, ArgMatches, Command};

use super::{Context, Output};
use crate::error::Error;

pub fn command() -> Command {
    Command::new("destroy")
        .about("Cleanup and remove the whole prefix and any files in it")
        .arg(
            Arg::new("all_prefixes")
                .long("all-prefixes")
                .action(ArgAction::SetTrue)
                .help("Destroy all the prefixes in the workdir"),
        )
        .arg(
            Arg::new("yes")
                .short('y')
                .long("yes")
                .action(ArgAction::SetTrue)
                .help("Don't ask for confirmation, assume yes"),
        )
}

pub fn run(_ctx: &mut Context, _args: &ArgMatches) -> Result<Output, Error> {
    Err(Error::not_implemented("lago destroy"))
}
