//! `p2pctl predict --set KEY=VALUE`: the what-if answers (the pairs whose verdict changes) and
//! the refusals of settings the spec cannot take, as one transcript per question.

mod common;

use common::transcript;

/// (snapshot name, spec, settings).
const QUESTIONS: [(&str, &str, &[&str]); 8] = [
    // ROCm/amdgpu#210: BARs above the DMA mask behind a switch, IOMMU remapping, amdgpu
    // without HSA_AMD_P2P; with it, the IOMMU makes them reachable, without remapping not.
    (
        "kernel-with-hsa-amd-p2p",
        "mi50-pex88096-without-hsa-amd-p2p",
        &["platform.kernel=hsa-amd-p2p"],
    ),
    (
        "kernel-with-hsa-amd-p2p-iommu-passthrough",
        "mi50-pex88096-without-hsa-amd-p2p",
        &["platform.kernel=hsa-amd-p2p", "platform.iommu=passthrough"],
    ),
    ("resizable-bar", "small-bar", &["gpu1.bar=32G"]),
    ("iommu-remap", "dma-mask-limit", &["platform.iommu=remap"]),
    (
        "whitelisted-amd-cpu",
        "separate-root-ports",
        &[
            "platform.cpu_vendor=AuthenticAMD",
            "platform.cpu_family=0x19",
        ],
    ),
    (
        "kernel-without-hsa-amd-p2p",
        "same-switch",
        &["platform.kernel=without-hsa-amd-p2p"],
    ),
    ("nothing-changes", "small-bar", &["platform.iommu=remap"]),
    (
        "cards-swapped",
        "mixed-three-gpus",
        &["gpu1.parent=rp1", "gpu2.parent=sw0.1"],
    ),
];

#[test]
fn what_if_answers() {
    for (name, spec, settings) in QUESTIONS {
        let spec = format!("topologies/{spec}.toml");
        let mut args = vec!["predict", spec.as_str()];
        for setting in settings {
            args.extend(["--set", setting]);
        }
        insta::assert_snapshot!(format!("set-{name}"), transcript(&args));
    }
}

#[test]
fn settings_the_spec_cannot_take_are_refused_naming_the_setting() {
    let refusals: [&[&str]; 7] = [
        &["gpu1.barr=1"],
        &["nope.bar=1"],
        &["platform.iommu=remapp"],
        &["gpu1.vram"],
        &["gpu1.parent=sw0.0"],
        &["gpu1.bar=18446744073709551615"],
        // An impossible machine names every setting that made it.
        &["gpu1.parent=rp0", "platform.iommu=remap"],
    ];
    let text: String = refusals
        .iter()
        .map(|settings| {
            let mut args = vec!["predict", "topologies/small-bar.toml"];
            for setting in *settings {
                args.extend(["--set", setting]);
            }
            transcript(&args) + "\n"
        })
        .collect();
    insta::assert_snapshot!("set-refusals", text);
}
