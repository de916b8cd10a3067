//! Connection events on air: each exchange is scheduled with the airtime model, one LL packet each way.

use std::collections::VecDeque;

use bytes::Bytes;
use pollen_radio_model::ble::{exchange_airtime_us, Bearer, LinkParams};
use rand::RngExt;
use tokio::time::{Duration, Instant};

use super::world::{Action, World};
use crate::driver::{DriverEvent, LinkId, SendError};

/// A value queued for the air: its LL fragments go out one per exchange.
struct Pdu {
    bearer: Bearer,
    data: Bytes,
    fragments: Vec<usize>,
    next_fragment: usize,
    eligible_at: Instant,
    /// A central's Write Request (its first value; see `Quirks::first_write_request`).
    request: bool,
}

/// Where a central's first GATT value is when its driver sends it as a Write Request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FirstWrite {
    Unsent,
    /// Sent; later values wait for the response.
    Awaiting,
    Answered,
}

/// One direction of a link: central → peripheral or peripheral → central.
#[derive(Default)]
struct Direction {
    queue: VecDeque<Pdu>,
    queued: [usize; 2],
    owes_ready: [bool; 2],
}

fn slot(bearer: Bearer) -> usize {
    match bearer {
        Bearer::Gatt => 0,
        Bearer::L2capCoc => 1,
    }
}

impl Direction {
    fn head_fragment(&self, now: Instant) -> Option<usize> {
        self.queue.front().filter(|p| p.eligible_at <= now).map(|p| p.fragments[p.next_fragment])
    }
}

pub(super) struct Link {
    pub(super) id: LinkId,
    pub(super) central: usize,
    pub(super) peripheral: usize,
    pub(super) params: LinkParams,
    pub(super) l2cap_open: bool,
    pub(super) silent_since: Option<Instant>,
    anchor0: Instant,
    dirs: [Direction; 2],
    step_scheduled: bool,
    /// Latest scheduled GATT delivery per receiver (central, peripheral), to count reorderings.
    last_gatt_delivery: [Instant; 2],
    in_event: bool,
    event_start: Instant,
    exchanges_in_event: u32,
    first_write: FirstWrite,
    /// The central was refused while its first write awaited the response, so it is owed a `SendReady` then.
    first_write_owes_ready: bool,
    /// (BlueZ peripheral) when its write socket is in place; `None` until the link's first write arrived.
    acquired_at: Option<Instant>,
    /// Writes that arrived while the peripheral acquired its socket: what was sent and whether it was a request.
    acquiring: Vec<(Bytes, bool)>,
    /// The peripheral's ATT receive buffer: each arriving value is written over its start.
    att_buf: Vec<u8>,
}

impl Link {
    pub(super) fn new(id: LinkId, central: usize, peripheral: usize, params: LinkParams, now: Instant) -> Self {
        Self {
            id,
            central,
            peripheral,
            params,
            l2cap_open: false,
            silent_since: None,
            anchor0: now,
            dirs: Default::default(),
            step_scheduled: false,
            last_gatt_delivery: [now; 2],
            in_event: false,
            event_start: now,
            exchanges_in_event: 0,
            first_write: FirstWrite::Unsent,
            first_write_owes_ready: false,
            acquired_at: None,
            acquiring: Vec::new(),
            att_buf: Vec::new(),
        }
    }

    pub(super) fn joins(&self, a: usize, b: usize) -> bool {
        (self.central == a && self.peripheral == b) || (self.central == b && self.peripheral == a)
    }

    /// The first anchor point at or after `t` that is later than the last event's anchor.
    fn next_anchor(&self, t: Instant) -> Instant {
        let ci = self.params.conn_interval().as_micros().max(1);
        let since = t.saturating_duration_since(self.anchor0).as_micros();
        let last = self.event_start.saturating_duration_since(self.anchor0).as_micros() / ci;
        let k = since.div_ceil(ci).max(last + 1);
        self.anchor0 + Duration::from_micros((k * ci) as u64)
    }

    fn earliest_pending(&self) -> Option<Instant> {
        self.dirs.iter().filter_map(|d| d.queue.front().map(|p| p.eligible_at)).min()
    }
}

