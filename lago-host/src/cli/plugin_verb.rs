//! Verbs added by plugins: CLI plugins (`lago <verb>`) and vm-type verbs
//! (`lago <verb> [--vm NAME]...`, run on each VM of that vm-type).
//!
//! Their arguments are data ([`CliSpec`]); here they become clap commands,
//! are checked against the global flags, parsed, and handed to the plugin as
//! JSON.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsString;

use clap::{Arg, ArgAction, ArgMatches, Command};
use lago_plugin_api::{ArgSpec, CliSpec};
use serde_json::{Map, Value};

use super::{clap_exit, global_args, root_command, Context, GlobalArgs, Output, VERBS};
use crate::config::Config;
use crate::error::Error;
use crate::plugins::{into_result, PluginKind};

/// Where a plugin verb comes from.
#[derive(Debug, Clone)]
pub enum VerbOrigin {
    /// A CLI plugin of this name.
    Cli,
    /// A verb of this vm-type.
    VmType(String),
}

/// A plugin verb with its spec and origin.
#[derive(Debug, Clone)]
pub struct PluginVerb {
    pub name: String,
    pub spec: CliSpec,
    pub origin: VerbOrigin,
    /// Where the plugin lives (for messages).
    pub source: String,
}

/// The outcome of parsing an external verb.
pub enum Parsed {
    Ran(Output),
    /// clap printed help or an error: exit with this code.
    Exit(i32),
}

/// The long name used by vm-type verbs to pick VMs.
pub const VM_ARG: &str = "vm";

/// The verbs the plugins add, and those they could not.
#[derive(Debug, Default)]
pub struct PluginVerbs {
    /// Usable verbs, by name.
    pub verbs: BTreeMap<String, PluginVerb>,
    /// CLI plugin verbs whose spec could not be had, with the warning
    /// already shown: `name -> why`.
    pub disabled: BTreeMap<String, String>,
}

/// Every verb the loaded plugins add, by name. A name taken twice is an
/// error naming both plugins; a name equal to a built-in verb is ignored
/// with a warning (the built-in wins). A plugin whose `spec()`/`verbs()`
/// fails or panics loses its verbs, with one warning: the other plugins'
/// verbs keep working.
pub fn collect(ctx: &mut Context) -> Result<PluginVerbs, Error> {
    let reg = ctx.plugins_where(|k, _| matches!(k, PluginKind::Cli | PluginKind::VmType))?;
    let mut disabled = BTreeMap::new();
    let mut disable = |name: &str, source: String, e: lago_plugin_api::PluginError| {
        let why = format!("the {source} is disabled: its spec failed: {e}");
        tracing::warn!("{why}");
        disabled.insert(name.to_string(), why);
    };
    let mut out: BTreeMap<String, PluginVerb> = BTreeMap::new();
    let mut add = |v: PluginVerb| -> Result<(), Error> {
        if VERBS.iter().any(|b| b.name == v.name) {
            tracing::warn!(
                "the plugin verb `{}` of {} is hidden by the built-in verb of that name",
                v.name,
                v.source
            );
            return Ok(());
        }
        if let Some(prev) = out.get(&v.name) {
            return Err(Error::user(format!(
                "two plugins add the verb `{}`: {} and {}; remove one of them",
                v.name, prev.source, v.source
            )));
        }
        out.insert(v.name.clone(), v);
        Ok(())
    };
    for (name, entry) in &reg.verbs {
        let source = format!("cli plugin `{name}` ({})", entry.source);
        let spec = match into_result(entry.plugin.spec()) {
            Ok(spec) => spec,
            Err(e) => {
                disable(name, source, e);
                continue;
            }
        };
        add(PluginVerb {
            name: name.clone(),
            spec,
            origin: VerbOrigin::Cli,
            source,
        })?;
    }
    for (type_name, entry) in &reg.vm_types {
        let verbs = match into_result(entry.plugin.verbs()) {
            Ok(v) => v,
            Err(e) if e.is_delegate() => Default::default(),
            Err(e) => {
                // Its verb names are unknown: warn, nothing to key them by.
                tracing::warn!(
                    "the verbs of vm-type `{type_name}` ({}) are disabled: listing them failed: {e}",
                    entry.source
                );
                continue;
            }
        };
        for spec in verbs {
            add(PluginVerb {
                name: spec.name.to_string(),
                spec,
                origin: VerbOrigin::VmType(type_name.clone()),
                source: format!("vm-type `{type_name}` ({})", entry.source),
            })?;
        }
    }
    Ok(PluginVerbs {
        verbs: out,
        disabled,
    })
}

