//! The medium's state: nodes, links and the time-ordered action queue.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::task::Waker;
use std::time::Duration;

use pollen_radio_model::ble::{LinkParams, ModelError, Phy, ATT_MTU_DEFAULT};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::air::Link;
use super::{MediumConfig, MediumStats, NodeConfig, SimProfile};
use crate::driver::{
    Advertisement, ConnectError, DeviceId, DisconnectReason, DriverEvent, LinkId, Role, ScanFilter, GATT_ERROR_133,
};

/// Maximum random advDelay added to each advertising event (Core 5.3 Vol 6 Part B §4.4.2.2.1).
const ADV_DELAY_MAX: Duration = Duration::from_millis(10);
/// L2CAP LE credit-based connection request and response take about two connection events.
const L2CAP_SETUP_EVENTS: u32 = 2;

pub(super) struct Node {
    pub(super) config: NodeConfig,
    advertising: Option<Advertisement>,
    adv_scheduled: bool,
    /// Connection attempts of this node as central still being set up.
    initiating: u32,
    scanning: Option<ScanFilter>,
    scan_epoch: Instant,
    pub(super) l2cap_psm: Option<u16>,
    pub(super) events: VecDeque<DriverEvent>,
    pub(super) waker: Option<Waker>,
}

#[derive(Debug)]
pub(super) enum Action {
    Advertise(usize),
    SetupDone {
        central: usize,
        peripheral: usize,
    },
    L2capDone {
        link: LinkId,
        psm: u16,
    },
    Step(LinkId),
    Deliver {
        node: usize,
        event: DriverEvent,
    },
    /// A central's GATT value reaches the peripheral's host (`request`: it was a Write Request).
    DeliverWrite {
        link: LinkId,
        data: bytes::Bytes,
        request: bool,
    },
    /// The peripheral's host finished acquiring its write socket (see `Quirks::acquire_write_delay`).
    WriteAcquired(LinkId),
    /// The Write Response to the central's first value arrives.
    WriteResponse(LinkId),
    Supervision(LinkId),
}

struct Scheduled {
    at: Instant,
    seq: u64,
    action: Action,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

pub(super) struct World {
    pub(super) config: MediumConfig,
    pub(super) rng: StdRng,
    pub(super) nodes: Vec<Node>,
    pub(super) links: HashMap<LinkId, Link>,
    next_link: u64,
    next_psm: u16,
    blocked: HashSet<(usize, usize)>,
    queue: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
    notify: Arc<Notify>,
    pub(super) stats: MediumStats,
}

impl Drop for World {
    fn drop(&mut self) {
        // Lets the scheduler task notice that the medium is gone and exit.
        self.notify.notify_one();
    }
}

/// The parameters two profiles agree on: the common PHY and DLE, the smaller MTU, the longer interval.
pub(super) fn negotiate(central: &SimProfile, peripheral: &SimProfile) -> Result<LinkParams, ModelError> {
    let phy = if central.phy_2m && peripheral.phy_2m { Phy::Le2M } else { Phy::Le1M };
    let mtu = central.max_att_mtu.min(peripheral.max_att_mtu).max(ATT_MTU_DEFAULT);
    let ci = central.conn_interval.max(peripheral.conn_interval);
    let cap = match (central.max_exchanges_per_event, peripheral.max_exchanges_per_event) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    LinkParams::new(phy, central.dle && peripheral.dle, mtu, ci)?.with_max_exchanges_per_event(cap)
}

impl World {
    pub(super) fn new(config: MediumConfig, notify: Arc<Notify>) -> Self {
        Self {
            rng: StdRng::seed_from_u64(config.seed),
            config,
            nodes: Vec::new(),
            links: HashMap::new(),
            next_link: 1,
            next_psm: 0x0080,
            blocked: HashSet::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            notify,
            stats: MediumStats::default(),
        }
    }

    pub(super) fn add_node(&mut self, config: NodeConfig) -> usize {
        self.nodes.push(Node {
            config,
            advertising: None,
            adv_scheduled: false,
            initiating: 0,
            scanning: None,
            scan_epoch: Instant::now(),
            l2cap_psm: None,
            events: VecDeque::new(),
            waker: None,
        });
        self.nodes.len() - 1
    }

    pub(super) fn schedule(&mut self, at: Instant, action: Action) {
        let earliest = self.queue.peek().is_none_or(|Reverse(s)| at < s.at);
        self.seq += 1;
        self.queue.push(Reverse(Scheduled { at, seq: self.seq, action }));
        if earliest {
            self.notify.notify_one();
        }
    }

    pub(super) fn next_due(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse(s)| s.at)
    }

