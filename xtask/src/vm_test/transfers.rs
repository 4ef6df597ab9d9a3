//! The peer-memory machines of vm-test: `/dev/hsa_p2p` on a 3-GPU and a 4-GPU spec.
//!
//! In the guest (see [`super::guest_checks`]): bad input gets its documented errno; every
//! ordered GPU pair copies random data, direct when the pair has a p2p link, and pairs without
//! one are refused for direct copy (`EXDEV`) and succeed staged; the guest verifies each
//! destination by reading it back. On the host, after the guest powered off: the destination
//! (and source) ranges in the /dev/shm backing files hold the expected bytes, and the pairs that
//! went direct are exactly those the shared rules predict a p2p link for.

use std::collections::BTreeMap;
use std::fs;
use std::time::Instant;

use anyhow::Result;
use hsa_p2p_core::abi;
use hsa_p2p_runtime::device::random_bytes;
use hsa_p2p_runtime::peers::peer_pair;
use hsa_p2p_runtime::predict::predict_in_bind_order;
use hsa_p2p_runtime::spec::Spec;

use super::guest_checks::source_seed;
use super::guest_script::{script_failures, transfer_script, warnings, GUEST_CHECKER};
use super::report::{Case, Outcome};
use super::{outcome, GuestPayload, VmTestArgs};
use crate::emulation::emulate;
use crate::kernel::KernelEnv;
use crate::util::{self, phase};
use crate::vm::{self, GuestFile, Initramfs};

/// The transfer machines and their copy sizes: two GPUs behind a switch and one on its own root
/// port (bus-address peers and refused pairs), and four GPUs on the root ports of two
/// whitelisted host bridges (every pair through the host bridge: DMA-mapped peers). Four GPUs
/// hold one source and three destinations each in their 64 MiB BARs, hence 12 MiB.
/// The third field is the `MAP_PEER` map type every linked pair must get.
pub const TRANSFER_SPECS: &[(&str, u64, u32)] = &[
    ("mixed-three-gpus.toml", 16 << 20, abi::MAP_TYPE_BUS_ADDR),
    ("two-socket.toml", 12 << 20, abi::MAP_TYPE_THRU_HOST_BRIDGE),
];

/// One `@@XFER` line.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Transfer {
    from: u32,
    to: u32,
    src_offset: u64,
    dst_offset: u64,
    size: u64,
    seed: u64,
    path: String,
    direct: String,
    map: u32,
    bus: u64,
    phys: u64,
    verified: String,
}

fn parse_transfer(line: &str) -> Option<Transfer> {
    let fields: BTreeMap<&str, &str> = line
        .strip_prefix("@@XFER ")?
        .split_whitespace()
        .filter_map(|field| field.split_once('='))
        .collect();
    let number = |key: &str| fields.get(key)?.parse().ok();
    let hex = |key: &str| u64::from_str_radix(fields.get(key)?.strip_prefix("0x")?, 16).ok();
    Some(Transfer {
        from: number("from")? as u32,
        to: number("to")? as u32,
        src_offset: number("src_offset")?,
        dst_offset: number("dst_offset")?,
        size: number("size")?,
        seed: number("seed")?,
        path: fields.get("path")?.to_string(),
        direct: fields.get("direct")?.to_string(),
        map: number("map")? as u32,
        bus: hex("bus")?,
        phys: hex("phys")?,
        verified: fields.get("verified")?.to_string(),
    })
}

/// Boots the transfer machines and turns what they did into cases.
pub(super) fn run_transfers(
    env: &KernelEnv,
    payload: &GuestPayload,
    args: &VmTestArgs,
) -> Result<Vec<Case>> {
    let checker = crate::guest_tools::static_binary("xtask", "xtask")?;
    let mut cases = Vec::new();
    for (spec, size, map_type) in TRANSFER_SPECS {
        cases.extend(run_one(
            env, payload, &checker, spec, *size, *map_type, args,
        )?);
    }
    Ok(cases)
}

