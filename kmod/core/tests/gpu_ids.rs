//! `gpu_id`s: unique, never 0, independent of bind order when hashes collide, and kept by a
//! GPU that is unbound and bound again (issue 10, point 7).

mod common;

use hsa_p2p_core::facts::{GpuFacts, PciAddress};
use hsa_p2p_core::gpu_id::{gpu_id, gpu_id_hash, KnownGpuId};

fn gpu(bus: u8, unique_id: u64) -> GpuFacts {
    GpuFacts {
        pci: PciAddress {
            domain: 0,
            bus,
            device: 0,
            function: 0,
        },
        unique_id,
        ..common::sample_gpu()
    }
}

/// Two GPUs whose hashes collide (found by search: the hash is not ABI, the test must not
/// depend on its constants).
fn colliding_pair() -> (GpuFacts, GpuFacts) {
    let first = gpu(3, 0);
    let target = gpu_id_hash(&first);
    let unique_id = (1..)
        .find(|&unique_id| gpu_id_hash(&gpu(4, unique_id)) == target)
        .expect("a 16-bit hash collides within 2^64 tries");
    (first, gpu(4, unique_id))
}

fn ids_of(gpus: &[GpuFacts], known: &[KnownGpuId]) -> Vec<u32> {
    (0..gpus.len())
        .map(|index| gpu_id(gpus, known, index))
        .collect()
}

fn known(gpu: &GpuFacts, gpu_id: u32) -> KnownGpuId {
    KnownGpuId {
        pci: gpu.pci,
        unique_id: gpu.unique_id,
        gpu_id,
    }
}

#[test]
fn colliding_ids_do_not_depend_on_bind_order() {
    let (a, b) = colliding_pair();
    let ab = ids_of(&[a, b], &[]);
    let ba = ids_of(&[b, a], &[]);
    assert_ne!(ab[0], ab[1]);
    assert_eq!((ab[0], ab[1]), (ba[1], ba[0]));
}

#[test]
fn a_known_gpu_keeps_its_id_and_reserves_it_while_unbound() {
    let (a, b) = colliding_pair();
    let ids = ids_of(&[a, b], &[]);
    let records = [known(&a, ids[0]), known(&b, ids[1])];
    // Either one alone keeps its id (the other's stays reserved), and both come back with
    // theirs in any bind order.
    assert_eq!(ids_of(&[b], &records), vec![ids[1]]);
    assert_eq!(ids_of(&[a], &records), vec![ids[0]]);
    assert_eq!(ids_of(&[b, a], &records), vec![ids[1], ids[0]]);
    // A newcomer with the same hash does not take a reserved id.
    let with_newcomer = ids_of(&[b, a], &records[1..]);
    assert_eq!(with_newcomer[0], ids[1]);
    assert_ne!(with_newcomer[1], ids[1]);
}

#[test]
fn ids_are_unique_and_never_zero() {
    let gpus: Vec<GpuFacts> = (0..40).map(|bus| gpu(bus, 7)).collect();
    let ids = ids_of(&gpus, &[]);
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len());
    assert!(ids.iter().all(|&id| id != 0 && id <= 0xffff));
}
