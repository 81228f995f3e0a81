//! `lago generate-config`: Dump configuration file.

use clap::{Arg, ArgAction, ArgMatches, Command};

use super::{Context, Output};
use crate::error::Error;

pub fn command() -> Command {
    Command::new("generate-config")
        .about("Dump configuration file")
        .arg(
            Arg::new("verbose")
                .long("verbose")
                .action(ArgAction::SetTrue)
                .help("Include parameters with no default value."),
        )
}

pub fn run(_ctx: &mut Context, _args: &ArgMatches) -> Result<Output, Error> {
    Err(Error::not_implemented("lago generate-config"))
}