    pub(super) fn run_due(&mut self, now: Instant) {
        while self.queue.peek().is_some_and(|Reverse(s)| s.at <= now) {
            let Some(Reverse(s)) = self.queue.pop() else {
                break;
            };
            self.process(s.at, s.action);
        }
    }

    fn process(&mut self, now: Instant, action: Action) {
        match action {
            Action::Advertise(node) => self.advertise(node, now),
            Action::SetupDone { central, peripheral } => self.setup_done(central, peripheral, now),
            Action::L2capDone { link, psm } => self.l2cap_done(link, psm),
            Action::Step(link) => self.step(link, now),
            Action::Deliver { node, event } => self.emit(node, event),
            Action::DeliverWrite { link, data, request } => self.deliver_write(link, data, request, now),
            Action::WriteAcquired(link) => self.write_acquired(link, now),
            Action::WriteResponse(link) => self.write_response(link),
            Action::Supervision(link) => self.supervision(link, now),
        }
    }

    pub(super) fn emit(&mut self, node: usize, event: DriverEvent) {
        if let Some(n) = self.nodes.get_mut(node) {
            n.events.push_back(event);
            if let Some(waker) = n.waker.take() {
                waker.wake();
            }
        }
    }

    pub(super) fn node_of(&self, device: DeviceId) -> Option<usize> {
        usize::try_from(device.0).ok().filter(|&i| i < self.nodes.len())
    }

    /// Whether a packet from `a` reaches `b` on `phy`.
    pub(super) fn in_range(&self, a: usize, b: usize, phy: Phy) -> bool {
        !self.blocked.contains(&(a.min(b), a.max(b))) && {
            let pl = &self.config.path_loss;
            pl.decodable(pl.rssi_dbm(self.distance(a, b)), phy)
        }
    }

    fn distance(&self, a: usize, b: usize) -> f64 {
        let (pa, pb) = (self.nodes[a].config.position, self.nodes[b].config.position);
        ((pa.0 - pb.0).powi(2) + (pa.1 - pb.1).powi(2)).sqrt()
    }

    pub(super) fn set_position(&mut self, device: DeviceId, position: (f64, f64), now: Instant) {
        if let Some(node) = self.node_of(device) {
            self.nodes[node].config.position = position;
            self.recheck_links(now);
        }
    }

    pub(super) fn set_blocked(&mut self, a: DeviceId, b: DeviceId, blocked: bool, now: Instant) {
        let (Some(a), Some(b)) = (self.node_of(a), self.node_of(b)) else {
            return;
        };
        let key = (a.min(b), a.max(b));
        if blocked {
            self.blocked.insert(key);
        } else {
            self.blocked.remove(&key);
        }
        self.recheck_links(now);
    }

    pub(super) fn links_between(&self, a: DeviceId, b: DeviceId) -> Vec<LinkId> {
        let (Some(a), Some(b)) = (self.node_of(a), self.node_of(b)) else {
            return Vec::new();
        };
        let mut ids: Vec<LinkId> = self.links.values().filter(|l| l.joins(a, b)).map(|l| l.id).collect();
        ids.sort();
        ids
    }

    pub(super) fn link_params(&self, link: LinkId) -> Option<LinkParams> {
        self.links.get(&link).map(|l| l.params)
    }

    fn link_count(&self, node: usize) -> usize {
        self.links.values().filter(|l| l.central == node || l.peripheral == node).count()
    }

    // --- advertising and scanning ---

    pub(super) fn start_advertising(&mut self, node: usize, advertisement: Advertisement, now: Instant) {
        self.nodes[node].advertising = Some(advertisement);
        if !self.nodes[node].adv_scheduled {
            self.nodes[node].adv_scheduled = true;
            self.schedule(now, Action::Advertise(node));
        }
    }

    pub(super) fn stop_advertising(&mut self, node: usize) {
        self.nodes[node].advertising = None;
    }

    pub(super) fn start_scan(&mut self, node: usize, filter: ScanFilter, now: Instant) {
        if self.nodes[node].scanning.is_none() {
            self.nodes[node].scan_epoch = now;
        }
        self.nodes[node].scanning = Some(filter);
    }

    pub(super) fn stop_scan(&mut self, node: usize) {
        self.nodes[node].scanning = None;
    }

    fn scanner_listening(&self, node: usize, now: Instant) -> bool {
        let n = &self.nodes[node];
        let (window, interval) = n.config.profile.scan.window_interval();
        let phase = (now - n.scan_epoch).as_micros() % interval.as_micros().max(1);
        phase < window.as_micros()
    }

