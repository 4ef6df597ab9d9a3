//! What the tests that attack the module need from the machine under test: a probe that tells
//! whether a mapped address still shows memory ([`sigbus`]), unbinding and rebinding a GPU
//! ([`pci_bind`]), the kernel log's checker reports ([`kernel_log`]) and debugfs, where the
//! module's fault points are ([`debugfs`]).

pub mod debugfs;
pub mod kernel_log;
pub mod pci_bind;
pub mod sigbus;