impl World {
    /// Queues a value from `node` on `link`, with the platform's queue limits and quirks.
    pub(super) fn send(
        &mut self,
        node: usize,
        link_id: LinkId,
        bearer: Bearer,
        data: &[u8],
        now: Instant,
    ) -> Result<(), SendError> {
        let quirks = self.nodes[node].config.quirks.clone();
        let profile = self.nodes[node].config.profile.clone();
        let turnaround = self.config.host_turnaround;
        let link = self.links.get_mut(&link_id).ok_or(SendError::NoSuchLink)?;
        let dir = match node {
            n if n == link.central => 0,
            n if n == link.peripheral => 1,
            _ => return Err(SendError::NoSuchLink),
        };
        let first_write_request = dir == 0 && bearer == Bearer::Gatt && quirks.first_write_request;
        if first_write_request && link.first_write == FirstWrite::Awaiting {
            link.first_write_owes_ready = true;
            return Err(SendError::Busy);
        }
        let (max, depth) = match bearer {
            Bearer::Gatt => (link.params.att_payload(), profile.gatt_queue_depth),
            Bearer::L2capCoc if link.l2cap_open => (link.params.l2cap_sdu_max(), profile.l2cap_queue_depth),
            Bearer::L2capCoc => return Err(SendError::NoSuchLink),
        };
        let mut len = data.len();
        if len > max {
            if bearer == Bearer::Gatt && quirks.truncate_oversized_writes {
                len = max;
                self.stats.truncated_writes += 1;
            } else {
                return Err(SendError::TooLarge { len, max });
            }
        }
        let receiver = if dir == 0 { link.peripheral } else { link.central };
        let receiver_drops_over = self.nodes[receiver].config.quirks.drop_writes_over;
        if dir == 0 && bearer == Bearer::Gatt && receiver_drops_over.is_some_and(|max| len > max) {
            self.stats.dropped_writes += 1;
            return Ok(());
        }
        let Some(link) = self.links.get_mut(&link_id) else { return Err(SendError::NoSuchLink) };
        let request = first_write_request && link.first_write == FirstWrite::Unsent;
        let d = &mut link.dirs[dir];
        if d.queued[slot(bearer)] >= depth {
            if quirks.drop_writes_when_full && bearer == Bearer::Gatt {
                self.stats.dropped_writes += 1;
                return Ok(());
            }
            d.owes_ready[slot(bearer)] = true;
            return Err(SendError::Busy);
        }
        let fragments = match bearer {
            Bearer::Gatt => link.params.gatt_value_fragments(len),
            Bearer::L2capCoc => link.params.l2cap_sdu_fragments(len),
        };
        d.queued[slot(bearer)] += 1;
        d.queue.push_back(Pdu {
            bearer,
            data: Bytes::copy_from_slice(&data[..len]),
            fragments,
            next_fragment: 0,
            eligible_at: now + turnaround,
            request,
        });
        if request {
            link.first_write = FirstWrite::Awaiting;
        }
        if !link.step_scheduled {
            self.schedule_next_event(link_id, now);
        }
        Ok(())
    }

    /// Schedules the link's next connection event if it has anything to send and is not silent.
    pub(super) fn schedule_next_event(&mut self, id: LinkId, now: Instant) {
        let Some(link) = self.links.get_mut(&id) else {
            return;
        };
        if link.step_scheduled || link.silent_since.is_some() {
            return;
        }
        let Some(pending) = link.earliest_pending() else {
            return;
        };
        let at = link.next_anchor(pending.max(now));
        link.step_scheduled = true;
        self.schedule(at, Action::Step(id));
    }

    /// One exchange of a connection event: a packet each way, or the end of the event.
    pub(super) fn step(&mut self, id: LinkId, now: Instant) {
        let Some(link) = self.links.get_mut(&id) else {
            return;
        };
        link.step_scheduled = false;
        if !link.in_event {
            link.in_event = true;
            link.event_start = now;
            link.exchanges_in_event = 0;
        }
        let (to_p, to_c) = (link.dirs[0].head_fragment(now), link.dirs[1].head_fragment(now));
        let elapsed = (now - link.event_start).as_micros() as u32;
        let airtime = exchange_airtime_us(link.params.phy(), to_p.unwrap_or(0), to_c.unwrap_or(0));
        let more_data = to_p.is_some() || to_c.is_some();
        if !more_data || !link.params.exchange_fits(elapsed, link.exchanges_in_event, airtime) {
            link.in_event = false;
            self.schedule_next_event(id, now);
            return;
        }
        let (central, peripheral, phy) = (link.central, link.peripheral, link.params.phy());
        if !self.in_range(central, peripheral, phy) {
            if let Some(link) = self.links.get_mut(&id) {
                link.in_event = false;
            }
            self.go_silent(id, now);
            return;
        }
        let corrupted = self.config.packet_error_rate > 0.0 && self.rng.random_bool(self.config.packet_error_rate);
        let Some(link) = self.links.get_mut(&id) else {
            return;
        };
        link.exchanges_in_event += 1;
        self.stats.exchanges += 1;
        let end = now + Duration::from_micros(u64::from(airtime));
        if !corrupted {
            let mut out = Vec::new();
            for (dir, receiver) in [(0, peripheral), (1, central)] {
                if let Some(done) = advance(&mut link.dirs[dir], now) {
                    out.push((dir, receiver, done));
                }
            }
            for (dir, receiver, (pdu, ready)) in out {
                let sender = if dir == 0 { central } else { peripheral };
                match pdu.bearer {
                    Bearer::Gatt => self.stats.gatt_bytes += pdu.data.len() as u64,
                    Bearer::L2capCoc => self.stats.l2cap_bytes += pdu.data.len() as u64,
                }
                let jitter = match (pdu.bearer, self.nodes[receiver].config.quirks.gatt_reorder_jitter) {
                    (Bearer::Gatt, Some(max)) => {
                        Duration::from_micros(self.rng.random_range(0..=max.as_micros() as u64))
                    }
                    _ => Duration::ZERO,
                };
                let at = end + jitter;
                if let Some(link) = self.links.get_mut(&id) {
                    let slot = &mut link.last_gatt_delivery[usize::from(receiver == peripheral)];
                    if pdu.bearer == Bearer::Gatt {
                        if at < *slot {
                            self.stats.reordered_values += 1;
                        }
                        *slot = (*slot).max(at);
                    }
                }
                if dir == 0 && pdu.bearer == Bearer::Gatt {
                    // The peripheral's host may hold or corrupt it (see `deliver_write`).
                    self.schedule(at, Action::DeliverWrite { link: id, data: pdu.data, request: pdu.request });
                } else {
                    let event = DriverEvent::Received { link: id, bearer: pdu.bearer, data: pdu.data };
                    self.schedule(at, Action::Deliver { node: receiver, event });
                }
                if ready {
                    let event = DriverEvent::SendReady { link: id, bearer: pdu.bearer };
                    self.schedule(end, Action::Deliver { node: sender, event });
                }
            }
        }
        if let Some(link) = self.links.get_mut(&id) {
            link.step_scheduled = true;
        }
        self.schedule(end, Action::Step(id));
    }
}