    fn advertise(&mut self, node: usize, now: Instant) {
        let Some(adv) = self.nodes[node].advertising.clone() else {
            self.nodes[node].adv_scheduled = false;
            return;
        };
        let paused = self.advertising_paused(node);
        for scanner in 0..self.nodes.len() {
            let matches = self.nodes[scanner].scanning.as_ref().is_some_and(|f| f.service_uuid == adv.service_uuid);
            if paused || scanner == node || !matches || !self.in_range(node, scanner, Phy::Le1M) {
                continue;
            }
            if !self.scanner_listening(scanner, now) || self.rng.random_bool(self.config.advert_loss) {
                continue;
            }
            let noise = self.config.rssi_noise_db;
            let rssi = self.config.path_loss.rssi_dbm(self.distance(node, scanner))
                + if noise > 0.0 { self.rng.random_range(-noise..noise) } else { 0.0 };
            self.stats.adverts_seen += 1;
            let event = DriverEvent::AdvertisementSeen {
                device: DeviceId(node as u64),
                rssi: rssi.round().clamp(-127.0, 20.0) as i16,
                service_data: adv.service_data.clone(),
            };
            self.emit(scanner, event);
        }
        let interval = self.nodes[node].config.profile.advertise.interval();
        let delay = Duration::from_micros(self.rng.random_range(0..=ADV_DELAY_MAX.as_micros() as u64));
        self.schedule(now + interval + delay, Action::Advertise(node));
    }

    // --- connections ---

    pub(super) fn connect(&mut self, central: usize, device: DeviceId, now: Instant) {
        let Some(peripheral) = self.node_of(device).filter(|&p| p != central) else {
            let event = DriverEvent::ConnectFailed { device, error: ConnectError::UnknownDevice };
            self.schedule(now, Action::Deliver { node: central, event });
            return;
        };
        let latency = self.nodes[central].config.profile.setup_latency;
        let setup = latency.sample(self.rng.random());
        self.nodes[central].initiating += 1;
        self.schedule(now + setup, Action::SetupDone { central, peripheral });
    }

    /// Whether the node's advertising is paused for its own connection attempt
    /// (`Quirks::pauses_advertising_while_initiating`).
    fn advertising_paused(&self, node: usize) -> bool {
        let n = &self.nodes[node];
        n.config.quirks.pauses_advertising_while_initiating && n.initiating > 0
    }

    fn setup_done(&mut self, central: usize, peripheral: usize, now: Instant) {
        let device = DeviceId(peripheral as u64);
        self.nodes[central].initiating = self.nodes[central].initiating.saturating_sub(1);
        if let Err(error) = self.admit(central, peripheral) {
            if error == ConnectError::Status(GATT_ERROR_133) {
                self.stats.gatt_133 += 1;
            }
            self.emit(central, DriverEvent::ConnectFailed { device, error });
            return;
        }
        let params = match negotiate(&self.nodes[central].config.profile, &self.nodes[peripheral].config.profile)
            .and_then(|p| self.phy_for_distance(p, central, peripheral))
        {
            Ok(params) => params,
            Err(e) => {
                let error = ConnectError::Platform(e.to_string());
                self.emit(central, DriverEvent::ConnectFailed { device, error });
                return;
            }
        };
        let id = LinkId(self.next_link);
        self.next_link += 1;
        let link = Link::new(id, central, peripheral, params, now);
        self.links.insert(id, link);
        let mtu = params.att_mtu();
        for (node, role, remote) in [(central, Role::Central, peripheral), (peripheral, Role::Peripheral, central)] {
            let reported = match self.nodes[node].config.quirks.late_mtu_report {
                Some(delay) => {
                    let event = DriverEvent::MtuChanged { link: id, att_mtu: mtu };
                    self.schedule(now + delay, Action::Deliver { node, event });
                    ATT_MTU_DEFAULT
                }
                None => mtu,
            };
            let device = DeviceId(remote as u64);
            self.emit(node, DriverEvent::Connected { link: id, device, role, att_mtu: reported });
        }
    }

    /// Stacks keep a link on LE 1M when LE 2M would not reach (2M needs about 3 dB more signal).
    fn phy_for_distance(&self, params: LinkParams, a: usize, b: usize) -> Result<LinkParams, ModelError> {
        if params.phy() == Phy::Le2M && !self.in_range(a, b, Phy::Le2M) {
            let one_m = LinkParams::new(Phy::Le1M, params.dle(), params.att_mtu(), params.conn_interval())?;
            return one_m.with_max_exchanges_per_event(params.max_exchanges_per_event());
        }
        Ok(params)
    }

