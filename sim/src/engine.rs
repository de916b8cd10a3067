//! The discrete-event core: contacts become links after a setup delay, links carry frames at their rate, one frame
//! at a time per direction, and a protocol instance on every node decides what to send. No clock, no threads: the
//! same seed gives the same run.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::energy::{EnergyMeter, EnergyModel};
use crate::model::{ContactTrace, MessageSpec, NodeId, Time};
use crate::radio::RadioProfile;

/// Index of a message in the run's message list.
pub type MsgIdx = usize;

/// Link-layer settings shared by every contact of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkConfig {
    /// Rate, setup delay and concurrent-link limit (further contacts wait for a free slot).
    pub radio: RadioProfile,
    /// Mean time until one phone of a pair discovers the other, ms (depends on the scan duty).
    pub discovery_mean_ms: Time,
    /// Seed of the setup-delay draws.
    pub seed: u64,
}

impl LinkConfig {
    /// Discovery (the earlier of two uniform draws) plus connection setup, for one contact.
    fn sample_setup_ms(&self, rng: &mut StdRng) -> Time {
        let span = 2 * self.discovery_mean_ms + 1;
        let discovery = rng.random_range(0..span).min(rng.random_range(0..span));
        discovery + self.radio.sample_setup_ms(rng.random::<f64>())
    }
}

/// What a protocol asks the engine to do, collected during one callback.
pub struct Ctx<'a, M> {
    now: Time,
    node: NodeId,
    messages: &'a [MessageSpec],
    out: &'a mut Vec<Output<M>>,
}

pub(crate) enum Output<M> {
    Control { to: NodeId, msg: M, bytes: u64 },
    Block { to: NodeId, msg: MsgIdx, meta: BlockMeta },
    Delivered { msg: MsgIdx, hops: u32 },
}

/// What travels with a block: how many transmissions it took to get here, and spray copies handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockMeta {
    /// Transmissions from the source to the sender.
    pub hops: u32,
    /// Spray copies handed over with the block (protocol-specific meaning).
    pub copies: u32,
}

impl<M> Ctx<'_, M> {
    /// The current time.
    pub fn now(&self) -> Time {
        self.now
    }

    /// The node this callback runs on.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// The message `msg` of the run's workload.
    pub fn spec(&self, msg: MsgIdx) -> &MessageSpec {
        &self.messages[msg]
    }

    /// Queues a control message of `bytes` bytes to a neighbour.
    pub fn send_control(&mut self, to: NodeId, msg: M, bytes: u64) {
        self.out.push(Output::Control { to, msg, bytes });
    }

    /// Queues a message's block to a neighbour.
    pub fn send_block(&mut self, to: NodeId, msg: MsgIdx, meta: BlockMeta) {
        self.out.push(Output::Block { to, msg, meta });
    }

    /// This node is the destination and now holds the message.
    pub fn delivered(&mut self, msg: MsgIdx, hops: u32) {
        self.out.push(Output::Delivered { msg, hops });
    }
}

/// One node's routing logic. The engine calls it; it answers through the [`Ctx`].
pub trait Protocol {
    /// Control message type.
    type Msg: Clone;
    /// A link to `peer` is up.
    fn link_up(&mut self, ctx: &mut Ctx<Self::Msg>, peer: NodeId);
    /// The link to `peer` went down (frames in flight are lost).
    fn link_down(&mut self, ctx: &mut Ctx<Self::Msg>, peer: NodeId);
    /// This node created message `msg` (it is the source).
    fn created(&mut self, ctx: &mut Ctx<Self::Msg>, msg: MsgIdx, spec: &MessageSpec);
    /// This node is the destination of `msg`, just created elsewhere: it starts wanting it.
    fn expect(&mut self, ctx: &mut Ctx<Self::Msg>, msg: MsgIdx, spec: &MessageSpec);
    /// A control message arrived.
    fn control(&mut self, ctx: &mut Ctx<Self::Msg>, from: NodeId, msg: Self::Msg);
    /// A block arrived. Returns whether the node already held it (a duplicate).
    fn block(&mut self, ctx: &mut Ctx<Self::Msg>, from: NodeId, msg: MsgIdx, meta: BlockMeta) -> bool;
    /// A block this node sent to `to` arrived there.
    fn block_sent(&mut self, _ctx: &mut Ctx<Self::Msg>, _to: NodeId, _msg: MsgIdx, _meta: BlockMeta) {}
    /// `msg` expired: drop it and any interest in it.
    fn expired(&mut self, ctx: &mut Ctx<Self::Msg>, msg: MsgIdx);
    /// The next time [`Protocol::timer`] has work.
    fn next_timer(&self) -> Option<Time>;
    /// Timers due.
    fn timer(&mut self, ctx: &mut Ctx<Self::Msg>);
    /// A one-line account of what the nodes did, for the run's log.
    fn summarize(_nodes: &[Self]) -> Option<String>
    where
        Self: Sized,
    {
        None
    }
}

