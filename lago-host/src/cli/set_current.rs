//! `lago set-current NAME`: point the workdir's `current` link at a prefix.

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

pub fn run(ctx: &mut Context, args: &ArgMatches) -> Result<Output, Error> {
    let name = args
        .get_one::<String>("prefix_name")
        .ok_or_else(|| Error::user("set-current needs a prefix name"))?;
    ctx.workdir()?.set_current(name)?;
    Ok(Output::Nothing)
}
