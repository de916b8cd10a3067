//! The BlueZ lab (feature `bluez`): each node is one adapter of the local bluetoothd, e.g. the `btvirt -l3`
//! controllers of the virtual lab or the USB dongles of a device-lab host.

use std::path::PathBuf;
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
    /// bluetoothd's process id when the current scenario started.
    daemon: Option<u32>,
    /// Where the lab's bluetoothd supervisor records each death of the daemon (env `POLLEN_BLUETOOTHD_DEATHS`; the
    /// virtual lab sets it), and how many lines of it earlier scenarios already reported.
    deaths_log: Option<PathBuf>,
    deaths_seen: usize,
}

/// Environment variable naming the file a supervisor appends a line to whenever bluetoothd dies.
pub const DEATHS_LOG_ENV: &str = "POLLEN_BLUETOOTHD_DEATHS";

/// How long `reset` waits for bluetoothd to publish every adapter again (after a restart).
const DAEMON_WAIT: Duration = Duration::from_secs(30);

/// The process id of the running bluetoothd (the lowest, should there be several), from `/proc`.
fn bluetoothd_pid() -> Option<u32> {
    let entries = std::fs::read_dir("/proc").ok()?;
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "bluetoothd"))
        .min()
}

/// What a scenario must report about the daemon: deaths the supervisor logged since, or a changed process id.
fn daemon_problem(before: Option<u32>, now: Option<u32>, new_deaths: &[&str]) -> Option<String> {
    if !new_deaths.is_empty() {
        return Some(format!("bluetoothd died during this scenario: {}", new_deaths.join(" | ")));
    }
    match (before, now) {
        (Some(a), Some(b)) if a != b => Some(format!("bluetoothd was restarted during this scenario (pid {a} -> {b})")),
        (Some(a), None) => Some(format!("bluetoothd (pid {a}) is gone")),
        _ => None,
    }
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
        let deaths_log = std::env::var_os(DEATHS_LOG_ENV).map(PathBuf::from);
        let mut lab = Self {
            session,
            adapters: names,
            relay_plan: crate::lab::default_relay_plan(),
            observers: Vec::new(),
            daemon: bluetoothd_pid(),
            deaths_log,
            deaths_seen: 0,
        };
        // Deaths before this run (an earlier suite run in the same boot) are that run's to report.
        lab.deaths_seen = lab.read_deaths().len();
        Ok(lab)
    }

    /// Radios of the relay chain's A, B and C; see [`Lab::relay_plan`].
    pub fn with_relay_plan(mut self, plan: [Vec<usize>; 3]) -> Self {
        self.relay_plan = plan;
        self
    }

    fn read_deaths(&self) -> Vec<String> {
        let text = self.deaths_log.as_ref().and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default();
        text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect()
    }

    /// Waits until the drivers handed out since the last call have closed (their D-Bus connections linger for
    /// `SESSION_LINGER` after they are dropped).
    async fn quiesce(&mut self) {
        if !self.observers.is_empty() {
            tokio::time::sleep(pollen_ble::bluez::SESSION_LINGER + Duration::from_millis(500)).await;
        }
        self.observers.clear();
    }

    /// Waits until bluetoothd publishes every adapter of the lab (it may be coming back from a restart).
    async fn wait_for_adapters(&self) -> Result<(), LabError> {
        let deadline = tokio::time::Instant::now() + DAEMON_WAIT;
        loop {
            let names = self.session.adapter_names().await.unwrap_or_default();
            if self.adapters.iter().all(|a| names.contains(a)) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(LabError::Setup(format!(
                    "bluetoothd did not publish the adapters {:?} within {DAEMON_WAIT:?} (it has {names:?})",
                    self.adapters
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
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
    ///
    /// The previous scenario's drivers first finish closing (their D-Bus connections linger, see
    /// `SESSION_LINGER`) and every link is disconnected before its device is removed: bluetoothd 5.66 died of a
    /// double free ("double free or corruption", SIGABRT) when devices were removed while a dropped peripheral's
    /// application was still registered and a central still wrote to it.
    async fn reset(&mut self) -> Result<(), LabError> {
        self.quiesce().await;
        self.wait_for_adapters().await?;
        self.daemon = bluetoothd_pid();
        self.deaths_seen = self.read_deaths().len();
        for name in &self.adapters {
            let adapter = self.session.adapter(name).map_err(setup)?;
            for address in adapter.device_addresses().await.map_err(setup)? {
                if let Ok(device) = adapter.device(address) {
                    if device.is_connected().await.unwrap_or(false) {
                        let _ = device.disconnect().await;
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
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

    /// A bluetoothd that died during the scenario (and was restarted by the lab's supervisor) fails it: a crash is
    /// never hidden behind a retry that happened to work.
    async fn health(&mut self) -> Option<String> {
        // The scenario's nodes are gone; their teardown belongs to it, so a crash it causes is reported here.
        self.quiesce().await;
        let deaths = self.read_deaths();
        let new: Vec<&str> = deaths.iter().skip(self.deaths_seen).map(String::as_str).collect();
        self.deaths_seen = deaths.len();
        let problem = daemon_problem(self.daemon, bluetoothd_pid(), &new);
        if let Some(p) = &problem {
            tracing::warn!("{p}");
        }
        problem
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

#[cfg(test)]
mod tests {
    use super::daemon_problem;

    #[test]
    fn a_daemon_death_is_reported() {
        assert_eq!(daemon_problem(Some(7), Some(7), &[]), None);
        assert_eq!(daemon_problem(None, None, &[]), None);
        let restarted = daemon_problem(Some(7), Some(9), &[]).unwrap();
        assert!(restarted.contains("pid 7 -> 9"), "{restarted}");
        assert!(daemon_problem(Some(7), None, &[]).unwrap().contains("gone"));
        let logged = daemon_problem(Some(7), Some(9), &["t=12 bluetoothd pid 7 died (SIGSEGV)"]).unwrap();
        assert!(logged.contains("SIGSEGV"), "{logged}");
    }
}