fn run_one(
    env: &KernelEnv,
    payload: &GuestPayload,
    checker: &std::path::Path,
    spec_file: &str,
    size: u64,
    map_type: u32,
    args: &VmTestArgs,
) -> Result<Vec<Case>> {
    let spec = Spec::load(&util::workspace_root().join("topologies").join(spec_file))?;
    let suite = format!("transfers-{}", spec.name);
    let shm_prefix = format!("hsa-p2p-vmtest-{}-xfer-{}", std::process::id(), spec.name);
    let machine = emulate(&spec, &shm_prefix)?;
    let all: Vec<usize> = (0..machine.gpus.len()).collect();
    let predicted = predict_in_bind_order(&machine.spec, &all)?.topology;
    let cpus = machine.spec.cpus.len() as u32;
    let has_link =
        |a: usize, b: usize| peer_pair(&predicted, cpus + a as u32, cpus + b as u32).has_access();
    let pairs: Vec<(usize, usize)> = all
        .iter()
        .flat_map(|&a| all.iter().map(move |&b| (a, b)))
        .filter(|(a, b)| a != b)
        .collect();
    let linked = pairs.iter().copied().find(|&(a, b)| has_link(a, b));
    let unlinked = pairs.iter().copied().find(|&(a, b)| !has_link(a, b));
    let mut config = machine.vm_config(format!("vm-test-transfers-{}", spec.name), &env.bzimage);
    config.timeout = args.flavour.flavour().timeout(args.timeout);
    config.echo = args.verbose;
    // Read by the host after the run, then removed here.
    config.keep_shm_files = true;
    config.initramfs = Initramfs {
        script: transfer_script(size, linked, unlinked),
        files: vec![
            GuestFile::host("/hsa_p2p.ko", &payload.module),
            GuestFile::host("/bin/p2pctl", &payload.p2pctl),
            GuestFile::host(GUEST_CHECKER, checker),
        ],
    };
    phase(format!(
        "{}: peer transfers between {} GPUs",
        spec.name,
        machine.gpus.len()
    ));
    let started = Instant::now();
    let run = vm::run(&config);
    let host_files: Vec<_> = config.shm_files.clone();
    let cleanup = || {
        for file in &host_files {
            let _ = fs::remove_file(&file.path);
        }
    };
    let run = match run {
        Ok(run) => run,
        Err(error) => {
            cleanup();
            return Err(error);
        }
    };
    let console = &run.console_log;
    let seconds = started.elapsed().as_secs_f64();
    let case = |name: &str, outcome: Outcome, seconds: f64| Case {
        suite: suite.clone(),
        name: name.to_owned(),
        outcome,
        seconds,
    };
    let mut cases = Vec::new();
    let mut boot = script_failures(console);
    if !run.success() {
        boot.push(format!("{:#}", run.check().unwrap_err()));
    }
    cases.push(case("boot_and_run", outcome(boot), seconds));

    let node = console
        .lines()
        .find_map(|l| l.trim_end().strip_prefix("@@DEVNODE "))
        .unwrap_or("missing");
    let mut mode = Vec::new();
    if node != "character special file 660 0:0" {
        mode.push(format!("/dev/hsa_p2p is {node:?}"));
    }
    cases.push(case("device_node_is_0660", outcome(mode), 0.0));

    // Bad input: one case per check line.
    let mut checks = 0;
    for line in console.lines().map(str::trim_end) {
        if let Some(rest) = line.strip_prefix("@@CHECK ") {
            checks += 1;
            let (name, result) = rest.split_once(' ').unwrap_or((rest, "FAIL no result"));
            let result = if result == "ok" {
                Outcome::Pass
            } else {
                Outcome::Fail(vec![result.to_owned()])
            };
            let name = if name.starts_with("republish_") {
                name.to_owned()
            } else {
                format!("bad_input_{name}")
            };
            cases.push(case(&name, result, 0.0));
        }
    }
    if checks == 0 {
        cases.push(case(
            "bad_input",
            Outcome::Fail(vec!["the guest printed no @@CHECK line".into()]),
            0.0,
        ));
    }

    // Transfers: one case per ordered pair, verified in the guest and here.
    let transfers: Vec<Transfer> = console
        .lines()
        .filter_map(|l| parse_transfer(l.trim_end()))
        .collect();
    let gpus = machine.gpus.len() as u32;
    let problems_of = |from: u32, to: u32| -> Vec<String> {
        let prefix = format!("@@XFER_PROBLEM {from}->{to}: ");
        console
            .lines()
            .filter_map(|l| l.trim_end().strip_prefix(&prefix).map(str::to_owned))
            .collect()
    };
    for accessor in 0..gpus {
        for owner in (0..gpus).filter(|&o| o != accessor) {
            let (from, to) = (cpus + accessor, cpus + owner);
            let name = format!(
                "copy_{}MiB_{}_to_{}",
                size >> 20,
                machine.gpus[accessor as usize].label,
                machine.gpus[owner as usize].label
            );
            let Some(transfer) = transfers.iter().find(|t| (t.from, t.to) == (from, to)) else {
                cases.push(case(
                    &name,
                    Outcome::Fail(vec![format!("no @@XFER line for node {from} -> {to}")]),
                    0.0,
                ));
                continue;
            };
            let mut problems = problems_of(from, to);
            if transfer.verified != "ok" {
                problems.push("the guest's read-back did not match".into());
            }
            let linked = peer_pair(&predicted, from, to).has_access();
            let expected_path = if linked { "direct" } else { "staged" };
            let expected_direct = if linked { "ok" } else { "EXDEV" };
            if (transfer.path.as_str(), transfer.direct.as_str())
                != (expected_path, expected_direct)
            {
                problems.push(format!(
                    "path {} (direct copy: {}), but the predicted topology {} a p2p link: expected path {expected_path} (direct copy: {expected_direct})",
                    transfer.path,
                    transfer.direct,
                    if linked { "has" } else { "has no" }
                ));
            }
            if linked && transfer.map != map_type {
                problems.push(format!(
                    "MAP_PEER gave map type {}, expected {map_type}",
                    transfer.map
                ));
            }
            // No IOMMU and no bus offset on q35: the peer's address is the BAR's physical one.
            if linked && (transfer.bus == 0 || transfer.bus != transfer.phys) {
                problems.push(format!(
                    "peer address {:#x}, the buffer is at {:#x}",
                    transfer.bus, transfer.phys
                ));
            }
            if transfer.size != size {
                problems.push(format!("copied {} bytes", transfer.size));
            }
            if transfer.seed != source_seed(from) {
                problems.push(format!("unexpected seed {}", transfer.seed));
            }
            let expected = random_bytes(transfer.size as usize, transfer.seed);
            for (what, gpu, offset) in [
                ("destination", owner, transfer.dst_offset),
                ("source", accessor, transfer.src_offset),
            ] {
                let file = &config.shm_files[gpu as usize];
                match file.read(offset, expected.len()) {
                    Ok(bytes) if bytes == expected => {}
                    Ok(bytes) => {
                        let first = bytes.iter().zip(&expected).position(|(a, b)| a != b);
                        problems.push(format!(
                            "host: {what} in {} at {offset:#x} differs (first at +{first:?})",
                            file.path.display()
                        ));
                    }
                    Err(error) => problems.push(format!("host: cannot read {what}: {error:#}")),
                }
            }
            cases.push(case(&name, outcome(problems), 0.0));
        }
    }
    let dirty: Vec<String> = warnings(console)
        .into_iter()
        .map(|line| format!("kernel warning: {line}"))
        .collect();
    cases.push(case("kernel_log_stays_clean", outcome(dirty), 0.0));
    cleanup();
    Ok(cases)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_lines_parse() {
        let line = "@@XFER from=1 to=3 src_offset=4096 dst_offset=16781312 size=16777216 seed=1592590337 path=staged direct=EXDEV map=0 bus=0x0 phys=0xfe001000 verified=ok";
        let transfer = parse_transfer(line).unwrap();
        assert_eq!((transfer.from, transfer.to), (1, 3));
        assert_eq!(transfer.dst_offset, 16_781_312);
        assert_eq!(transfer.direct, "EXDEV");
        assert_eq!(transfer.phys, 0xfe00_1000);
        assert_eq!(parse_transfer("@@XFER from=1"), None);
    }
}
