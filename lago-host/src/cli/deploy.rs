//! `lago deploy`: Run scripts that install necessary RPMs and configuration.

use clap::{ArgMatches, Command};

use super::{Context, Output};
use crate::error::Error;

pub fn command() -> Command {
    Command::new("deploy").about("Run scripts that install necessary RPMs and configuration")
}

pub fn run(_ctx: &mut Context, _args: &ArgMatches) -> Result<Output, Error> {
    Err(Error::not_implemented("lago deploy"))
}