/// Check a spec against clap's rules and lago's global flags.
pub fn validate(verb: &PluginVerb) -> Result<(), String> {
    let globals: Vec<Arg> = global_args()
        .into_iter()
        .filter(Arg::is_global_set)
        .collect();
    let mut longs: HashSet<String> = globals
        .iter()
        .filter_map(|a| a.get_long().map(str::to_string))
        .collect();
    longs.extend(["help".to_string(), "version".to_string()]);
    let mut shorts: HashSet<char> = globals.iter().filter_map(Arg::get_short).collect();
    shorts.extend(['h', 'V']);
    let mut names: HashSet<String> = HashSet::new();
    if matches!(verb.origin, VerbOrigin::VmType(_)) {
        longs.insert(VM_ARG.to_string());
        names.insert(VM_ARG.to_string());
    }
    if verb.name.is_empty() || verb.name.starts_with('-') || verb.name.contains(char::is_whitespace)
    {
        return Err(format!("bad verb name {:?}", verb.name));
    }
    let positionals: Vec<&ArgSpec> = verb
        .spec
        .args
        .iter()
        .filter(|a| a.is_positional())
        .collect();
    for (i, p) in positionals.iter().enumerate() {
        if p.multiple && i + 1 != positionals.len() {
            return Err(format!(
                "positional argument `{}` takes several values but is not the last one",
                p.name
            ));
        }
    }
    for a in verb.spec.args.iter() {
        let name = a.name.to_string();
        if name.is_empty() || !names.insert(name.clone()) {
            return Err(format!("argument name {name:?} is empty or used twice"));
        }
        if let Some(l) = a.long.as_ref().into_option() {
            if l.is_empty() || !longs.insert(l.to_string()) {
                return Err(format!(
                    "argument `{name}`: --{l} is empty, used twice, or a global flag"
                ));
            }
        }
        if let Some(s) = a.short.into_option() {
            let c = char::from_u32(s).filter(|c| c.is_ascii_alphanumeric());
            match c {
                Some(c) if shorts.insert(c) => {}
                _ => {
                    return Err(format!(
                        "argument `{name}`: its short flag is not a letter or digit, is used \
                         twice, or is a global flag"
                    ))
                }
            }
        }
        if a.short.is_some() && a.long.is_none() {
            // fine: a short-only flag or option
        }
    }
    Ok(())
}

/// The clap command of a plugin verb.
pub fn command(verb: &PluginVerb) -> Command {
    let mut cmd = Command::new(verb.name.clone()).about(verb.spec.help.to_string());
    if let VerbOrigin::VmType(t) = &verb.origin {
        cmd = cmd.arg(
            Arg::new(VM_ARG)
                .long(VM_ARG)
                .value_name("NAME")
                .action(ArgAction::Append)
                .help(format!(
                    "Run on this VM only (repeatable); default: every VM of vm-type `{t}`"
                )),
        );
    }
    for a in verb.spec.args.iter() {
        let mut arg = Arg::new(a.name.to_string()).help(a.help.to_string());
        if let Some(l) = a.long.as_ref().into_option() {
            arg = arg.long(l.to_string());
        }
        if let Some(c) = a.short_char() {
            arg = arg.short(c);
        }
        if a.takes_value || a.is_positional() {
            if a.multiple {
                arg = arg.action(ArgAction::Append);
                if a.is_positional() {
                    arg = arg.num_args(1..);
                }
            } else {
                arg = arg.action(ArgAction::Set);
            }
            if let Some(d) = a.default.as_ref().into_option() {
                arg = arg.default_value(d.to_string());
            }
            arg = arg.required(a.required);
        } else {
            arg = arg.action(ArgAction::SetTrue);
        }
        cmd = cmd.arg(arg);
    }
    cmd
}

