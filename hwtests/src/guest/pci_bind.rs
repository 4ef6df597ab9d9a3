//! Unbinding a GPU from the `hsa_p2p` driver through sysfs, and binding it back; and putting
//! the GPUs back in their bind order (which is the KFD node order) afterwards.

use std::path::{Path, PathBuf};

/// The driver's sysfs directory below a root (`/`, or a fixture).
pub fn driver_dir(root: &Path) -> PathBuf {
    root.join("sys/bus/pci/drivers/hsa_p2p")
}

/// A GPU unbound from the driver; bound again on drop (or with [`Unbound::rebind`]).
#[derive(Debug)]
pub struct Unbound {
    driver: PathBuf,
    address: String,
    bound: bool,
}

impl Unbound {
    /// Unbinds the GPU at PCI `address` (`0000:03:00.0`).
    pub fn unbind(root: &Path, address: &str) -> Result<Self, String> {
        let driver = driver_dir(root);
        std::fs::write(driver.join("unbind"), address)
            .map_err(|error| format!("cannot unbind {address}: {error}"))?;
        Ok(Unbound {
            driver,
            address: address.to_string(),
            bound: false,
        })
    }

    /// Binds the GPU again.
    pub fn rebind(mut self) -> Result<(), String> {
        self.bind()
    }

    fn bind(&mut self) -> Result<(), String> {
        if self.bound {
            return Ok(());
        }
        self.bound = true;
        std::fs::write(self.driver.join("bind"), &self.address)
            .map_err(|error| format!("cannot bind {} again: {error}", self.address))
    }
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.bind();
    }
}

/// Binds the GPUs again in `order` (PCI addresses, the original bind order) when `current`
/// (the bind order now) differs: a GPU rebound by a test comes last, which would change the
/// node numbering for whatever runs next.
pub fn restore_bind_order(root: &Path, order: &[String], current: &[String]) -> Result<(), String> {
    if order == current {
        return Ok(());
    }
    let driver = driver_dir(root);
    for address in current {
        std::fs::write(driver.join("unbind"), address)
            .map_err(|error| format!("cannot unbind {address}: {error}"))?;
    }
    for address in order {
        std::fs::write(driver.join("bind"), address)
            .map_err(|error| format!("cannot bind {address} again: {error}"))?;
    }
    Ok(())
}
