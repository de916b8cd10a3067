//! The btleplug lab (feature `btleplug`): node 0 is a central-only [`BtleplugDriver`] on one BlueZ adapter, every
//! other node a [`BluezDriver`] on the remaining adapters. On Linux btleplug also goes through BlueZ, so this runs in
//! the virtual lab with btleplug dialing Pollen's own BlueZ peripheral.
//!
//! Node 0 can neither advertise nor use L2CAP, so the suite skips the scenarios that need it to (simultaneous dial,
//! the relay chain, the L2CAP transfer) and says why.

use std::task::{Context, Poll};

use pollen_ble::bluez::bluer::Session;
use pollen_ble::bluez::BluezDriver;
use pollen_ble::btleplug::btleplug::platform::Manager;
use pollen_ble::btleplug::{find_adapter, BtleplugDriver};
use pollen_ble::driver::{
    Advertisement, Bearer, BleDriver, Capabilities, DeviceId, DriverError, DriverEvent, LinkId, ScanFilter, SendError,
};

use crate::bluez_lab::BluezLab;
use crate::lab::{Lab, LabCaps, MtuCap, NodeSpec};
use crate::LabError;

fn setup(e: impl std::fmt::Display) -> LabError {
    LabError::Setup(e.to_string())
}

/// A node's driver in this lab: btleplug for node 0, BlueZ for the others.
pub enum LabDriver {
    /// Node 0, the central-only desktop backend.
    Btleplug(MtuCap<BtleplugDriver>),
    /// Every other node.
    Bluez(MtuCap<BluezDriver>),
}

macro_rules! each {
    ($self:ident, $d:ident => $e:expr) => {
        match $self {
            LabDriver::Btleplug($d) => $e,
            LabDriver::Bluez($d) => $e,
        }
    };
}

impl BleDriver for LabDriver {
    fn capabilities(&self) -> Capabilities {
        each!(self, d => d.capabilities())
    }
    fn start_advertising(&mut self, a: &Advertisement) -> Result<(), DriverError> {
        each!(self, d => d.start_advertising(a))
    }
    fn stop_advertising(&mut self) -> Result<(), DriverError> {
        each!(self, d => d.stop_advertising())
    }
    fn start_scan(&mut self, f: &ScanFilter) -> Result<(), DriverError> {
        each!(self, d => d.start_scan(f))
    }
    fn stop_scan(&mut self) -> Result<(), DriverError> {
        each!(self, d => d.stop_scan())
    }
    fn connect(&mut self, device: DeviceId) -> Result<(), DriverError> {
        each!(self, d => d.connect(device))
    }
    fn listen_l2cap(&mut self) -> Result<u16, DriverError> {
        each!(self, d => d.listen_l2cap())
    }
    fn open_l2cap(&mut self, link: LinkId, psm: u16) -> Result<(), DriverError> {
        each!(self, d => d.open_l2cap(link, psm))
    }
    fn send(&mut self, link: LinkId, bearer: Bearer, data: &[u8]) -> Result<(), SendError> {
        each!(self, d => d.send(link, bearer, data))
    }
    fn disconnect(&mut self, link: LinkId) {
        each!(self, d => d.disconnect(link))
    }
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<DriverEvent> {
        each!(self, d => d.poll_event(cx))
    }
}

/// Node 0 on btleplug, the rest on BlueZ; adapters, resets and radio cuts are the BlueZ lab's.
pub struct BtleplugLab {
    bluez: BluezLab,
    /// One btleplug manager (one D-Bus connection) for every node-0 driver of the run.
    manager: Manager,
    central: String,
    nodes: usize,
}

impl BtleplugLab {
    /// Uses `adapters` sorted by name as nodes 0, 1 …, node 0 being the btleplug central (with the virtual lab's
    /// `hci0,hci1`: btleplug on hci0, BlueZ on hci1); with none given, every adapter BlueZ has.
    pub async fn new(adapters: &[String]) -> Result<Self, LabError> {
        let mut names = if adapters.is_empty() {
            Session::new().await.map_err(setup)?.adapter_names().await.map_err(setup)?
        } else {
            adapters.to_vec()
        };
        names.sort();
        let bluez = BluezLab::new(&names).await?;
        let central = names.first().cloned().ok_or_else(|| LabError::Setup("no adapters".into()))?;
        let manager = Manager::new().await.map_err(setup)?;
        // Fail early, with btleplug's list of adapters, when it cannot see node 0's.
        find_adapter(&manager, Some(&central)).await.map_err(setup)?;
        Ok(Self { bluez, manager, central, nodes: names.len() })
    }
}

impl Lab for BtleplugLab {
    type Driver = LabDriver;

    fn name(&self) -> &str {
        "btleplug"
    }

    /// L2CAP is off for the whole lab: every scenario link has node 0 on one end.
    fn caps(&self) -> LabCaps {
        LabCaps { nodes: self.nodes, l2cap: false, node0_central_only: true }
    }

    fn patience(&self) -> u32 {
        self.bluez.patience()
    }

    async fn reset(&mut self) -> Result<(), LabError> {
        self.bluez.reset().await
    }

    async fn driver(&mut self, index: usize, spec: &NodeSpec) -> Result<LabDriver, LabError> {
        if index > 0 {
            return Ok(LabDriver::Bluez(self.bluez.driver(index, spec).await?));
        }
        let adapter = find_adapter(&self.manager, Some(&self.central)).await.map_err(setup)?;
        let driver = BtleplugDriver::with_adapter(adapter).await.map_err(setup)?;
        Ok(LabDriver::Btleplug(MtuCap::new(driver, spec.max_att_mtu)))
    }

    async fn interrupt(&mut self, index: usize) -> Result<(), LabError> {
        self.bluez.interrupt(index).await
    }

    async fn restore(&mut self, index: usize) -> Result<(), LabError> {
        self.bluez.restore(index).await
    }

    async fn health(&mut self) -> Option<String> {
        self.bluez.health().await
    }
}