/// The parsed arguments as the JSON object plugins get.
pub fn args_json(spec: &CliSpec, m: &ArgMatches) -> Value {
    let mut out = Map::new();
    for a in spec.args.iter() {
        let id = a.name.as_str();
        let v = if !(a.takes_value || a.is_positional()) {
            Value::Bool(m.get_flag(id))
        } else if a.multiple {
            Value::Array(
                m.get_many::<String>(id)
                    .map(|vs| vs.map(|s| Value::String(s.clone())).collect())
                    .unwrap_or_default(),
            )
        } else {
            m.get_one::<String>(id)
                .map(|s| Value::String(s.clone()))
                .unwrap_or(Value::Null)
        };
        out.insert(id.to_string(), v);
    }
    Value::Object(out)
}

/// How a failed first parse ends: `lago --help` (and `lago` alone, `lago
/// help`) also lists the verbs plugins add, CLI plugins and vm-types alike;
/// anything else as clap says ([`clap_exit`]).
pub fn help_or_exit(e: clap::Error, bin_name: &str) -> i32 {
    use clap::error::ErrorKind;
    let root_usage = format!("Usage: {bin_name} [OPTIONS] <VERB>");
    let is_help = matches!(
        e.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    // A verb's own help shows that verb's usage line, not the root's.
    if !is_help || !e.render().to_string().contains(&root_usage) {
        return clap_exit(e);
    }
    // Logging is not set up yet: what loading says stays quiet here.
    let mut ctx = Context::new(GlobalArgs::default(), Config::defaults(), bin_name.into());
    let verbs = match collect(&mut ctx) {
        Ok(found) => found.verbs,
        Err(_) => return clap_exit(e),
    };
    let help = root_command(bin_name)
        .after_help(plugin_verbs_help(&verbs))
        .render_help()
        .to_string();
    if e.use_stderr() {
        eprint!("{help}");
        crate::error::EXIT_USER
    } else {
        print!("{help}");
        0
    }
}

/// The text after `lago --help`'s verb list: the plugins' verbs, each with
/// its help and where it comes from.
fn plugin_verbs_help(verbs: &BTreeMap<String, PluginVerb>) -> String {
    let usable: Vec<&PluginVerb> = verbs.values().filter(|v| validate(v).is_ok()).collect();
    if usable.is_empty() {
        return "No plugin adds verbs: `lago plugins` lists the plugins.".to_string();
    }
    let width = usable.iter().map(|v| v.name.len()).max().unwrap_or(0);
    let mut text = String::from("Plugin verbs:\n");
    for v in usable {
        let from = match &v.origin {
            VerbOrigin::Cli => "cli plugin".to_string(),
            VerbOrigin::VmType(t) => format!("vm-type `{t}`, on its VMs"),
        };
        text.push_str(&format!(
            "  {:width$}  {} ({from})\n",
            v.name,
            v.spec.help.as_str()
        ));
    }
    text.push_str(
        "\n`lago VERB --help` shows a verb's arguments; `lago plugins` lists the plugins.",
    );
    text
}

/// Load the plugins, find `name` among their verbs, parse `argv` again with
/// it, and run it.
pub fn run_external(ctx: &mut Context, name: &str, argv: &[OsString]) -> Result<Parsed, Error> {
    let PluginVerbs { verbs, disabled } = collect(ctx)?;
    let Some(verb) = verbs.get(name) else {
        if let Some(why) = disabled.get(name) {
            return Err(Error::user(format!("cannot run `{name}`: {why}")));
        }
        return Err(Error::user(format!(
            "unknown verb `{name}`: `{} --help` lists the built-in verbs, `{} plugins` the plugins",
            ctx.bin_name, ctx.bin_name
        )));
    };
    validate(verb)
        .map_err(|why| Error::user(format!("the verb `{name}` of {}: {why}", verb.source)))?;
    let mut root = root_command(&ctx.bin_name);
    for v in verbs.values() {
        if v.name == name || validate(v).is_ok() {
            root = root.subcommand(command(v));
        }
    }
    let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        root.try_get_matches_from(argv)
    }));
    let matches = match parsed {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => return Ok(Parsed::Exit(clap_exit(e))),
        Err(_) => {
            return Err(Error::user(format!(
                "the verb `{name}` of {}: its arguments are not valid for clap",
                verb.source
            )))
        }
    };
    let Some((_, sub)) = matches.subcommand() else {
        return Err(Error::user("no verb given"));
    };
    // Global flags after the verb were not parsed the first time.
    let globals = GlobalArgs::from_matches(&matches);
    if globals != ctx.globals {
        ctx.config = Config::load(&globals.config_overrides()).map_err(|e| Error::user_from(&e))?;
        ctx.globals = globals;
    }
    ctx.check_out_format()?;
    let args = args_json(&verb.spec, sub);
    let out = match &verb.origin {
        VerbOrigin::Cli => run_cli(ctx, name, &args)?,
        VerbOrigin::VmType(t) => run_vm_type_verb(ctx, t, name, &args, sub)?,
    };
    Ok(Parsed::Ran(out))
}

