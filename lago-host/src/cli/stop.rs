//! `lago stop`: Destroy lago resources: stop the VMs (all, or those named) at once, without a clean shutdown.

use clap::{Arg, ArgMatches, Command};

use super::{Context, Output};
use crate::error::Error;

pub fn command() -> Command {
    Command::new("stop")
        .about("Destroy lago resources: stop the VMs (all, or those named) at once, without a clean shutdown")
        .arg(
            Arg::new("vm_names")
                .value_name("VM_NAME")
                .num_args(0..)
                .help("Name of the vm to stop"),
        )
}

pub fn run(_ctx: &mut Context, _args: &ArgMatches) -> Result<Output, Error> {
    Err(Error::not_implemented("lago stop"))
}
