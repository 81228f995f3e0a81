//! `lago export`: Export virtual machine disks.

use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgMatches, Command};

use super::env::{open_env, vm_names};
use super::{Context, Output};
use crate::error::Error;
use crate::sdk;

pub fn command() -> Command {
    Command::new("export")
        .about("Export virtual machine disks")
        .long_about(
            "This command will export the disks of the given vms. The disks of the vms will be \
             exported to the current directory or to the path that was specified with \"-d\". \
             If \"-s\" was specified, the disks will be exported as \"standalone disk\", which \
             means that they will be merged with their base images. This command does not \
             modify the source disk. The env should be in \"down\" state when running this \
             command.",
        )
        .arg(
            Arg::new("vm_names")
                .short('n')
                .long("vm-names")
                .value_name("VM_NAME")
                .num_args(0..)
                .help("Name of the vms to export. If no name is specified, export all the vms in this prefix."),
        )
        .arg(
            Arg::new("standalone")
                .short('s')
                .long("standalone")
                .action(ArgAction::SetTrue)
                .help("If not specified, export a layered image"),
        )
        .arg(
            Arg::new("compress")
                .short('c')
                .long("compress")
                .action(ArgAction::SetTrue)
                .help("If specified, compress the exported images with xz"),
        )
        .arg(
            Arg::new("dst_dir")
                .short('d')
                .long("dst-dir")
                .default_value(".")
                .help("Dir to place the exported images in"),
        )
        .arg(
            Arg::new("init_file_name")
                .long("init-file-name")
                .default_value("LagoInitFile")
                .help("The name of the exported init file"),
        )
        .arg(
            Arg::new("collect_only")
                .long("collect-only")
                .action(ArgAction::SetTrue)
                .help("Only output the disks that will be exported"),
        )
        .arg(
            Arg::new("without_threads")
                .long("without-threads")
                .action(ArgAction::SetTrue)
                .help("If set, do not use threads"),
        )
}

pub fn run(ctx: &mut Context, args: &ArgMatches) -> Result<Output, Error> {
    let env = open_env(ctx)?;
    let string = |id: &str| args.get_one::<String>(id).cloned().unwrap_or_default();
    let dst_dir = PathBuf::from(string("dst_dir"));
    let dst_dir = if dst_dir.is_absolute() {
        dst_dir
    } else {
        std::env::current_dir()?.join(dst_dir)
    };
    let opts = sdk::ExportOptions {
        vms: vm_names(args, "vm_names"),
        standalone: args.get_flag("standalone"),
        compress: args.get_flag("compress"),
        dst_dir,
        init_file_name: string("init_file_name"),
        collect_only: args.get_flag("collect_only"),
        with_threads: !args.get_flag("without_threads"),
    };
    Ok(Output::Data(env.export(&opts)?))
}
