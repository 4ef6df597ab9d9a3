//! Unbinding a GPU from the `hsa_p2p` driver through sysfs, and binding it back; and putting
//! the GPUs back in their bind order (which is the KFD node order) afterwards. `driver` is the
//! driver's sysfs directory ([`crate::Context::driver_path`]).

use std::path::{Path, PathBuf};

/// Unbinds the device at PCI `address` (`0000:03:00.0`) from `driver`.
pub fn unbind(driver: &Path, address: &str) -> Result<(), String> {
    std::fs::write(driver.join("unbind"), address)
        .map_err(|error| format!("cannot unbind {address}: {error}"))
}

/// The PCI devices bound to `driver` (its `DDDD:BB:DD.F` entries), sorted.
pub fn bound(driver: &Path) -> Vec<String> {
    let mut devices: Vec<String> = std::fs::read_dir(driver)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.len() == 12 && name.as_bytes()[4] == b':' && name.contains('.'))
        .collect();
    devices.sort();
    devices
}

/// Binds the device at PCI `address` to `driver`.
pub fn bind(driver: &Path, address: &str) -> Result<(), String> {
    std::fs::write(driver.join("bind"), address)
        .map_err(|error| format!("cannot bind {address}: {error}"))
}

/// A GPU unbound from the driver; bound again on drop (or with [`Unbound::rebind`]).
#[derive(Debug)]
pub struct Unbound {
    driver: PathBuf,
    address: String,
    bound: bool,
}

impl Unbound {
    /// Unbinds the GPU at PCI `address`.
    pub fn unbind(driver: &Path, address: &str) -> Result<Self, String> {
        unbind(driver, address)?;
        Ok(Unbound {
            driver: driver.to_owned(),
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
        bind(&self.driver, &self.address)
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
pub fn restore_bind_order(
    driver: &Path,
    order: &[String],
    current: &[String],
) -> Result<(), String> {
    if order == current {
        return Ok(());
    }
    for address in current {
        unbind(driver, address)?;
    }
    for address in order {
        bind(driver, address)?;
    }
    Ok(())
}