    /// Why a connection between the two would fail now, if it would.
    fn admit(&mut self, central: usize, peripheral: usize) -> Result<(), ConnectError> {
        if self.nodes[peripheral].advertising.is_none() || self.advertising_paused(peripheral) {
            return Err(ConnectError::NotConnectable);
        }
        if !self.in_range(central, peripheral, Phy::Le1M) {
            return Err(ConnectError::OutOfRange);
        }
        let full = |w: &Self, n: usize| w.link_count(n) >= w.nodes[n].config.profile.max_links;
        if full(self, central) || full(self, peripheral) {
            return Err(ConnectError::TooManyLinks);
        }
        let rate = self.nodes[central].config.quirks.gatt_133_rate;
        if rate > 0.0 && self.rng.random_bool(rate.min(1.0)) {
            return Err(ConnectError::Status(GATT_ERROR_133));
        }
        let existing: Vec<&Link> = self.links.values().filter(|l| l.joins(central, peripheral)).collect();
        let duplicates_allowed = self.nodes[central].config.quirks.simultaneous_connect_duplicates
            || self.nodes[peripheral].config.quirks.simultaneous_connect_duplicates;
        // One link per role pair at most; a second in the opposite role only on stacks that allow it.
        if existing.iter().any(|l| l.central == central) || (!existing.is_empty() && !duplicates_allowed) {
            return Err(ConnectError::AlreadyConnected);
        }
        Ok(())
    }

    pub(super) fn disconnect(&mut self, node: usize, link: LinkId, now: Instant) {
        let Some(l) = self.links.remove(&link) else {
            return;
        };
        let other = if l.central == node { l.peripheral } else { l.central };
        self.emit(node, DriverEvent::Disconnected { link, reason: DisconnectReason::Local });
        // LL_TERMINATE_IND reaches the peer at the next connection event.
        let event = DriverEvent::Disconnected { link, reason: DisconnectReason::Remote };
        self.schedule(now + l.params.conn_interval(), Action::Deliver { node: other, event });
    }

    fn supervision(&mut self, link: LinkId, now: Instant) {
        let expired = self
            .links
            .get(&link)
            .is_some_and(|l| l.silent_since.is_some_and(|since| now >= since + self.config.supervision_timeout));
        if !expired {
            return;
        }
        if let Some(l) = self.links.remove(&link) {
            for node in [l.central, l.peripheral] {
                self.emit(node, DriverEvent::Disconnected { link, reason: DisconnectReason::SupervisionTimeout });
            }
        }
    }

    /// Marks links silent when their ends lost each other, and wakes those that found each other again.
    fn recheck_links(&mut self, now: Instant) {
        let ids: Vec<LinkId> = self.links.keys().copied().collect();
        for id in ids {
            let Some(l) = self.links.get(&id) else {
                continue;
            };
            let reachable = self.in_range(l.central, l.peripheral, l.params.phy());
            let silent = l.silent_since.is_some();
            if !reachable && !silent {
                self.go_silent(id, now);
            } else if reachable && silent {
                if let Some(l) = self.links.get_mut(&id) {
                    l.silent_since = None;
                }
                self.schedule_next_event(id, now);
            }
        }
    }

    pub(super) fn go_silent(&mut self, id: LinkId, now: Instant) {
        if let Some(l) = self.links.get_mut(&id) {
            if l.silent_since.is_none() {
                l.silent_since = Some(now);
                let at = now + self.config.supervision_timeout;
                self.schedule(at, Action::Supervision(id));
            }
        }
    }

    // --- L2CAP ---

    pub(super) fn listen_l2cap(&mut self, node: usize) -> u16 {
        if let Some(psm) = self.nodes[node].l2cap_psm {
            return psm;
        }
        let psm = self.next_psm;
        self.next_psm = self.next_psm.wrapping_add(2).max(0x0080);
        self.nodes[node].l2cap_psm = Some(psm);
        psm
    }

    pub(super) fn open_l2cap(&mut self, link: LinkId, psm: u16, now: Instant) {
        let Some(l) = self.links.get(&link) else {
            return;
        };
        let at = now + l.params.conn_interval() * L2CAP_SETUP_EVENTS;
        self.schedule(at, Action::L2capDone { link, psm });
    }

    fn l2cap_done(&mut self, link: LinkId, psm: u16) {
        let Some(l) = self.links.get_mut(&link) else {
            return;
        };
        let (central, peripheral) = (l.central, l.peripheral);
        let both = self.nodes[central].config.profile.l2cap && self.nodes[peripheral].config.profile.l2cap;
        if !both || self.nodes[peripheral].l2cap_psm != Some(psm) || l.l2cap_open {
            let reason = format!("no L2CAP listener on PSM {psm:#06x}");
            self.emit(central, DriverEvent::L2capFailed { link, reason });
            return;
        }
        l.l2cap_open = true;
        let max_sdu = l.params.l2cap_sdu_max();
        self.emit(central, DriverEvent::L2capOpened { link, max_sdu });
        self.emit(peripheral, DriverEvent::L2capOpened { link, max_sdu });
    }
}