enum Frame<M> {
    Control { msg: M, bytes: u64 },
    Block { msg: MsgIdx, meta: BlockMeta, bytes: u64 },
}

impl<M> Frame<M> {
    fn bytes(&self) -> u64 {
        match self {
            Frame::Control { bytes, .. } | Frame::Block { bytes, .. } => *bytes,
        }
    }
}

struct Direction<M> {
    queue: VecDeque<Frame<M>>,
    /// The frame on air and when it completes.
    sending: Option<(Frame<M>, Time)>,
}

impl<M> Default for Direction<M> {
    fn default() -> Self {
        Self { queue: VecDeque::new(), sending: None }
    }
}

struct Link<M> {
    /// Unique per contact (a run-wide counter), so events of an earlier contact of the pair are ignored.
    epoch: u64,
    up: bool,
    /// [a → b, b → a] with a < b.
    dirs: [Direction<M>; 2],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    LinkReady { a: NodeId, b: NodeId, epoch: u64 },
    FrameDone { a: NodeId, b: NodeId, dir: u8, epoch: u64 },
    Timer { node: NodeId },
    Expire { msg: MsgIdx },
}

/// Counters the metrics are computed from.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Per message: (delivery time, hops) once delivered.
    pub deliveries: Vec<Option<(Time, u32)>>,
    /// Block transmissions started (including ones cut short by a link going down).
    pub block_transmissions: u64,
    /// Block bytes received by nodes that already held the block.
    pub duplicate_bytes: u64,
    /// Block bytes received that were new to the receiver.
    pub useful_bytes: u64,
    /// Control bytes sent.
    pub control_bytes: u64,
    /// Block bytes sent.
    pub block_bytes: u64,
    /// Links established.
    pub links: u64,
}

/// Runs one protocol over a contact trace and a workload.
pub struct Engine<'a, P: Protocol> {
    cfg: LinkConfig,
    trace: &'a ContactTrace,
    messages: &'a [MessageSpec],
    ttl: Time,
    nodes: Vec<P>,
    /// Pairs in contact (linked, setting up, or waiting for a slot); a pair leaves when its contact ends, so the
    /// table is as large as the contacts open now, not every pair that ever met.
    links: HashMap<(NodeId, NodeId), Link<P::Msg>>,
    next_epoch: u64,
    active: Vec<usize>,
    /// Contacts waiting for a free link slot on one of their ends.
    waiting: BTreeMap<(NodeId, NodeId), u64>,
    /// The waiting contacts of each node: only a freed node's contacts can be admitted, and a dense crowd has
    /// many waiting.
    waiting_at: Vec<BTreeSet<(NodeId, NodeId)>>,
    events: BinaryHeap<Reverse<(Time, u64, Event)>>,
    seq: u64,
    timers: Vec<Option<Time>>,
    energy: EnergyMeter,
    rng: StdRng,
    out: Vec<Output<P::Msg>>,
    /// Results so far.
    pub tally: Tally,
}

impl<'a, P: Protocol> Engine<'a, P> {
    /// An engine over `trace` and `messages`, with `nodes` protocol instances (one per node id).
    pub fn new(
        cfg: LinkConfig,
        energy: EnergyModel,
        trace: &'a ContactTrace,
        messages: &'a [MessageSpec],
        ttl: Time,
        nodes: Vec<P>,
    ) -> Self {
        let n = nodes.len();
        Self {
            rng: StdRng::seed_from_u64(cfg.seed),
            cfg,
            trace,
            messages,
            ttl,
            nodes,
            links: HashMap::new(),
            next_epoch: 0,
            active: vec![0; n],
            waiting: BTreeMap::new(),
            waiting_at: vec![BTreeSet::new(); n],
            events: BinaryHeap::new(),
            seq: 0,
            timers: vec![None; n],
            energy: EnergyMeter::new(energy, n),
            out: Vec::new(),
            tally: Tally { deliveries: vec![None; messages.len()], ..Tally::default() },
        }
    }

    fn schedule(&mut self, at: Time, event: Event) {
        self.seq += 1;
        self.events.push(Reverse((at, self.seq, event)));
    }

