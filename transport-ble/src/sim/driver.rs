//! `SimDriver`: one node's view of the simulated medium.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::time::Instant;

use super::lock;
use super::world::World;
use crate::driver::{
    Advertisement, Bearer, BleDriver, Capabilities, DeviceId, DriverError, DriverEvent, LinkId, ScanFilter, SendError,
};

/// The [`BleDriver`] of one simulated device.
pub struct SimDriver {
    world: Arc<Mutex<World>>,
    node: usize,
}

impl SimDriver {
    pub(super) fn new(world: Arc<Mutex<World>>, node: usize) -> Self {
        Self { world, node }
    }

    /// This device's id as other devices see it.
    pub fn device_id(&self) -> DeviceId {
        DeviceId(self.node as u64)
    }

    fn owns(&self, w: &World, link: LinkId) -> bool {
        w.links.get(&link).is_some_and(|l| l.central == self.node || l.peripheral == self.node)
    }
}

impl BleDriver for SimDriver {
    fn capabilities(&self) -> Capabilities {
        let l2cap = lock(&self.world).nodes[self.node].config.profile.l2cap;
        Capabilities { central: true, peripheral: true, l2cap }
    }

    fn start_advertising(&mut self, advertisement: &Advertisement) -> Result<(), DriverError> {
        lock(&self.world).start_advertising(self.node, advertisement.clone(), Instant::now());
        Ok(())
    }

    fn stop_advertising(&mut self) -> Result<(), DriverError> {
        lock(&self.world).stop_advertising(self.node);
        Ok(())
    }

    fn start_scan(&mut self, filter: &ScanFilter) -> Result<(), DriverError> {
        lock(&self.world).start_scan(self.node, filter.clone(), Instant::now());
        Ok(())
    }

    fn stop_scan(&mut self) -> Result<(), DriverError> {
        lock(&self.world).stop_scan(self.node);
        Ok(())
    }

    fn connect(&mut self, device: DeviceId) -> Result<(), DriverError> {
        lock(&self.world).connect(self.node, device, Instant::now());
        Ok(())
    }

    fn listen_l2cap(&mut self) -> Result<u16, DriverError> {
        let mut w = lock(&self.world);
        if !w.nodes[self.node].config.profile.l2cap {
            return Err(DriverError::Unsupported("L2CAP CoC"));
        }
        Ok(w.listen_l2cap(self.node))
    }

    fn open_l2cap(&mut self, link: LinkId, psm: u16) -> Result<(), DriverError> {
        let mut w = lock(&self.world);
        if !w.nodes[self.node].config.profile.l2cap {
            return Err(DriverError::Unsupported("L2CAP CoC"));
        }
        if !self.owns(&w, link) {
            return Err(DriverError::NoSuchLink);
        }
        w.open_l2cap(link, psm, Instant::now());
        Ok(())
    }

    fn send(&mut self, link: LinkId, bearer: Bearer, data: &[u8]) -> Result<(), SendError> {
        lock(&self.world).send(self.node, link, bearer, data, Instant::now())
    }

    fn disconnect(&mut self, link: LinkId) {
        let mut w = lock(&self.world);
        if self.owns(&w, link) {
            w.disconnect(self.node, link, Instant::now());
        }
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<DriverEvent> {
        let mut w = lock(&self.world);
        let node = &mut w.nodes[self.node];
        match node.events.pop_front() {
            Some(event) => Poll::Ready(event),
            None => {
                node.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Drop for SimDriver {
    /// A driver that goes away powers its radio off: links drop, advertising and scanning stop.
    fn drop(&mut self) {
        let mut w = lock(&self.world);
        w.stop_advertising(self.node);
        w.stop_scan(self.node);
        let links: Vec<LinkId> = w
            .links
            .iter()
            .filter(|(_, l)| l.central == self.node || l.peripheral == self.node)
            .map(|(id, _)| *id)
            .collect();
        for link in links {
            w.disconnect(self.node, link, Instant::now());
        }
        w.nodes[self.node].waker = None;
    }
}
