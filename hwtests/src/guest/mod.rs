//! What the tests that attack the module need from the machine under test: a probe that tells
//! whether a mapped address still shows memory ([`sigbus`]), unbinding and rebinding a GPU
//! ([`pci_bind`]) and the kernel log's checker reports ([`kernel_log`]).

pub mod kernel_log;
pub mod pci_bind;
pub mod sigbus;