    /// Runs to the end of the trace; `progress` is called with the fraction done now and then. Returns the tally,
    /// each node's energy in joules, and the protocol instances as the run left them.
    pub fn run(mut self, mut progress: impl FnMut(f64)) -> (Tally, Vec<f64>, Vec<P>) {
        let mut next_contact = 0;
        let mut next_message = 0;
        let duration = self.trace.duration;
        let mut reported = 0;
        loop {
            let contact_t = self.trace.events.get(next_contact).map(|e| e.t);
            let message_t = self.messages.get(next_message).map(|m| m.created);
            let event_t = self.events.peek().map(|Reverse((t, _, _))| *t);
            let Some(now) = [contact_t, message_t, event_t].into_iter().flatten().min() else { break };
            if now > duration {
                break;
            }
            // In u128: a trace's times may be large enough for `now * 100` to overflow.
            let percent = (u128::from(now) * 100 / u128::from(duration.max(1))) as u64;
            if percent > reported {
                reported = percent;
                progress(reported as f64 / 100.0);
            }
            if contact_t == Some(now) {
                let e = self.trace.events[next_contact];
                next_contact += 1;
                if e.up {
                    self.contact_up(now, e.a, e.b);
                } else {
                    self.contact_down(now, e.a, e.b);
                }
            } else if message_t == Some(now) {
                let idx = next_message;
                next_message += 1;
                self.create(now, idx);
            } else if let Some(Reverse((_, _, event))) = self.events.pop() {
                self.handle(now, event);
            }
        }
        self.energy.finish(duration);
        (self.tally, self.energy.per_node_joules(), self.nodes)
    }

    fn create(&mut self, now: Time, idx: MsgIdx) {
        let spec = self.messages[idx];
        let (src, dst) = (spec.src, spec.dst);
        if (src as usize) < self.nodes.len() {
            self.call(now, src, |p, ctx| p.created(ctx, idx, &spec));
        }
        if (dst as usize) < self.nodes.len() {
            self.call(now, dst, |p, ctx| p.expect(ctx, idx, &spec));
        }
        self.schedule(now + self.ttl, Event::Expire { msg: idx });
    }

    fn contact_up(&mut self, now: Time, a: NodeId, b: NodeId) {
        self.next_epoch += 1;
        let epoch = self.next_epoch;
        self.links.insert((a, b), Link { epoch, up: false, dirs: Default::default() });
        let setup = self.cfg.sample_setup_ms(&mut self.rng);
        self.schedule(now + setup, Event::LinkReady { a, b, epoch });
    }

    fn contact_down(&mut self, now: Time, a: NodeId, b: NodeId) {
        self.stop_waiting(a, b);
        let Some(link) = self.links.remove(&(a, b)) else { return };
        if !link.up {
            return;
        }
        self.active[a as usize] -= 1;
        self.active[b as usize] -= 1;
        self.energy.link_down(now, a);
        self.energy.link_down(now, b);
        self.call(now, a, |p, ctx| p.link_down(ctx, b));
        self.call(now, b, |p, ctx| p.link_down(ctx, a));
        self.admit_waiting(now, a, b);
    }

    fn start_waiting(&mut self, a: NodeId, b: NodeId, epoch: u64) {
        self.waiting.insert((a, b), epoch);
        self.waiting_at[a as usize].insert((a, b));
        self.waiting_at[b as usize].insert((a, b));
    }

    fn stop_waiting(&mut self, a: NodeId, b: NodeId) -> Option<u64> {
        self.waiting_at[a as usize].remove(&(a, b));
        self.waiting_at[b as usize].remove(&(a, b));
        self.waiting.remove(&(a, b))
    }

    /// A slot freed at `a` and at `b`: contacts waiting at either end may open now, in pair order.
    fn admit_waiting(&mut self, now: Time, a: NodeId, b: NodeId) {
        let candidates: BTreeSet<(NodeId, NodeId)> =
            self.waiting_at[a as usize].union(&self.waiting_at[b as usize]).copied().collect();
        for (x, y) in candidates {
            if self.free(x) && self.free(y) {
                if let Some(epoch) = self.stop_waiting(x, y) {
                    self.open(now, x, y, epoch);
                }
            }
        }
    }

    fn free(&self, node: NodeId) -> bool {
        self.active[node as usize] < self.cfg.radio.max_links
    }

    fn open(&mut self, now: Time, a: NodeId, b: NodeId, epoch: u64) {
        let Some(link) = self.links.get_mut(&(a, b)) else { return };
        if link.epoch != epoch || link.up {
            return;
        }
        link.up = true;
        self.active[a as usize] += 1;
        self.active[b as usize] += 1;
        self.tally.links += 1;
        self.energy.link_up(now, a);
        self.energy.link_up(now, b);
        self.call(now, a, |p, ctx| p.link_up(ctx, b));
        self.call(now, b, |p, ctx| p.link_up(ctx, a));
    }

