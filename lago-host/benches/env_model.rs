//! Benchmark of the environment model (not a timed test).
//!
//! ```text
//! cargo bench -p lago-host --bench env_model -- plan [RUNS] [keep]   # 1,000 VMs on 8 nets: plan + store
//! cargo bench -p lago-host --bench env_model -- status LAGO [RUNS]   # `lago status -f json` on 50 VMs
//! ```
//!
//! `plan` runs `lago init`'s library path (read and check the init file,
//! lease 8 subnets, plan, generate 1,001 SSH key pairs, write the prefix,
//! syncfs, marker) with no provider work, once per run in a fresh folder, and
//! prints the median wall time and this process's peak RSS. `status` makes a
//! 50-VM prefix, runs the `lago` binary given (`status -f json`, no provider
//! reachable: `LAGO_LIBVIRT_URL=test:///default`) RUNS times as whole
//! processes and prints the median wall time and the children's peak RSS.
//! `benches/env_model.sh` runs both and writes docs/PERFORMANCE.md's section.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use lago::config::{Config, Sources};
use lago::environment::stored_states;
use lago::ops::{self, InitRequest};
use lago::prefix::Prefix;
use lago::sdk::status_tree;
use lago_plugin_api::spec::EnvSpec;

/// `vms` VMs spread over `nets` management networks (a /24 holds at most
/// 253 nics, so a 1,000-VM environment needs several), one nic each.
fn init_file(vms: usize, nets: usize) -> String {
    let mut t = String::from(
        "x-vm: &vm\n  memory: 256\n  vcpu: 1\n  disks:\n    - {type: template, template_name: tiny, dev: vda}\n    - {type: empty, size: 1G, dev: vdb, name: data}\n  artifacts: [/var/log]\ndomains:\n",
    );
    for i in 0..vms {
        t.push_str(&format!(
            "  vm{i:04}:\n    <<: *vm\n    nics:\n      - net: net{}\n",
            i % nets
        ));
    }
    t.push_str("nets:\n");
    for n in 0..nets {
        t.push_str(&format!("  net{n}: {{management: true}}\n"));
    }
    t
}

fn config(dir: &Path) -> Config {
    let sources = Sources {
        files: vec![],
        env: vec![(
            "LAGO_LEASE_DIR".into(),
            dir.join("leases").display().to_string(),
        )],
    };
    Config::load_from(&sources, &[]).expect("config")
}

fn make_prefix(dir: &Path, vms: usize, nets: usize) -> EnvSpec {
    let f = dir.join("LagoInitFile");
    std::fs::write(&f, init_file(vms, nets)).expect("write");
    let req = InitRequest::new(&f, dir.join(".lago"));
    let mut hook = |_: &Prefix, _: &mut EnvSpec| Ok(());
    ops::init(&req, &config(dir), &mut hook).expect("init").1
}

fn peak_rss_kib(who: i32) -> i64 {
    // SAFETY: getrusage fills the zeroed struct we pass.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut ru);
        ru.ru_maxrss
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args.first().map(String::as_str) {
        Some("plan") => {
            let runs: usize = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(5);
            // `keep`: leave the prefixes behind (a whole-process measure then
            // does not include removing 2,000 files; the caller removes them).
            let keep = args.get(2).is_some_and(|a| a == "keep");
            let mut times = Vec::new();
            for _ in 0..runs {
                let t = tempfile::tempdir().expect("tmp");
                let start = Instant::now();
                let env = make_prefix(t.path(), 1000, 8);
                times.push(start.elapsed());
                assert_eq!(env.domains.len(), 1000);
                if keep {
                    println!("kept {}", t.keep().display());
                }
            }
            println!(
                "plan+store 1000 VMs / 8 nets: median {:.0} ms over {runs} runs (min {:.0}, max {:.0}); peak RSS {} MiB",
                median(times.clone()).as_secs_f64() * 1e3,
                times.iter().min().map(|d| d.as_secs_f64() * 1e3).unwrap_or_default(),
                times.iter().max().map(|d| d.as_secs_f64() * 1e3).unwrap_or_default(),
                peak_rss_kib(libc::RUSAGE_SELF) / 1024
            );
        }
        Some("status") => {
            let lago = std::fs::canonicalize(args.get(1).expect("path of the lago binary"))
                .expect("the lago binary");
            let runs: usize = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(20);
            let t = tempfile::tempdir().expect("tmp");
            let env = make_prefix(t.path(), 50, 3);
            // In process: read the stored prefix back and build the tree.
            let prefix = Prefix::open(&env.prefix.path).expect("prefix");
            let mut inproc = Vec::new();
            for _ in 0..runs {
                let start = Instant::now();
                let env = prefix.load_env().expect("load");
                let tree = status_tree(&env, &stored_states(&env));
                let text = serde_json::to_string_pretty(&tree).expect("json");
                inproc.push(start.elapsed());
                assert!(text.len() > 1000);
            }
            println!(
                "in process, load the 50-VM prefix + build the status tree + JSON: median {:.2} ms",
                median(inproc).as_secs_f64() * 1e3
            );
            let mut times = Vec::new();
            let mut bytes = 0;
            for _ in 0..runs {
                let start = Instant::now();
                let out = Command::new(&lago)
                    .args(["status", "-f", "json"])
                    .current_dir(t.path())
                    .env("LAGO_LEASE_DIR", t.path().join("leases"))
                    .env("LAGO_LIBVIRT_URL", "test:///default")
                    .output()
                    .expect("lago");
                times.push(start.elapsed());
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                bytes = out.stdout.len();
            }
            println!(
                "lago status -f json, 50 VMs: median {:.1} ms over {runs} runs (min {:.1}, max {:.1}); peak RSS {} MiB; {bytes} bytes of JSON",
                median(times.clone()).as_secs_f64() * 1e3,
                times.iter().min().map(|d| d.as_secs_f64() * 1e3).unwrap_or_default(),
                times.iter().max().map(|d| d.as_secs_f64() * 1e3).unwrap_or_default(),
                peak_rss_kib(libc::RUSAGE_CHILDREN) / 1024
            );
        }
        Some("make-prefix") => {
            // Keep a stored prefix to measure by hand: make-prefix DIR VMS NETS
            let dir = Path::new(args.get(1).expect("DIR"));
            let vms = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(50);
            let nets = args.get(3).and_then(|v| v.parse().ok()).unwrap_or(3);
            std::fs::create_dir_all(dir).expect("mkdir");
            make_prefix(dir, vms, nets);
        }
        _ => {
            eprintln!(
                "usage: env_model plan [RUNS] | status LAGO [RUNS] | make-prefix DIR [VMS] [NETS]"
            );
            std::process::exit(2);
        }
    }
}
