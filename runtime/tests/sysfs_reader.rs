//! The sysfs reader on committed trees: the predicted fixtures read back to exactly what the
//! predictor produces, an old-kernel tree is accepted as it is, and every malformed tree gives
//! the error naming its file (and line), never a panic.

use std::fs;
use std::path::{Path, PathBuf};

use hsa_p2p_core::node::HeapType;
use hsa_p2p_core::topology::Topology;
use hsa_p2p_runtime::predict::predict;
use hsa_p2p_runtime::spec::Spec;
use hsa_p2p_runtime::sysfs::{read_topology, read_topology_with, write_tree, FromSysfs, ReadError};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn malformed(name: &str) -> ReadError {
    let root = fixtures().join("malformed").join(name);
    match read_topology(&root) {
        Ok(_) => panic!("{name}: a malformed tree was accepted"),
        Err(error) => error,
    }
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn every_predicted_fixture_reads_back_as_the_prediction_of_its_spec() {
    let specs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../topologies");
    let mut checked = 0;
    for entry in fs::read_dir(&specs).unwrap() {
        let spec_path = entry.unwrap().path();
        let name = spec_path.file_stem().unwrap().to_str().unwrap().to_string();
        let tree = fixtures().join("predicted").join(&name);
        assert!(
            tree.is_dir(),
            "no fixture for {name}: run `UPDATE_PREDICTED=1 cargo nextest run -p hsa-p2p-runtime rendered_sysfs_trees` ({}, {})",
            spec_path.display(),
            tree.display()
        );
        let expected = predict(&Spec::load(&spec_path).unwrap()).unwrap().topology;
        let read = Topology::from_sysfs(&tree).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            read,
            expected,
            "fixture {name} is stale: regenerate it with `UPDATE_PREDICTED=1 cargo nextest run -p hsa-p2p-runtime rendered_sysfs_trees` ({}, {})",
            spec_path.display(),
            tree.display()
        );
        checked += 1;
    }
    assert!(checked >= 6);
}

#[test]
fn old_kernel_tree_without_p2p_links_count_or_sdma_mask_is_read() {
    let topology = read_topology(&fixtures().join("old-kernel")).unwrap();
    assert_eq!(topology.generation_id, 2);
    assert_eq!(topology.nodes.len(), 3);
    for gpu in topology.nodes.iter().filter(|node| node.is_gpu()) {
        assert!(!gpu.reports_p2p_links);
        assert!(gpu.p2p_links.is_empty());
        assert_eq!(gpu.io_links.len(), 1);
        assert_eq!(gpu.io_links[0].recommended_sdma_engine_id_mask, 0);
        assert_eq!(gpu.io_links[0].max_bandwidth, 16000);
        assert_eq!(gpu.mem_banks[0].heap_type, HeapType::FrameBufferPrivate);
        assert_eq!(gpu.name, "vega20");
        // Keys the model does not know (fw_version, capability, ...) are ignored; known ones kept.
        assert_eq!(gpu.properties.gfx_target_version, 90006);
    }
    assert_eq!(topology.node(2).unwrap().properties.location_id, 0x4300);
    assert_eq!(
        topology.node(1).unwrap().properties.unique_id,
        0x1a2b_3c4d_5e6f_7081
    );
}

#[test]
fn missing_properties_file_is_named() {
    let error = malformed("missing-properties");
    assert!(matches!(error, ReadError::MissingFile { .. }), "{error:?}");
    assert!(
        error.to_string().contains("nodes/1/properties: missing"),
        "{error}"
    );
}

