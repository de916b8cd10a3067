//! Labs: where the suite's nodes get their BLE drivers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use pollen_ble::driver::{BleDriver, LinkId};
use pollen_ble::sim::{MediumConfig, NodeConfig, SimDriver, SimMedium};
use pollen_radio_model::ble::{LinkParams, Phy};
use thiserror::Error;

use crate::LabError;

/// What a scenario asks of one node's radio.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeSpec {
    /// Cap on the ATT MTU this node negotiates.
    pub max_att_mtu: Option<u16>,
    /// Whether this node must be able to use L2CAP CoC.
    pub l2cap: bool,
}

/// What a lab can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabCaps {
    /// Nodes available.
    pub nodes: usize,
    /// L2CAP CoC works between its nodes.
    pub l2cap: bool,
    /// Node 0 can only be central (btleplug); scenarios needing it to advertise are skipped.
    pub node0_central_only: bool,
}

/// What a lab knows about the radio side of one link. Fields the lab cannot observe are `None` (a BlueZ host does
/// not tell an application which PHY a connection uses, so it reports none rather than a guess).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LinkRadio {
    /// The ATT MTU the link session works with.
    pub att_mtu: Option<u16>,
    /// The PHY the connection runs on.
    pub phy: Option<Phy>,
    /// Every parameter of the link, when the lab models it (the sim medium), for capacity figures.
    pub params: Option<LinkParams>,
}

/// A source of BLE drivers plus the ability to break and restore radio links.
// Scenarios run on a current-thread runtime, so the futures need not be Send.
#[allow(async_fn_in_trait)]
pub trait Lab {
    /// The driver type.
    type Driver: BleDriver + Unpin;

    /// Short name for reports (`sim`, `bluez`, `btleplug`).
    fn name(&self) -> &str;

    /// What this lab can do.
    fn caps(&self) -> LabCaps;

    /// How much slower than the sim medium this lab's timing is (timeouts are scaled by it).
    fn patience(&self) -> u32;

    /// Clears all state between scenarios.
    async fn reset(&mut self) -> Result<(), LabError>;

    /// A driver for node `index` configured per `spec`.
    async fn driver(&mut self, index: usize, spec: &NodeSpec) -> Result<Self::Driver, LabError>;

    /// Breaks every radio link of node `index` and keeps it unreachable until [`Lab::restore`].
    async fn interrupt(&mut self, index: usize) -> Result<(), LabError>;

    /// Makes node `index` reachable again.
    async fn restore(&mut self, index: usize) -> Result<(), LabError>;

    /// Which radios the relay chain's nodes A, B and C use. A and C must not hear each other; B hears both, with
    /// its first radio facing A and its last facing C.
    fn relay_plan(&self) -> [Vec<usize>; 3] {
        default_relay_plan()
    }

    /// Trouble in the lab itself that a scenario must not hide, such as the Bluetooth daemon having died (and been
    /// restarted) while the scenario ran. Checked after every scenario; a problem turns its outcome into a FAIL.
    async fn health(&mut self) -> Option<String> {
        None
    }

    /// What the lab can tell about `link`, a link of the driver it last handed out for node `index`.
    fn link_radio(&self, index: usize, link: LinkId) -> LinkRadio {
        let _ = (index, link);
        LinkRadio::default()
    }
}

/// One radio per node: A = 0, B = 1, C = 2.
pub fn default_relay_plan() -> [Vec<usize>; 3] {
    [vec![0], vec![1], vec![2]]
}

/// A relay plan that does not parse.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("relay plan {plan:?}: {problem}")]
pub struct RelayPlanError {
    /// The text given.
    pub plan: String,
    /// What is wrong with it.
    pub problem: String,
}

