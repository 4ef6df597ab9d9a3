//! What `p2pctl copy` and `p2pctl bench` print, rendered by the functions the commands use
//! from results built here (no device needed): the path chosen from a committed predicted
//! tree, its reason, rates, checksums, and the bench matrices with a pair that has no direct
//! path and one that failed verification.

use hsa_p2p_runtime::bench_report::{
    AsyncBench, BenchReport, ConcurrentBench, CpuGpuBench, PairBench, SizeSweep, SweepRow,
    BENCH_SCHEMA,
};
use hsa_p2p_runtime::device::bench::render as render_bench;
use hsa_p2p_runtime::device::transfer::{
    plan, read_published, render as render_copy, resolve_gpu, AsyncCopy, TransferReport,
};
use hsa_p2p_runtime::device::{status_name, PathChoice};
use hsa_p2p_runtime::report::json::COPY_SCHEMA;

/// The report of a copy of `bytes` planned on the predicted tree of `spec`, taking `seconds`
/// (the kernel a tenth less), whose destination checksum is `destination`.
fn copy_report(
    spec: &str,
    (from, to): (&str, &str),
    choice: PathChoice,
    bytes: u64,
    seconds: f64,
    destination: u64,
) -> TransferReport {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/predicted")
        .join(spec);
    let topology = read_published(&root).unwrap();
    let (from, to) = (
        resolve_gpu(&topology, from).unwrap(),
        resolve_gpu(&topology, to).unwrap(),
    );
    let plan = plan(&topology, from, to, choice);
    let source = 0x0123_4567_89ab_cdef;
    TransferReport {
        schema: COPY_SCHEMA,
        from: from.node,
        to: to.node,
        bytes,
        path: plan.path,
        reason: plan.reason,
        seconds,
        kernel_seconds: seconds * 0.9,
        gbps: hsa_p2p_runtime::device::transfer::gbps(bytes, seconds),
        source_checksum: source,
        destination_checksum: destination,
        verified: source == destination,
        asynchronous: None,
    }
}

#[test]
fn copy_reports() {
    let good = 0x0123_4567_89ab_cdef;
    let cases = [
        (
            "direct",
            copy_report(
                "mixed-three-gpus",
                ("gpu0", "gpu1"),
                PathChoice::Auto,
                16 << 20,
                0.0021,
                good,
            ),
        ),
        (
            "staged-no-p2p-link",
            copy_report(
                "mixed-three-gpus",
                ("gpu0", "gpu2"),
                PathChoice::Auto,
                16 << 20,
                0.0084,
                good,
            ),
        ),
        (
            "staged-requested",
            copy_report(
                "same-switch",
                ("1", "2"),
                PathChoice::Staged,
                1 << 30,
                0.5,
                good,
            ),
        ),
        (
            "mismatch",
            copy_report(
                "same-switch",
                ("gpu0", "gpu1"),
                PathChoice::Auto,
                4096,
                0.000012,
                7,
            ),
        ),
    ];
    for (name, report) in cases {
        insta::assert_snapshot!(format!("copy-{name}"), render_copy(&report));
    }
}

#[test]
fn an_asynchronous_copy_report_says_its_ticket_and_status() {
    // `p2pctl copy --async`: the JSON of a synchronous copy has no `asynchronous` field.
    let mut report = copy_report(
        "mixed-three-gpus",
        ("gpu0", "gpu1"),
        PathChoice::Auto,
        16 << 20,
        0.0023,
        0x0123_4567_89ab_cdef,
    );
    let synchronous = serde_json::to_value(&report).unwrap();
    assert!(synchronous.get("asynchronous").is_none(), "{synchronous}");
    report.asynchronous = Some(AsyncCopy {
        ticket: 1,
        submit_seconds: 0.000_004,
        completion: "eventfd".into(),
        status: 0,
        status_name: status_name(0),
    });
    insta::assert_snapshot!("copy-async", render_copy(&report));
    insta::assert_snapshot!(
        "copy-async-json",
        serde_json::to_string_pretty(&report).unwrap()
    );
    // A kernel without eventfds: COPY_WAIT alone saw the end.
    if let Some(copy) = &mut report.asynchronous {
        copy.completion = "copy_wait".into();
    }
    let text = render_copy(&report);
    assert!(
        text.contains("completion seen by COPY_WAIT (no eventfds in this kernel)"),
        "{text}"
    );
}

