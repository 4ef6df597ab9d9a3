//! Exports for the schedulers that place jobs on many machines: Slurm's `gres.conf` lines and a
//! Kubernetes node-feature-discovery feature file, both from the same views as `p2pctl matrix`.

mod groups;
mod nfd;
mod slurm;

pub use groups::p2p_groups;
pub use nfd::{nfd_features, NFD_PREFIX};
pub use slurm::{gres_lines, slurm_type};
