//! `lago generate-config [--verbose]`: the effective configuration as INI,
//! every key with its help.

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
                .help("Include parameters with no default value, and where each value comes from."),
        )
}

pub fn run(ctx: &mut Context, args: &ArgMatches) -> Result<Output, Error> {
    Ok(Output::Text(ctx.config.to_ini(args.get_flag("verbose"))))
}
