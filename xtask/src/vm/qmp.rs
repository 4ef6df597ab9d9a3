//! A small client of QEMU's machine protocol (QMP: one JSON object per line on a socket), for
//! what the host does to a running machine: remove a device (`device_del`, then wait for its
//! `DEVICE_DELETED` event), add one (`device_add`), and ask whether one is still there
//! (`qom-list` of `/machine/peripheral`, where devices with an `id` live).
//!
//! QEMU 10.0's `device_del` on a PCIe root or downstream port is always the orderly removal: it
//! presses the slot's attention button and deletes the device only once the guest powered the
//! slot off (`pcie_cap_slot_unplug_request_cb`, `pcie_cap_slot_write_config`). QMP has no
//! surprise removal; see `docs/architecture.md` for how vm-test makes one.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};

/// A QEMU device as `-device` gives it and `device_add` takes it: the same properties both ways.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// The QEMU device type (`ivshmem-plain`).
    pub driver: String,
    /// Its `id`: the name QMP knows it by.
    pub id: String,
    /// Every other property, in command-line order.
    pub properties: Vec<(String, String)>,
}

impl Device {
    /// The `-device` argument.
    pub fn qemu_arg(&self) -> String {
        let mut arg = format!("{},id={}", self.driver, self.id);
        for (key, value) in &self.properties {
            arg.push_str(&format!(",{key}={value}"));
        }
        arg
    }

    fn device_add_arguments(&self) -> BTreeMap<&str, &str> {
        let mut arguments: BTreeMap<&str, &str> = self
            .properties
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect();
        arguments.insert("driver", &self.driver);
        arguments.insert("id", &self.id);
        arguments
    }
}

/// A file-backed memory backend (a GPU's VRAM), as `-object` gives it and `object-add` takes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MemoryBackendFile {
    /// Its `id` (what a device's `memdev` names).
    pub id: String,
    /// The backing file.
    #[serde(rename = "mem-path")]
    pub mem_path: String,
    /// Bytes.
    pub size: u64,
}

/// `object-add`'s arguments for a [`MemoryBackendFile`].
#[derive(Serialize)]
struct ObjectAdd<'a> {
    #[serde(rename = "qom-type")]
    qom_type: &'static str,
    #[serde(flatten)]
    backend: &'a MemoryBackendFile,
    share: bool,
}

impl MemoryBackendFile {
    /// The `-object` argument (shared, so that the host sees what the guest writes).
    pub fn qemu_arg(&self) -> String {
        format!(
            "memory-backend-file,id={},share=on,mem-path={},size={}",
            self.id, self.mem_path, self.size
        )
    }

    fn object_add_arguments(&self) -> ObjectAdd<'_> {
        ObjectAdd {
            qom_type: "memory-backend-file",
            backend: self,
            share: true,
        }
    }
}

/// One line from QEMU: a command's `return` or `error`, or an `event`.
#[derive(Deserialize)]
struct Message<R> {
    #[serde(rename = "return")]
    value: Option<R>,
    error: Option<QmpError>,
    event: Option<String>,
    #[serde(default)]
    data: EventData,
}

#[derive(Deserialize)]
struct QmpError {
    class: String,
    desc: String,
}

#[derive(Default, Deserialize)]
struct EventData {
    device: Option<String>,
}

/// An entry of `qom-list`.
#[derive(Deserialize)]
struct QomProperty {
    name: String,
}

#[derive(Serialize)]
struct Command<'a, A> {
    execute: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    arguments: Option<A>,
}

/// A QMP connection in command mode.
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    /// `DEVICE_DELETED` events seen while waiting for something else.
    deleted: Vec<String>,
}

/// How long one command may take to answer.
const ANSWER: Duration = Duration::from_secs(30);

impl Qmp {
    /// Reads the greeting on `stream` and leaves capabilities negotiation.
    pub fn handshake(stream: UnixStream) -> Result<Self> {
        stream.set_read_timeout(Some(ANSWER))?;
        let mut qmp = Qmp {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
            deleted: Vec::new(),
        };
        qmp.line().context("no QMP greeting")?;
        qmp.execute::<(), IgnoredAny>("qmp_capabilities", None)?;
        Ok(qmp)
    }

