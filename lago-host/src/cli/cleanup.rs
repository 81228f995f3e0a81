//! `lago cleanup`: stop and remove the prefix's VMs and networks, release
//! its subnets and remove its `initialized` marker; the files stay until
//! `lago destroy`.

use clap::{ArgMatches, Command};
use lago_plugin_api::spec::EnvSpec;

use super::destroy::provider_teardown;
use super::{Context, Output};
use crate::error::Error;
use crate::prefix::lifecycle::{cleanup_prefix, lease_store};
use crate::prefix::Prefix;

pub fn command() -> Command {
    Command::new("cleanup").about("Clean up deployed resources")
}

pub fn run(ctx: &mut Context, _args: &ArgMatches) -> Result<Output, Error> {
    let prefix = ctx.prefix()?;
    let store = lease_store(&ctx.config)?;
    let mut hook = |_: &Prefix, env: Option<&EnvSpec>| provider_teardown(ctx, env);
    cleanup_prefix(&prefix, &store, &mut hook)?;
    Ok(Output::Nothing)
}
