//! `lago cleanup`: Clean up deployed resources.

use clap::{ArgMatches, Command};

use super::{Context, Output};
use crate::error::Error;

pub fn command() -> Command {
    Command::new("cleanup").about("Clean up deployed resources")
}

pub fn run(_ctx: &mut Context, _args: &ArgMatches) -> Result<Output, Error> {
    Err(Error::not_implemented("lago cleanup"))
}