#[test]
fn non_numeric_value_is_reported_with_file_and_line() {
    let error = malformed("non-numeric-value");
    assert!(matches!(error, ReadError::Parse { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("nodes/2/io_links/0/properties:6: value is not an unsigned decimal"),
        "{message}"
    );
}

#[test]
fn dangling_node_to_is_reported() {
    let error = malformed("dangling-node-to");
    assert!(
        matches!(
            error,
            ReadError::DanglingLink {
                node_to: 7,
                nodes: 3,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("nodes/2/p2p_links/0/properties"),
        "{error}"
    );
}

#[test]
fn count_that_disagrees_with_the_directories_is_reported() {
    let error = malformed("count-mismatch");
    assert!(
        matches!(
            error,
            ReadError::CountMismatch {
                key: "io_links_count",
                declared: 3,
                found: 1,
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn non_numeric_generation_id_is_a_parse_error_not_a_retry_loop() {
    let error = malformed("bad-generation-id");
    assert!(matches!(error, ReadError::Parse { .. }), "{error:?}");
    assert!(error.to_string().contains("generation_id:1:"), "{error}");
}

#[test]
fn link_in_the_wrong_node_directory_is_reported() {
    let error = malformed("misplaced-link");
    assert!(
        matches!(
            error,
            ReadError::MisplacedLink {
                node: 2,
                node_from: 1,
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn gap_in_link_numbering_is_reported() {
    let error = malformed("numbering-gap");
    assert!(matches!(error, ReadError::NumberingGap { .. }), "{error:?}");
    assert!(error.to_string().contains("found [0, 2]"), "{error}");
}

#[test]
fn duplicate_key_is_reported_with_its_line() {
    let error = malformed("duplicate-key");
    assert!(
        error
            .to_string()
            .contains("io_links/0/properties:7: key appears more than once"),
        "{error}"
    );
}

#[test]
fn directory_that_is_no_topology_says_so() {
    let error = malformed("not-a-topology");
    assert!(matches!(error, ReadError::NotATopology { .. }), "{error:?}");
    let missing = read_topology(Path::new("/nonexistent/hsa-p2p/topology")).unwrap_err();
    assert!(matches!(missing, ReadError::NotATopology { .. }));
}

#[test]
fn p2p_link_duplicating_an_io_link_is_reported() {
    let scratch = tempfile::tempdir().unwrap();
    copy_tree(&fixtures().join("predicted/xgmi-hive-4"), scratch.path());
    // Node 1's io_links include XGMI links to its hive peers; add a p2p link to one of them.
    let node = scratch.path().join("nodes/1");
    let xgmi = (0..8)
        .map(|i| node.join(format!("io_links/{i}/properties")))
        .find(|path| fs::read_to_string(path).is_ok_and(|text| text.starts_with("type 11")))
        .expect("an XGMI io_link");
    fs::create_dir_all(node.join("p2p_links/0")).unwrap();
    fs::copy(&xgmi, node.join("p2p_links/0/properties")).unwrap();
    let properties = fs::read_to_string(node.join("properties")).unwrap();
    let properties = properties.replace("p2p_links_count 0", "p2p_links_count 1");
    fs::write(node.join("properties"), properties).unwrap();
    let error = read_topology(scratch.path()).unwrap_err();
    assert!(
        matches!(error, ReadError::DuplicatesIoLink { .. }),
        "{error:?}"
    );
}

#[test]
fn generation_change_during_the_read_makes_the_reader_read_again() {
    let scratch = tempfile::tempdir().unwrap();
    copy_tree(
        &fixtures().join("predicted/mixed-three-gpus"),
        scratch.path(),
    );
    let expected_after_removal = {
        let mut topology = read_topology(scratch.path()).unwrap();
        topology.remove_node(3);
        topology
    };
    // The first snapshot sees three GPUs; then GPU node 3 goes away (as a hot-unplug would
    // rewrite the tree) and the generation moves: the reader must return the new tree.
    let mut snapshots = 0;
    let topology = read_topology_with(scratch.path(), || {
        snapshots += 1;
        if snapshots == 1 {
            write_tree(scratch.path(), expected_after_removal.render_sysfs()).unwrap();
            fs::remove_dir_all(scratch.path().join("nodes/3")).unwrap();
            for node in 0..3 {
                let dir = scratch.path().join(format!("nodes/{node}"));
                let keep = expected_after_removal.node(node).unwrap();
                for (kind, count) in [
                    ("io_links", keep.io_links.len()),
                    ("p2p_links", keep.p2p_links.len()),
                    ("p2p_denials", keep.p2p_denials.len()),
                ] {
                    for stale in count..8 {
                        let _ = fs::remove_dir_all(dir.join(format!("{kind}/{stale}")));
                    }
                }
            }
        }
    })
    .unwrap();
    assert_eq!(snapshots, 2);
    assert_eq!(topology, expected_after_removal);
}

#[test]
fn topology_that_never_settles_is_reported_as_unstable() {
    let scratch = tempfile::tempdir().unwrap();
    copy_tree(&fixtures().join("predicted/same-switch"), scratch.path());
    let mut generation = 1;
    let error = read_topology_with(scratch.path(), || {
        generation += 1;
        fs::write(
            scratch.path().join("generation_id"),
            format!("{generation}\n"),
        )
        .unwrap();
    })
    .unwrap_err();
    assert!(
        matches!(error, ReadError::Unstable { attempts: 5, .. }),
        "{error:?}"
    );
}
