//! What the tests that attack the module (`isolation`) need from the machine under test beyond
//! the device: unbinding and rebinding GPUs ([`pci_bind`], shared with the `device` suite and
//! its probes), the kernel log's checker reports ([`kernel_log`], by the markers of
//! [`kernel_report`], which the host's console check shares) and debugfs, where the
//! module's fault points are ([`debugfs`], [`fault_point`]), and the IOMMU's page tables
//! ([`iommu_pages`]). Whether a mapping still shows VRAM is asked of a probe in another process
//! (`crate::device::probe`). The `hotplug` suite asks the host of an emulated machine to remove
//! and add GPUs over the [`host_channel`], and finds the hot-pluggable slots in sysfs
//! ([`slots`]).

pub mod debugfs;
pub mod fault_point;
pub mod host_channel;
pub mod iommu_pages;
pub mod kernel_log;
pub mod kernel_report;
pub mod pci_bind;
pub mod slots;
