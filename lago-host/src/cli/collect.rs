//! `lago collect`: Collect logs from VMs, list of collected logs can be specified in the init file, under artifacts parameter.

use std::path::Path;

use clap::{Arg, ArgAction, ArgMatches, Command};
use lago_plugin_api::spec::VmSpec;
use serde_json::{json, Map, Value};

use super::{Context, Output};
use crate::environment::{self, Environment};
use crate::error::Error;
use crate::workflows::collect::{collect_vm, plan, rotate_dir, CollectError, VmCollection};
use crate::workflows::{combine_errors, in_parallel, is_unreachable, not_running};

pub fn command() -> Command {
    Command::new("collect")
        .about("Collect logs from VMs, list of collected logs can be specified in the init file, under artifacts parameter")
        .long_about(
            "Collect logs from VMs, list of collected logs can be specified in the init file, \
             under artifacts parameter. Each VM's paths land in OUTPUT/<vm>/<path with every \
             / replaced by _> (/var/log -> OUTPUT/vm0/_var_log), modes kept; an existing \
             OUTPUT is first renamed to OUTPUT.YYYY-MM-DD_HH:MM:SS. A path missing in a VM \
             is skipped with a warning unless --no-skip. A VM that is not running is read \
             offline when its provider can, else it is an error.",
        )
        .arg(
            Arg::new("output")
                .long("output")
                .required(true)
                .value_name("OUTPUT")
                .help("Path to place all the extracted at"),
        )
        .arg(
            Arg::new("no_skip")
                .long("no-skip")
                .action(ArgAction::SetTrue)
                .help("do not skip missing paths"),
        )
}

pub fn run(ctx: &mut Context, args: &ArgMatches) -> Result<Output, Error> {
    let structured = ctx.out_format() != "default";
    let output = args
        .get_one::<String>("output")
        .ok_or_else(|| Error::user("lago collect needs --output"))?;
    let output =
        std::path::absolute(output).map_err(|e| Error::user(format!("--output {output}: {e}")))?;
    let no_skip = args.get_flag("no_skip");
    let env = environment::from_context(ctx)?;
    let vms: Vec<&VmSpec> = env.env.domains.values().collect();
    let mut paths = Vec::with_capacity(vms.len());
    for vm in &vms {
        paths.push(env.artifact_paths(vm)?);
    }
    let states = env.states()?;

    let rotated = rotate_dir(&output)?;
    for vm in &vms {
        let dir = output.join(&vm.name);
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::internal(format!("cannot create {}: {e}", dir.display())))?;
    }
    let work: Vec<(&VmSpec, &Vec<String>)> = vms.iter().copied().zip(paths.iter()).collect();
    let results = in_parallel(&work, |(vm, paths)| {
        let running = states.vms.get(&vm.name).map(String::as_str) == Some("running");
        collect_one(&env, vm, paths, &output.join(&vm.name), no_skip, running)
    });

    let mut per_vm = Map::new();
    let mut errors = Vec::new();
    for ((vm, _), result) in work.iter().zip(results) {
        match result {
            Ok(Ok(report)) => {
                per_vm.insert(vm.name.clone(), serde_json::to_value(report)?);
            }
            Ok(Err(e)) => errors.push(e),
            Err(panic) => errors.push(Error::internal(format!(
                "VM `{}`: collect worker panicked: {panic}",
                vm.name
            ))),
        }
    }
    if !errors.is_empty() {
        return Err(combine_errors(errors));
    }
    Ok(if structured {
        Output::Data(json!({
            "output": output,
            "rotated": rotated,
            "vms": Value::Object(per_vm),
        }))
    } else {
        Output::Nothing
    })
}

/// One VM's artifacts into `vm_out`: over SSH when it runs, else through
/// its provider's offline extraction.
fn collect_one(
    env: &Environment<'_>,
    vm: &VmSpec,
    paths: &[String],
    vm_out: &Path,
    no_skip: bool,
    running: bool,
) -> Result<VmCollection, Error> {
    if paths.is_empty() {
        return Ok(VmCollection::default());
    }
    if !running {
        let pairs: Vec<(String, String)> = plan(&vm.name, paths, vm_out)?
            .into_iter()
            .map(|a| (a.guest, a.dest.to_string_lossy().into_owned()))
            .collect();
        env.extract_paths_dead(vm, &pairs, !no_skip)?;
        return Ok(VmCollection {
            collected: paths.to_vec(),
            ..VmCollection::default()
        });
    }
    let target = env.ssh_ready(vm)?;
    match collect_vm(env.ssh(), &target, paths, vm_out, no_skip) {
        Ok(report) => Ok(report),
        Err(CollectError::Ssh(e)) if is_unreachable(&e) => {
            Err(not_running(env, vm).unwrap_or_else(|| CollectError::Ssh(e).into()))
        }
        Err(e) => Err(e.into()),
    }
}