fn to_output(json: &str) -> Result<Output, Error> {
    let v: Value = serde_json::from_str(json)
        .map_err(|e| Error::internal(format!("a plugin returned invalid JSON: {e}")))?;
    Ok(match v {
        Value::Null => Output::Nothing,
        v => Output::Data(v),
    })
}

fn run_cli(ctx: &mut Context, name: &str, args: &Value) -> Result<Output, Error> {
    let cc = serde_json::to_string(&ctx.cli_context())?;
    let args = serde_json::to_string(args)?;
    let reg = ctx.plugins_where(|k, n| k == PluginKind::Cli && n == name)?;
    let entry = reg
        .verbs
        .get(name)
        .ok_or_else(|| Error::internal(format!("cli plugin `{name}` vanished")))?;
    let out = into_result(entry.plugin.run(args.as_str().into(), cc.as_str().into()))?;
    to_output(out.as_str())
}

fn run_vm_type_verb(
    ctx: &mut Context,
    vm_type: &str,
    verb: &str,
    args: &Value,
    m: &ArgMatches,
) -> Result<Output, Error> {
    let prefix = ctx.prefix()?;
    prefix.require_initialized()?;
    let env = prefix.load_env()?;
    let wanted: Option<Vec<String>> = m.get_many::<String>(VM_ARG).map(|vs| vs.cloned().collect());
    if let Some(w) = &wanted {
        for n in w {
            match env.domains.get(n) {
                None => return Err(Error::user(format!("no VM named `{n}` in the prefix"))),
                Some(vm) if vm.vm_type != vm_type => {
                    return Err(Error::user(format!(
                        "VM `{n}` is of vm-type `{}`, the verb `{verb}` belongs to `{vm_type}`",
                        vm.vm_type
                    )))
                }
                Some(_) => {}
            }
        }
    }
    let vms: Vec<_> = env
        .domains
        .values()
        .filter(|vm| vm.vm_type == vm_type)
        .filter(|vm| wanted.as_ref().is_none_or(|w| w.contains(&vm.name)))
        .collect();
    if vms.is_empty() {
        return Err(Error::user(format!(
            "no VM of vm-type `{vm_type}` in the prefix: nothing for `{verb}` to do"
        )));
    }
    let args = serde_json::to_string(args)?;
    let reg = ctx.plugins_where(|k, n| k == PluginKind::VmType && n == vm_type)?;
    let entry = reg
        .vm_types
        .get(vm_type)
        .ok_or_else(|| Error::internal(format!("vm-type `{vm_type}` vanished")))?;
    let mut results = Map::new();
    for vm in vms {
        let vm_json = serde_json::to_string(vm)?;
        let out = into_result(entry.plugin.run_verb(
            verb.into(),
            args.as_str().into(),
            vm_json.as_str().into(),
        ))
        .map_err(|e| Error::from(e).context(format!("{verb} on {}", vm.name)))?;
        let v: Value = serde_json::from_str(out.as_str()).map_err(|e| {
            Error::internal(format!("vm-type `{vm_type}` returned invalid JSON: {e}"))
        })?;
        results.insert(vm.name.clone(), v);
    }
    Ok(Output::Data(Value::Object(results)))
}