/// Parses a relay plan written `A/B/C`, each a comma-separated list of radio indices: `0/1,2/3` gives the relay
/// (B) radios 1 and 2.
pub fn parse_relay_plan(s: &str) -> Result<[Vec<usize>; 3], RelayPlanError> {
    let error = |problem: String| RelayPlanError { plan: s.to_string(), problem };
    let parts: Vec<Vec<usize>> = s
        .split('/')
        .map(|p| {
            if p.trim().is_empty() {
                return Err(error("every node needs at least one radio".to_string()));
            }
            p.split(',')
                .map(|n| n.trim().parse::<usize>().map_err(|e| error(format!("radio {:?}: {e}", n.trim()))))
                .collect()
        })
        .collect::<Result<_, _>>()?;
    let plan: [Vec<usize>; 3] =
        parts.try_into().map_err(|_| error("expected three groups of radios: A/B/C".to_string()))?;
    Ok(plan)
}

/// The simulated medium: nodes 30 m apart on a line, so neighbours hear each other and nodes two apart do not.
pub struct SimLab {
    medium: SimMedium,
    devices: Vec<pollen_ble::driver::DeviceId>,
    config: MediumConfig,
    relay_plan: [Vec<usize>; 3],
}

/// Node spacing: within BLE range (≈ 53 m on 1M with the default path loss), twice it out of range.
pub const SIM_SPACING_M: f64 = 30.0;

impl SimLab {
    /// A lab on a medium with `config`. Must be called inside a tokio runtime.
    pub fn new(config: MediumConfig) -> Self {
        Self { medium: SimMedium::new(config.clone()), devices: Vec::new(), config, relay_plan: default_relay_plan() }
    }

    /// Uses `plan` for the relay chain, e.g. `[[0], [1, 2], [3]]` to give the relay one radio toward each side as
    /// the virtual lab must.
    pub fn with_relay_plan(mut self, plan: [Vec<usize>; 3]) -> Self {
        self.relay_plan = plan;
        self
    }

    /// The medium, for scenario-independent inspection.
    pub fn medium(&self) -> &SimMedium {
        &self.medium
    }
}

impl Lab for SimLab {
    type Driver = SimDriver;

    fn name(&self) -> &str {
        "sim"
    }

    fn caps(&self) -> LabCaps {
        LabCaps { nodes: 8, l2cap: true, node0_central_only: false }
    }

    fn patience(&self) -> u32 {
        1
    }

    async fn reset(&mut self) -> Result<(), LabError> {
        self.medium = SimMedium::new(self.config.clone());
        self.devices.clear();
        Ok(())
    }

    async fn driver(&mut self, index: usize, spec: &NodeSpec) -> Result<SimDriver, LabError> {
        let mut node = NodeConfig::android((index as f64 * SIM_SPACING_M, 0.0));
        if let Some(mtu) = spec.max_att_mtu {
            node.profile.max_att_mtu = mtu;
        }
        node.profile.l2cap = spec.l2cap;
        let driver = self.medium.add_node(node).map_err(|e| LabError::Setup(e.to_string()))?;
        if self.devices.len() <= index {
            self.devices.resize(index + 1, driver.device_id());
        }
        self.devices[index] = driver.device_id();
        Ok(driver)
    }

    async fn interrupt(&mut self, index: usize) -> Result<(), LabError> {
        self.set_walls(index, true)
    }

    async fn restore(&mut self, index: usize) -> Result<(), LabError> {
        self.set_walls(index, false)
    }

    fn relay_plan(&self) -> [Vec<usize>; 3] {
        self.relay_plan.clone()
    }

    /// Link ids are unique across the whole medium, so `index` is not needed.
    fn link_radio(&self, _index: usize, link: LinkId) -> LinkRadio {
        match self.medium.link_params(link) {
            Some(p) => LinkRadio { att_mtu: Some(p.att_mtu()), phy: Some(p.phy()), params: Some(p) },
            None => LinkRadio::default(),
        }
    }
}

impl SimLab {
    fn set_walls(&mut self, index: usize, blocked: bool) -> Result<(), LabError> {
        let me = *self.devices.get(index).ok_or_else(|| LabError::Setup(format!("no node {index}")))?;
        for &other in self.devices.iter().filter(|d| **d != me) {
            self.medium.set_blocked(me, other, blocked);
        }
        Ok(())
    }
}

