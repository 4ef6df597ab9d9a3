//! The host's end of the host channel (`hsa_p2p_hwtests::guest::host_channel`): a second
//! serial port (the guest's `/dev/ttyS1`) on which a guest test asks the host to remove or put
//! back a hot-pluggable GPU, carried out through QMP ([`super::qmp`]).
//!
//! Both sockets are the host's: it listens before QEMU starts and QEMU connects to them as a
//! client (`-chardev socket,path=…`), so nothing races QEMU's start.

use std::io::Write;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use hsa_p2p_hwtests::guest::host_channel::{HostReply, HostRequest};

use super::qmp::{Device, MemoryBackendFile, Qmp};

/// The guest's device for the channel (the second `-serial`).
pub const GUEST_DEVICE: &str = "/dev/ttyS1";

/// How long QEMU may take to connect to the sockets after it started.
const CONNECT: Duration = Duration::from_secs(30);

/// A hot-pluggable GPU: its PCI address in the guest and its QEMU device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HotplugSlot {
    /// `0000:03:00.0`.
    pub address: String,
    /// The device, as booted and as added back.
    pub device: Device,
    /// Its VRAM's backend, likewise.
    pub backend: MemoryBackendFile,
}

/// The listening sockets, before QEMU started.
pub struct Listening {
    channel: (UnixListener, PathBuf),
    qmp: (UnixListener, PathBuf),
    slots: Vec<HotplugSlot>,
    unplug_timeout: Duration,
}

/// The connected channel and QMP.
pub struct HostEnd {
    channel: UnixStream,
    qmp: Qmp,
    slots: Vec<HotplugSlot>,
    unplug_timeout: Duration,
}

fn listen(path: PathBuf) -> Result<(UnixListener, PathBuf)> {
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)
        .with_context(|| format!("cannot listen on {}", path.display()))?;
    listener.set_nonblocking(true)?;
    Ok((listener, path))
}

fn accept((listener, path): &(UnixListener, PathBuf)) -> Result<UnixStream> {
    let deadline = Instant::now() + CONNECT;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false)?;
                return Ok(stream);
            }
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err(anyhow!("QEMU did not connect to {}", path.display()));
                }
                thread::sleep(Duration::from_millis(20));
            }
            Err(error) => return Err(error).context(format!("accepting on {}", path.display())),
        }
    }
}

impl Listening {
    /// Listens in `dir` for a machine whose hot-pluggable GPUs are `slots`; an orderly unplug
    /// may take `unplug_timeout` (pciehp waits 5 s after the button, then the guest's driver
    /// removal runs).
    pub fn new(dir: &Path, slots: Vec<HotplugSlot>, unplug_timeout: Duration) -> Result<Self> {
        Ok(Listening {
            channel: listen(dir.join("host-channel.sock"))?,
            qmp: listen(dir.join("qmp.sock"))?,
            slots,
            unplug_timeout,
        })
    }

    /// QEMU's arguments for both sockets: the channel as the second serial port, QMP as a
    /// control monitor.
    pub fn qemu_args(&self) -> Vec<String> {
        vec![
            "-chardev".into(),
            format!("socket,id=host-channel,path={}", self.channel.1.display()),
            "-serial".into(),
            "chardev:host-channel".into(),
            "-chardev".into(),
            format!("socket,id=qmp,path={}", self.qmp.1.display()),
            "-mon".into(),
            "chardev=qmp,mode=control".into(),
        ]
    }

    /// Accepts QEMU's connections (after it started) and negotiates QMP.
    pub fn connect(self) -> Result<HostEnd> {
        let channel = accept(&self.channel)?;
        let qmp = Qmp::handshake(accept(&self.qmp)?).context("QMP")?;
        for (_, path) in [&self.channel, &self.qmp] {
            let _ = std::fs::remove_file(path);
        }
        Ok(HostEnd {
            channel,
            qmp,
            slots: self.slots,
            unplug_timeout: self.unplug_timeout,
        })
    }
}

impl HostEnd {
    /// Where the guest's request lines arrive.
    pub fn requests(&self) -> Result<UnixStream> {
        Ok(self.channel.try_clone()?)
    }

    /// Carries out the request on `line` and answers it on the channel; what happened, for
    /// the console log.
    pub fn answer(&mut self, line: &str) -> Result<String> {
        let reply = match super::protocol::read_host_request(line) {
            Ok(request) => self.carry_out(&request),
            Err(problem) => HostReply {
                ok: false,
                detail: problem,
            },
        };
        let text = super::protocol::host_reply_line(&reply);
        self.channel.write_all(text.as_bytes())?;
        Ok(format!("{} -> {}", line.trim(), text.trim()))
    }

    fn carry_out(&mut self, request: &HostRequest) -> HostReply {
        let (HostRequest::Unplug { address }
        | HostRequest::Plug { address }
        | HostRequest::Present { address }) = request;
        let Some(slot) = self.slots.iter().find(|slot| slot.address == *address) else {
            return HostReply {
                ok: false,
                detail: format!("{address} is not a hot-pluggable GPU of this machine"),
            };
        };
        let id = slot.device.id.clone();
        let done = match request {
            HostRequest::Unplug { .. } => self
                .qmp
                .device_del(&id, self.unplug_timeout)
                .map(|()| (true, format!("QEMU deleted {id}"))),
            HostRequest::Plug { .. } => self
                .qmp
                .device_add(&slot.device.clone(), &slot.backend.clone())
                .map(|()| (true, format!("QEMU added {id}"))),
            HostRequest::Present { .. } => self.qmp.has_device(&id).map(|present| {
                let verb = if present { "has" } else { "no longer has" };
                (present, format!("QEMU {verb} {id}"))
            }),
        };
        match done {
            Ok((ok, detail)) => HostReply { ok, detail },
            Err(error) => HostReply {
                ok: false,
                detail: format!("{error:#}"),
            },
        }
    }
}
