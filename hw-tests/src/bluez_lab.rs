//! The BlueZ lab (feature `bluez`): each node is one adapter of the local bluetoothd, e.g. the `btvirt -l3`
//! controllers of the virtual lab or the USB dongles of a device-lab host.

use std::time::Duration;

use pollen_ble::bluez::bluer::Session;
use pollen_ble::bluez::BluezDriver;

use pollen_ble::driver::LinkId;

use crate::lab::{Lab, LabCaps, LinkRadio, MtuCap, MtuObserver, NodeSpec};
use crate::LabError;

/// Adapters of the local BlueZ as lab nodes.
pub struct BluezLab {
    session: Session,
    adapters: Vec<String>,
    relay_plan: [Vec<usize>; 3],
    /// The MTU seen by the driver last handed out per node, for [`Lab::link_radio`].
    observers: Vec<Option<MtuObserver>>,
}

fn setup(e: impl std::fmt::Display) -> LabError {
    LabError::Setup(e.to_string())
}

impl BluezLab {
    /// Uses `adapters` in order as nodes 0, 1, 2 …; with none given, every adapter BlueZ has, sorted by name.
    pub async fn new(adapters: &[String]) -> Result<Self, LabError> {
        let session = Session::new().await.map_err(setup)?;
        let mut names =
            if adapters.is_empty() { session.adapter_names().await.map_err(setup)? } else { adapters.to_vec() };
        names.sort();
        if names.len() < 2 {
            return Err(LabError::Setup(format!("the BlueZ lab needs at least 2 adapters, found {names:?}")));
        }
        Ok(Self { session, adapters: names, relay_plan: crate::lab::default_relay_plan(), observers: Vec::new() })
    }

    /// Radios of the relay chain's A, B and C; see [`Lab::relay_plan`].
    pub fn with_relay_plan(mut self, plan: [Vec<usize>; 3]) -> Self {
        self.relay_plan = plan;
        self
    }

    async fn power(&self, index: usize, on: bool) -> Result<(), LabError> {
        let name = self.adapters.get(index).ok_or_else(|| LabError::Setup(format!("no adapter for node {index}")))?;
        self.session.adapter(name).map_err(setup)?.set_powered(on).await.map_err(setup)
    }
}

impl Lab for BluezLab {
    type Driver = MtuCap<BluezDriver>;

    fn name(&self) -> &str {
        "bluez"
    }

    fn caps(&self) -> LabCaps {
        LabCaps { nodes: self.adapters.len(), l2cap: true, node0_central_only: false }
    }

    /// Emulated controllers under QEMU TCG run far slower than a radio.
    fn patience(&self) -> u32 {
        10
    }

    /// Forgets every device and power-cycles every adapter, so no connection or cache leaks between scenarios.
    async fn reset(&mut self) -> Result<(), LabError> {
        self.observers.clear();
        for name in &self.adapters {
            let adapter = self.session.adapter(name).map_err(setup)?;
            for address in adapter.device_addresses().await.map_err(setup)? {
                let _ = adapter.remove_device(address).await;
            }
            adapter.set_powered(false).await.map_err(setup)?;
            adapter.set_powered(true).await.map_err(setup)?;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok(())
    }

    async fn driver(&mut self, index: usize, spec: &NodeSpec) -> Result<Self::Driver, LabError> {
        let name = self.adapters.get(index).ok_or_else(|| LabError::Setup(format!("no adapter for node {index}")))?;
        let driver = BluezDriver::open(Some(name)).await.map_err(setup)?;
        let driver = MtuCap::new(driver, spec.max_att_mtu);
        if self.observers.len() <= index {
            self.observers.resize(index + 1, None);
        }
        self.observers[index] = Some(driver.observer());
        Ok(driver)
    }

    /// Switches the adapter off: every link drops at once, as when a user turns Bluetooth off.
    async fn interrupt(&mut self, index: usize) -> Result<(), LabError> {
        self.power(index, false).await
    }

    async fn restore(&mut self, index: usize) -> Result<(), LabError> {
        self.power(index, true).await
    }

    fn relay_plan(&self) -> [Vec<usize>; 3] {
        self.relay_plan.clone()
    }

    /// The ATT MTU the session was given. BlueZ does not expose a connection's PHY over D-Bus, so that stays unknown.
    fn link_radio(&self, index: usize, link: LinkId) -> LinkRadio {
        let att_mtu = self.observers.get(index).and_then(Option::as_ref).and_then(|o| o.att_mtu(link));
        LinkRadio { att_mtu, phy: None, params: None }
    }
}
