//! `lago copy-to-vm`: Copy file/dir to a virtual machine from the local host.

use std::path::Path;

use clap::{Arg, ArgMatches, Command};

use super::env::open_env;
use super::{Context, Output};
use crate::error::Error;

pub fn command() -> Command {
    Command::new("copy-to-vm")
        .about("Copy file/dir to a virtual machine from the local host")
        .arg(
            Arg::new("host")
                .value_name("HOST")
                .required(true)
                .help("Host to copy files to (a unique suffix of its name is enough)"),
        )
        .arg(
            Arg::new("local_path")
                .value_name("LOCAL_PATH")
                .required(true)
                .help("Path of the file/dir to copy from the host"),
        )
        .arg(
            Arg::new("remote_path")
                .value_name("REMOTE_PATH")
                .required(true)
                .help("Path in the VM to copy the file/dir to"),
        )
}

pub fn run(ctx: &mut Context, args: &ArgMatches) -> Result<Output, Error> {
    let arg = |id: &str| {
        args.get_one::<String>(id)
            .ok_or_else(|| Error::user(format!("lago copy-to-vm needs {id}")))
    };
    let (host, local, remote) = (arg("host")?, arg("local_path")?, arg("remote_path")?);
    let env = open_env(ctx)?;
    let vm = env.get_vm_by_suffix(host)?;
    vm.ssh_ready()?;
    // Folders too, as Lago's copy verbs (`recursive`).
    vm.copy_to(Path::new(local), remote, true)?;
    Ok(Output::Nothing)
}
