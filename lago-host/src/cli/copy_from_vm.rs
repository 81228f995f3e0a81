//! `lago copy-from-vm`: Copy file from a virtual machine to local machine.

use std::path::Path;

use clap::{Arg, ArgMatches, Command};

use super::env::open_env;
use super::{Context, Output};
use crate::error::Error;

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
    let env = open_env(ctx)?;
    let vm = env.get_vm_by_suffix(host)?;
    vm.ssh_ready()?;
    // Folders too, as Lago's copy verbs (`recursive`).
    vm.copy_from(remote, Path::new(local), true)?;
    Ok(Output::Nothing)
}