impl World {
    /// A central's GATT value reaches the peripheral's host. A BlueZ peripheral acquires its write socket on the
    /// link's first write; what arrives until that is done waits in its ATT receive buffer (see
    /// `Quirks::acquire_write_delay`).
    pub(super) fn deliver_write(&mut self, id: LinkId, data: Bytes, request: bool, now: Instant) {
        let Some(link) = self.links.get_mut(&id) else {
            return;
        };
        let peripheral = link.peripheral;
        match self.nodes[peripheral].config.quirks.acquire_write_delay {
            Some(delay) if link.acquired_at.is_none_or(|done| now < done) => {
                if link.att_buf.len() < data.len() {
                    link.att_buf.resize(data.len(), 0);
                }
                link.att_buf[..data.len()].copy_from_slice(&data);
                link.acquiring.push((data, request));
                if link.acquired_at.is_none() {
                    link.acquired_at = Some(now + delay);
                    self.schedule(now + delay, Action::WriteAcquired(id));
                }
            }
            _ => {
                self.emit(peripheral, DriverEvent::Received { link: id, bearer: Bearer::Gatt, data });
                if request {
                    self.answer_first_write(id, now);
                }
            }
        }
    }

    /// The peripheral's write socket is in place: bluetoothd hands over the held writes, each with its own length
    /// but read from the buffer the newest one overwrote.
    pub(super) fn write_acquired(&mut self, id: LinkId, now: Instant) {
        let Some(link) = self.links.get_mut(&id) else {
            return;
        };
        let (peripheral, held, buf) = (link.peripheral, std::mem::take(&mut link.acquiring), link.att_buf.clone());
        for (sent, request) in held {
            let delivered = Bytes::copy_from_slice(&buf[..sent.len()]);
            if delivered != sent {
                self.stats.corrupted_writes += 1;
            }
            self.emit(peripheral, DriverEvent::Received { link: id, bearer: Bearer::Gatt, data: delivered });
            if request {
                self.answer_first_write(id, now);
            }
        }
    }

    /// The Write Response goes back at the next connection event.
    fn answer_first_write(&mut self, id: LinkId, now: Instant) {
        if let Some(link) = self.links.get(&id) {
            let at = now + link.params.conn_interval();
            self.schedule(at, Action::WriteResponse(id));
        }
    }

    /// The central's driver has the response to its first value: later values may go.
    pub(super) fn write_response(&mut self, id: LinkId) {
        let Some(link) = self.links.get_mut(&id) else {
            return;
        };
        link.first_write = FirstWrite::Answered;
        let central = link.central;
        if std::mem::take(&mut link.first_write_owes_ready) {
            self.emit(central, DriverEvent::SendReady { link: id, bearer: Bearer::Gatt });
        }
    }
}

/// Sends the head PDU's next fragment; returns the PDU when that was its last one, with whether a refused sender
/// is now owed a `SendReady`.
fn advance(dir: &mut Direction, now: Instant) -> Option<(Pdu, bool)> {
    let head = dir.queue.front_mut().filter(|p| p.eligible_at <= now)?;
    head.next_fragment += 1;
    if head.next_fragment < head.fragments.len() {
        return None;
    }
    let pdu = dir.queue.pop_front()?;
    let s = slot(pdu.bearer);
    dir.queued[s] -= 1;
    let ready = std::mem::take(&mut dir.owes_ready[s]);
    Some((pdu, ready))
}