    fn handle(&mut self, now: Time, event: Event) {
        match event {
            Event::LinkReady { a, b, epoch } => {
                if self.links.get(&(a, b)).is_none_or(|l| l.epoch != epoch) {
                    return;
                }
                if self.free(a) && self.free(b) {
                    self.open(now, a, b, epoch);
                } else {
                    self.start_waiting(a, b, epoch);
                }
            }
            Event::FrameDone { a, b, dir, epoch } => self.frame_done(now, a, b, dir, epoch),
            Event::Timer { node } => {
                if self.timers[node as usize].is_some_and(|t| t <= now) {
                    self.timers[node as usize] = None;
                    self.call(now, node, |p, ctx| p.timer(ctx));
                }
            }
            Event::Expire { msg } => {
                // Only nodes that ever touched the message have state for it; asking every node keeps the
                // protocols simple and costs one call per node per message.
                for node in 0..self.nodes.len() as NodeId {
                    self.call(now, node, |p, ctx| p.expired(ctx, msg));
                }
            }
        }
    }

    /// Runs a protocol callback on `node` and carries out what it asked for.
    fn call(&mut self, now: Time, node: NodeId, f: impl FnOnce(&mut P, &mut Ctx<P::Msg>)) {
        let mut out = std::mem::take(&mut self.out);
        {
            let mut ctx = Ctx { now, node, messages: self.messages, out: &mut out };
            f(&mut self.nodes[node as usize], &mut ctx);
        }
        for o in out.drain(..) {
            match o {
                Output::Control { to, msg, bytes } => {
                    self.tally.control_bytes += bytes;
                    self.enqueue(now, node, to, Frame::Control { msg, bytes });
                }
                Output::Block { to, msg, meta } => {
                    let bytes = self.messages[msg].size;
                    self.enqueue(now, node, to, Frame::Block { msg, meta, bytes });
                }
                Output::Delivered { msg, hops } => {
                    let spec = self.messages[msg];
                    let fresh = self.tally.deliveries[msg].is_none();
                    if fresh && node == spec.dst && now <= spec.created + self.ttl {
                        self.tally.deliveries[msg] = Some((now, hops));
                    }
                }
            }
        }
        self.out = out;
        let next = self.nodes[node as usize].next_timer();
        if let Some(t) = next {
            if self.timers[node as usize].is_none_or(|old| t < old) {
                self.timers[node as usize] = Some(t);
                self.schedule(t.max(now), Event::Timer { node });
            }
        }
    }

    fn enqueue(&mut self, now: Time, from: NodeId, to: NodeId, frame: Frame<P::Msg>) {
        let key = (from.min(to), from.max(to));
        let dir = usize::from(from > to);
        let Some(link) = self.links.get_mut(&key) else { return };
        if !link.up {
            return;
        }
        let queue = &mut link.dirs[dir].queue;
        if matches!(frame, Frame::Control { .. }) {
            // Control messages share the link with blocks the way yamux streams do: they do not wait behind a
            // queue of megabyte blocks.
            let first_block = queue.iter().position(|f| matches!(f, Frame::Block { .. })).unwrap_or(queue.len());
            queue.insert(first_block, frame);
        } else {
            queue.push_back(frame);
        }
        if link.dirs[dir].sending.is_none() {
            self.start_next(now, key, dir);
        }
    }

    fn start_next(&mut self, now: Time, (a, b): (NodeId, NodeId), dir: usize) {
        let rate = self.cfg.radio.rate_bytes_per_s;
        let Some(link) = self.links.get_mut(&(a, b)) else { return };
        let Some(frame) = link.dirs[dir].queue.pop_front() else { return };
        let bytes = frame.bytes();
        let done = now.saturating_add(((bytes as f64 / rate) * 1000.0).ceil() as Time);
        let epoch = link.epoch;
        if matches!(frame, Frame::Block { .. }) {
            self.tally.block_transmissions += 1;
            self.tally.block_bytes += bytes;
        }
        link.dirs[dir].sending = Some((frame, done));
        let (sender, receiver) = if dir == 0 { (a, b) } else { (b, a) };
        self.energy.transfer(sender, receiver, bytes);
        self.schedule(done, Event::FrameDone { a, b, dir: dir as u8, epoch });
    }

    fn frame_done(&mut self, now: Time, a: NodeId, b: NodeId, dir: u8, epoch: u64) {
        let Some(link) = self.links.get_mut(&(a, b)) else { return };
        if link.epoch != epoch || !link.up {
            return;
        }
        let Some((frame, _)) = link.dirs[usize::from(dir)].sending.take() else { return };
        let (from, to) = if dir == 0 { (a, b) } else { (b, a) };
        self.start_next(now, (a, b), usize::from(dir));
        match frame {
            Frame::Control { msg, .. } => self.call(now, to, |p, ctx| p.control(ctx, from, msg)),
            Frame::Block { msg, meta, bytes } => {
                let mut duplicate = false;
                self.call(now, to, |p, ctx| duplicate = p.block(ctx, from, msg, meta));
                self.call(now, from, |p, ctx| p.block_sent(ctx, to, msg, meta));
                if duplicate {
                    self.tally.duplicate_bytes += bytes;
                } else {
                    self.tally.useful_bytes += bytes;
                }
            }
        }
    }
}