/// Scales a sim-medium timeout by the lab's patience.
pub fn scaled(lab: &impl Lab, base: Duration) -> Duration {
    base * lab.patience()
}

/// Wraps a driver so that it reports at most `cap` as the ATT MTU, as a platform with a smaller MTU would. The link
/// session must then size every write to the smaller of the two sides' views.
pub struct MtuCap<D> {
    inner: D,
    cap: Option<u16>,
    seen: MtuObserver,
}

/// The ATT MTU an [`MtuCap`] last reported per link (after the cap), i.e. what the link session works with.
#[derive(Debug, Clone, Default)]
pub struct MtuObserver(Arc<Mutex<HashMap<LinkId, u16>>>);

impl MtuObserver {
    /// The ATT MTU last reported for `link`.
    pub fn att_mtu(&self, link: LinkId) -> Option<u16> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).get(&link).copied()
    }

    fn record(&self, link: LinkId, mtu: u16) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).insert(link, mtu);
    }
}

impl<D> MtuCap<D> {
    /// `cap = None` passes everything through.
    pub fn new(inner: D, cap: Option<u16>) -> Self {
        Self { inner, cap, seen: MtuObserver::default() }
    }

    /// A handle that reads the MTU this wrapper reported per link, also after the driver moved into a transport.
    pub fn observer(&self) -> MtuObserver {
        self.seen.clone()
    }

    fn clamp(&self, mtu: u16) -> u16 {
        self.cap.map_or(mtu, |c| mtu.min(c))
    }
}

impl<D: BleDriver> BleDriver for MtuCap<D> {
    fn capabilities(&self) -> pollen_ble::driver::Capabilities {
        self.inner.capabilities()
    }
    fn start_advertising(
        &mut self,
        a: &pollen_ble::driver::Advertisement,
    ) -> Result<(), pollen_ble::driver::DriverError> {
        self.inner.start_advertising(a)
    }
    fn stop_advertising(&mut self) -> Result<(), pollen_ble::driver::DriverError> {
        self.inner.stop_advertising()
    }
    fn start_scan(&mut self, f: &pollen_ble::driver::ScanFilter) -> Result<(), pollen_ble::driver::DriverError> {
        self.inner.start_scan(f)
    }
    fn stop_scan(&mut self) -> Result<(), pollen_ble::driver::DriverError> {
        self.inner.stop_scan()
    }
    fn connect(&mut self, d: pollen_ble::driver::DeviceId) -> Result<(), pollen_ble::driver::DriverError> {
        self.inner.connect(d)
    }
    fn listen_l2cap(&mut self) -> Result<u16, pollen_ble::driver::DriverError> {
        self.inner.listen_l2cap()
    }
    fn open_l2cap(&mut self, l: pollen_ble::driver::LinkId, psm: u16) -> Result<(), pollen_ble::driver::DriverError> {
        self.inner.open_l2cap(l, psm)
    }
    fn send(
        &mut self,
        l: pollen_ble::driver::LinkId,
        b: pollen_ble::driver::Bearer,
        data: &[u8],
    ) -> Result<(), pollen_ble::driver::SendError> {
        self.inner.send(l, b, data)
    }
    fn disconnect(&mut self, l: pollen_ble::driver::LinkId) {
        self.inner.disconnect(l)
    }
    fn poll_event(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<pollen_ble::driver::DriverEvent> {
        use pollen_ble::driver::DriverEvent;
        self.inner.poll_event(cx).map(|event| match event {
            DriverEvent::Connected { link, device, role, att_mtu } => {
                let att_mtu = self.clamp(att_mtu);
                self.seen.record(link, att_mtu);
                DriverEvent::Connected { link, device, role, att_mtu }
            }
            DriverEvent::MtuChanged { link, att_mtu } => {
                let att_mtu = self.clamp(att_mtu);
                self.seen.record(link, att_mtu);
                DriverEvent::MtuChanged { link, att_mtu }
            }
            other => other,
        })
    }
}
