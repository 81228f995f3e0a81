//! `lago console`: Open serial console to the domain.

use clap::{Arg, ArgMatches, Command};

use super::env::open_env;
use super::{Context, Output};
use crate::error::Error;

pub fn command() -> Command {
    Command::new("console")
        .about("Open serial console to the domain")
        .arg(
            Arg::new("host")
                .value_name("HOST")
                .required(true)
                .help("Host to connect to"),
        )
}

pub fn run(ctx: &mut Context, args: &ArgMatches) -> Result<Output, Error> {
    let env = open_env(ctx)?;
    let name = args
        .get_one::<String>("host")
        .ok_or_else(|| Error::user("lago console needs the name of a VM"))?;
    Ok(Output::Exit(env.console(name)?))
}