/// An ordered pair's results; `direct` GB/s when there is a direct path.
fn pair(from: u32, to: u32, direct: Option<f64>, staged: f64, verified: bool) -> PairBench {
    PairBench {
        from,
        to,
        direct_gbps: direct,
        direct_gbps_staggered: direct.map(|gbps| gbps * 1.03),
        staged_gbps: staged,
        direct_over_staged: direct.map(|gbps| gbps / staged),
        user_mmap_gbps: 1.21,
        direct_over_user_mmap: direct.map(|gbps| gbps / 1.21),
        direct_latency_64_us: direct.map(|_| 3.1),
        direct_latency_4k_us: direct.map(|_| 4.2),
        staged_latency_64_us: 6.4,
        staged_latency_4k_us: 11.6,
        verified,
    }
}

/// Two copies at once, direct, as `bench` measures them.
fn concurrent(pairs: &[(u32, u32)], aggregate: f64, verified: bool) -> ConcurrentBench {
    ConcurrentBench {
        pairs: pairs.to_vec(),
        size_bytes: 16 << 20,
        aggregate_gbps: aggregate,
        single_pair_gbps: 24.51,
        aggregate_over_single: aggregate / 24.51,
        verified,
    }
}

#[test]
fn bench_reports() {
    // mixed-three-gpus: nodes 1 and 2 behind one switch, node 3 on its own root port.
    let report = |verified_3_to_1, verified_both_ways| BenchReport {
        schema: BENCH_SCHEMA.to_string(),
        size_bytes: 16 << 20,
        iterations: 5,
        latency_iterations: 200,
        cpus: 2,
        memcpy_gbps: 9.87,
        pairs: vec![
            pair(1, 2, Some(24.51), 6.02, true),
            pair(1, 3, None, 5.98, true),
            pair(2, 1, Some(24.73), 6.11, true),
            pair(2, 3, None, 6.0, true),
            pair(3, 1, None, 5.91, verified_3_to_1),
            pair(3, 2, None, 5.95, true),
        ],
        bidirectional: vec![concurrent(&[(1, 2), (2, 1)], 41.2, verified_both_ways)],
        all_to_all: Some(concurrent(&[(1, 2), (2, 1)], 41.9, true)),
        size_sweep: Some(SizeSweep {
            from: 1,
            to: 2,
            rows: [
                (4 << 10, 1.9, 0.8),
                (1 << 20, 17.5, 5.2),
                (16 << 20, 24.5, 6.0),
            ]
            .into_iter()
            .map(|(size_bytes, direct_gbps, staged_gbps)| SweepRow {
                size_bytes,
                direct_gbps,
                staged_gbps,
            })
            .collect(),
        }),
        cpu_gpu: [(1, 3.3, 2.9), (2, 3.2, 3.0), (3, 3.4, 2.8)]
            .into_iter()
            .map(|(gpu, cpu_to_gpu_gbps, gpu_to_cpu_gbps)| CpuGpuBench {
                gpu,
                cpu_to_gpu_gbps,
                gpu_to_cpu_gbps,
            })
            .collect(),
        async_copies: Some(AsyncBench {
            from: 1,
            to: 2,
            completion: "eventfd".into(),
            latency_64_us: 2.4,
            latency_4k_us: if verified_3_to_1 { 2.9 } else { 3.3 },
            in_flight: 4,
            size_bytes: 16 << 20,
            in_flight_gbps: 30.1,
            sync_gbps: 24.5,
            in_flight_over_sync: 30.1 / 24.5,
            verified: verified_both_ways,
        }),
    };
    insta::assert_snapshot!("bench-mixed-three-gpus", render_bench(&report(true, true)));
    insta::assert_snapshot!(
        "bench-verification-failed",
        render_bench(&report(false, false))
    );
}

#[test]
fn a_report_of_one_view_shows_only_that_view() {
    // `p2pctl bench --views all-to-all` on a machine of three GPUs, all linked.
    let pairs = [(1, 2), (1, 3), (2, 1), (2, 3), (3, 1), (3, 2)];
    let report = BenchReport {
        schema: BENCH_SCHEMA.to_string(),
        size_bytes: 16 << 20,
        iterations: 5,
        latency_iterations: 200,
        cpus: 2,
        memcpy_gbps: 2.1,
        pairs: Vec::new(),
        bidirectional: Vec::new(),
        all_to_all: Some(concurrent(&pairs, 30.8, true)),
        size_sweep: None,
        cpu_gpu: Vec::new(),
        async_copies: None,
    };
    insta::assert_snapshot!("bench-all-to-all-only", render_bench(&report));
}
