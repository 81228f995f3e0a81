//! `lago status`: Show status of the deployed virtual resources.

use clap::{ArgMatches, Command};

use super::{Context, Output};
use crate::error::Error;

pub fn command() -> Command {
    Command::new("status").about("Show status of the deployed virtual resources")
}

pub fn run(_ctx: &mut Context, _args: &ArgMatches) -> Result<Output, Error> {
    Err(Error::not_implemented("lago status"))
}
