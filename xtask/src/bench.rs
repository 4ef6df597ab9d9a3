//! `cargo xtask bench`: boots the two-GPU same-switch machine and measures, in one guest run,
//! direct and staged copy bandwidth between the GPUs, their ratio, a memcpy baseline of the
//! same size in the same guest, and 4 KiB copy latency (`p2pctl bench --json` in the guest).
//! The guest's JSON and a summary go to `target/bench/`.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use hsa_p2p_runtime::device::bench::BenchOptions;
use hsa_p2p_runtime::spec::Spec;
use serde_json::{json, Value};

use crate::emulation::emulate;
use crate::kernel::KernelEnv;
use crate::util::{self, note, phase};
use crate::vm::{self, GuestFile, Initramfs};

/// The spec the benchmark boots.
pub const BENCH_SPEC: &str = "same-switch.toml";

const JSON_BEGIN: &str = "@@BENCH_JSON";
const JSON_END: &str = "@@BENCH_JSON_END";

/// Options of `cargo xtask bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    pub options: BenchOptions,
    /// Module to load (default: build it with `cargo xtask build`).
    #[arg(long, value_name = "KO")]
    pub module: Option<PathBuf>,
    /// Whole-run timeout in seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// Echo the guest console.
    #[arg(long)]
    pub verbose: bool,
}

fn script(args: &BenchArgs) -> String {
    format!(
        "insmod /hsa_p2p.ko || exit 10\n\
         p2pctl bench --json {options} > /tmp/bench.json || exit 11\n\
         echo {JSON_BEGIN}; cat /tmp/bench.json; echo {JSON_END}\n\
         rmmod hsa_p2p || exit 12\n",
        options = args.options.to_args(),
    )
}

fn extract_json(console: &str) -> Result<Value> {
    let report = vm::console::section(console, JSON_BEGIN, JSON_END)
        .context("the guest printed no benchmark JSON")?;
    serde_json::from_str(&report.lines.join("\n")).context("the guest's benchmark JSON is invalid")
}

/// The headline numbers of a guest report: the pair with a direct path.
fn summary(report: &Value) -> Result<Value> {
    let pair = report["pairs"]
        .as_array()
        .and_then(|pairs| pairs.iter().find(|p| p["direct_gbps"].is_number()))
        .context("no GPU pair with a direct path in the report")?;
    let direct = pair["direct_gbps"].as_f64().unwrap_or(0.0);
    let staged = pair["staged_gbps"].as_f64().unwrap_or(0.0);
    let memcpy = report["memcpy_gbps"].as_f64().unwrap_or(0.0);
    let ratio = if staged > 0.0 { direct / staged } else { 0.0 };
    let of_memcpy = if memcpy > 0.0 { direct / memcpy } else { 0.0 };
    Ok(json!({
        "from": pair["from"],
        "to": pair["to"],
        "size_bytes": report["size_bytes"],
        "direct_gbps": direct,
        "direct_gbps_aliased": pair["direct_gbps_aliased"],
        "staged_gbps": staged,
        "direct_over_staged": ratio,
        "memcpy_gbps": memcpy,
        "direct_over_memcpy": of_memcpy,
        "direct_latency_4k_us": pair["direct_latency_us"],
        "staged_latency_4k_us": pair["staged_latency_us"],
        "verified": pair["verified"],
        "targets": {
            "direct_at_least_1_8x_staged": ratio >= 1.8,
            "direct_at_least_70_percent_of_memcpy": of_memcpy >= 0.7,
        },
    }))
}

/// Runs the benchmark.
pub fn bench(args: &BenchArgs) -> Result<()> {
    let env = KernelEnv::load()?;
    let module = crate::kmod::given_or_built(args.module.as_deref(), Default::default())?;
    let p2pctl = crate::guest_tools::static_p2pctl()?;
    let spec = Spec::load(&util::workspace_root().join("topologies").join(BENCH_SPEC))?;
    let machine = emulate(&spec, &format!("hsa-p2p-bench-{}", std::process::id()))?;
    let mut config = machine.vm_config("bench", &env.bzimage);
    config.timeout = Duration::from_secs(args.timeout);
    config.echo = args.verbose;
    config.initramfs = Initramfs {
        script: script(args),
        files: vec![
            GuestFile::host("/hsa_p2p.ko", &module),
            GuestFile::host("/bin/p2pctl", &p2pctl),
        ],
    };
    phase(format!(
        "{}: benchmark {} copies between {} GPUs (QEMU TCG)",
        spec.name,
        args.options.size,
        machine.gpus.len()
    ));
    let run = vm::run(&config)?;
    run.check()?;
    let report = extract_json(&run.console_log)?;
    let headline = summary(&report)?;
    let document = json!({
        "schema": "hsa-p2p/xtask-bench/v1",
        "spec": spec.name,
        "accelerator": "tcg",
        "summary": headline,
        "guest": report,
    });
    let dir = util::target_dir().join("bench");
    fs::create_dir_all(&dir)?;
    let path = dir.join("bench.json");
    fs::write(&path, serde_json::to_string_pretty(&document)? + "\n")?;
    let number = |key: &str| headline[key].as_f64().unwrap_or(f64::NAN);
    println!(
        "direct {:.3} GB/s (aliased offsets: {:.3}), staged {:.3} GB/s, direct/staged {:.2}x, memcpy {:.3} GB/s (direct = {:.0}% of memcpy), 4 KiB latency direct {:.1} us / staged {:.1} us",
        number("direct_gbps"),
        number("direct_gbps_aliased"),
        number("staged_gbps"),
        number("direct_over_staged"),
        number("memcpy_gbps"),
        number("direct_over_memcpy") * 100.0,
        number("direct_latency_4k_us"),
        number("staged_latency_4k_us"),
    );
    note(format!("JSON: {}", path.display()));
    if headline["verified"] != json!(true) {
        bail!("a benchmark copy did not verify");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_takes_the_direct_pair() {
        let report = json!({
            "size_bytes": 16,
            "memcpy_gbps": 4.0,
            "pairs": [
                {"from": 1, "to": 2, "direct_gbps": 2.0, "staged_gbps": 1.0,
                 "direct_latency_us": 10.0, "staged_latency_us": 20.0, "verified": true},
            ],
        });
        let headline = summary(&report).unwrap();
        assert_eq!(headline["direct_over_staged"], json!(2.0));
        assert_eq!(headline["direct_over_memcpy"], json!(0.5));
        assert_eq!(
            headline["targets"]["direct_at_least_1_8x_staged"],
            json!(true)
        );
        assert_eq!(
            headline["targets"]["direct_at_least_70_percent_of_memcpy"],
            json!(false)
        );
        let console = format!("noise\n{JSON_BEGIN}\r\n{{\"a\": 1}}\n{JSON_END}\n");
        assert_eq!(extract_json(&console).unwrap(), json!({"a": 1}));
    }
}
