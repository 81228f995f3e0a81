//! `lago start`: Deploy lago resources: start the VMs (all, or those named) and wait until each answers SSH.

use clap::{Arg, ArgMatches, Command};

use super::{Context, Output};
use crate::environment;
use crate::error::Error;
use crate::prefix::lock::LockMode;

pub fn command() -> Command {
    Command::new("start")
        .about("Deploy lago resources: start the VMs (all, or those named) and wait until each answers SSH")
        .arg(
            Arg::new("vm_names")
                .value_name("VM_NAME")
                .num_args(0..)
                .help("Name of the vm to start"),
        )
}

pub fn run(ctx: &mut Context, args: &ArgMatches) -> Result<Output, Error> {
    // One lago at a time on the prefix: a `destroy` meanwhile is refused.
    let prefix = ctx.prefix()?;
    prefix.require_initialized()?;
    let _lock = prefix.lock(LockMode::Exclusive, "start")?;
    let env = environment::from_context(ctx)?;
    crate::progress::task("Start Prefix", || {
        env.start(&environment::vm_names(args, "vm_names"))
    })?;
    Ok(Output::Nothing)
}
