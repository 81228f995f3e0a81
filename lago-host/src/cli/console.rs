//! `lago console`: Open serial console to the domain.

use clap::{Arg, ArgMatches, Command};

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

pub fn run(_ctx: &mut Context, _args: &ArgMatches) -> Result<Output, Error> {
    Err(Error::not_implemented("lago console"))
}