    fn line(&mut self) -> Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            bail!("QEMU closed the QMP socket");
        }
        Ok(line)
    }

    /// Runs `command` and returns its `return` value (events before it are noted or dropped).
    fn execute<A: Serialize, R: DeserializeOwned>(
        &mut self,
        command: &str,
        arguments: Option<A>,
    ) -> Result<R> {
        let text = serde_json::to_string(&Command {
            execute: command,
            arguments,
        })?;
        writeln!(self.writer, "{text}")?;
        loop {
            let line = self
                .line()
                .with_context(|| format!("waiting for {command}"))?;
            let message: Message<R> = serde_json::from_str(&line)
                .with_context(|| format!("QEMU's answer to {command}: {line}"))?;
            if let Some(error) = message.error {
                bail!("{command}: {} ({})", error.desc, error.class);
            }
            if let Some(value) = message.value {
                return Ok(value);
            }
            self.note(&message);
        }
    }

    fn note<R>(&mut self, message: &Message<R>) {
        if message.event.as_deref() == Some("DEVICE_DELETED") {
            if let Some(device) = &message.data.device {
                self.deleted.push(device.clone());
            }
        }
    }

    /// `device_del` of `id`, then waits up to `timeout` for QEMU to have deleted it (after
    /// the guest released the slot).
    pub fn device_del(&mut self, id: &str, timeout: Duration) -> Result<()> {
        self.deleted.retain(|device| device != id);
        self.execute::<_, IgnoredAny>("device_del", Some(BTreeMap::from([("id", id)])))?;
        let deadline = Instant::now() + timeout;
        while !self.deleted.iter().any(|device| device == id) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("QEMU did not delete {id} within {timeout:?} (the guest kept the slot)");
            }
            self.reader.get_ref().set_read_timeout(Some(left))?;
            let line = self.line();
            self.reader.get_ref().set_read_timeout(Some(ANSWER))?;
            let line = line.with_context(|| format!("waiting for {id} to be deleted"))?;
            if let Ok(message) = serde_json::from_str::<Message<IgnoredAny>>(&line) {
                self.note(&message);
            }
        }
        Ok(())
    }

    /// `device_add` of `device` on a fresh `backend`: QEMU 10.0 cannot realize a device
    /// again on the RAM block of a backend a deleted device used (`qemu_ram_set_idstr`
    /// asserts), so the old backend object, unused since the device went, is deleted and
    /// added anew with the same properties (the file and its content stay).
    pub fn device_add(&mut self, device: &Device, backend: &MemoryBackendFile) -> Result<()> {
        self.execute::<_, IgnoredAny>(
            "object-del",
            Some(BTreeMap::from([("id", backend.id.as_str())])),
        )
        .with_context(|| format!("deleting the unused backend {}", backend.id))?;
        self.execute::<_, IgnoredAny>("object-add", Some(backend.object_add_arguments()))?;
        self.execute::<_, IgnoredAny>("device_add", Some(device.device_add_arguments()))
            .map(drop)
    }

    /// Whether QEMU has a device with this `id`.
    pub fn has_device(&mut self, id: &str) -> Result<bool> {
        let children: Vec<QomProperty> = self.execute(
            "qom-list",
            Some(BTreeMap::from([("path", "/machine/peripheral")])),
        )?;
        Ok(children.iter().any(|child| child.name == id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_has_the_same_properties_on_the_command_line_and_in_device_add() {
        let device = Device {
            driver: "ivshmem-plain".into(),
            id: "gpu0".into(),
            properties: vec![
                ("memdev".into(), "vram-gpu0".into()),
                ("bus".into(), "sw0.0".into()),
                ("addr".into(), "0.0".into()),
            ],
        };
        assert_eq!(
            device.qemu_arg(),
            "ivshmem-plain,id=gpu0,memdev=vram-gpu0,bus=sw0.0,addr=0.0"
        );
        assert_eq!(
            serde_json::to_string(&device.device_add_arguments()).unwrap(),
            r#"{"addr":"0.0","bus":"sw0.0","driver":"ivshmem-plain","id":"gpu0","memdev":"vram-gpu0"}"#
        );
    }

    #[test]
    fn a_backend_has_the_same_properties_in_object_add() {
        let backend = MemoryBackendFile {
            id: "vram-gpu0".into(),
            mem_path: "/dev/shm/x-gpu0".into(),
            size: 1 << 20,
        };
        assert_eq!(
            backend.qemu_arg(),
            "memory-backend-file,id=vram-gpu0,share=on,mem-path=/dev/shm/x-gpu0,size=1048576"
        );
        assert_eq!(
            serde_json::to_string(&backend.object_add_arguments()).unwrap(),
            r#"{"qom-type":"memory-backend-file","id":"vram-gpu0","mem-path":"/dev/shm/x-gpu0","size":1048576,"share":true}"#
        );
    }

    #[test]
    fn answers_and_events_are_told_apart() {
        let event: Message<IgnoredAny> = serde_json::from_str(
            r#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "DEVICE_DELETED", "data": {"device": "gpu0", "path": "/machine/peripheral/gpu0"}}"#,
        )
        .unwrap();
        assert_eq!(event.data.device.as_deref(), Some("gpu0"));
        assert!(event.value.is_none());
        let error: Message<IgnoredAny> = serde_json::from_str(
            r#"{"error": {"class": "GenericError", "desc": "Device 'gpu9' not found"}}"#,
        )
        .unwrap();
        assert_eq!(error.error.unwrap().desc, "Device 'gpu9' not found");
        let list: Message<Vec<QomProperty>> = serde_json::from_str(
            r#"{"return": [{"name": "gpu0", "type": "child<ivshmem-plain>"}]}"#,
        )
        .unwrap();
        assert_eq!(list.value.unwrap()[0].name, "gpu0");
    }
}
