//! `lago copy-from-vm`: Copy file from a virtual machine to local machine.

use std::path::Path;

use clap::{Arg, ArgMatches, Command};

use super::{Context, Output};
use crate::environment;
use crate::error::Error;
use crate::workflows::copy::{copy_from_vm, CopyError};
use crate::workflows::{is_unreachable, not_running};

pub fn command() -> Command {
    Command::new("copy-from-vm")
        .about("Copy file from a virtual machine to local machine")
        .arg(
            Arg::new("host")
                .value_name("HOST")
                .required(true)
                .help("Host to copy files from (a unique suffix of its name is enough)"),
        )
        .arg(
            Arg::new("remote_path")
                .value_name("REMOTE_PATH")
                .required(true)
                .help("Path of the file/dir to copy from the host"),
        )
        .arg(
            Arg::new("local_path")
                .value_name("LOCAL_PATH")
                .required(true)
                .help("Path on the local host to copy the file/dir to"),
        )
}

pub fn run(ctx: &mut Context, args: &ArgMatches) -> Result<Output, Error> {
    let arg = |id: &str| {
        args.get_one::<String>(id)
            .ok_or_else(|| Error::user(format!("lago copy-from-vm needs {id}")))
    };
    let (host, remote, local) = (arg("host")?, arg("remote_path")?, arg("local_path")?);
    let env = environment::from_context(ctx)?;
    let vm = env.vm_by_suffix(host)?;
    let target = env.ssh_ready(vm)?;
    match copy_from_vm(env.ssh(), &target, remote, Path::new(local)) {
        Ok(()) => Ok(Output::Nothing),
        Err(CopyError::Ssh(e)) if is_unreachable(&e) => {
            Err(not_running(&env, vm).unwrap_or_else(|| CopyError::Ssh(e).into()))
        }
        Err(e) => Err(e.into()),
    }
}
