//! `lago cleanup`: stop and remove the prefix's VMs and networks, release
//! its subnets and remove its `initialized` marker; the files stay until
//! `lago destroy`.

use clap::{ArgMatches, Command};

use super::{Context, Output};
use crate::error::Error;
use crate::sdk;

pub fn command() -> Command {
    Command::new("cleanup").about("Clean up deployed resources")
}

pub fn run(ctx: &mut Context, _args: &ArgMatches) -> Result<Output, Error> {
    let prefix = ctx.prefix()?;
    let config = ctx.config.clone();
    sdk::cleanup(&prefix, &config, || Ok(ctx.plugins()?))?;
    Ok(Output::Nothing)
}
