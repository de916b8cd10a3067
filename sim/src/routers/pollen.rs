//! Pollen: every node runs the real `pollen-router` want-gossip core, fed by the simulator instead of libp2p.
//!
//! A message is one block whose CID both ends know (the messaging app addresses it): the source publishes it with a
//! spray budget, the destination wants it from the moment it is created. Control messages are sized by their real
//! wire encoding.

use std::collections::BTreeMap;
use std::sync::Arc;

use pollen_router::cid::Cid;
use pollen_router::gossip::{Action, Control, Router, RouterConfig, RouterStats};
use pollen_router::unixfs::{cid_v1_sha256, RAW_CODEC};

use super::buffer::{Buffer, Held};
use crate::engine::{BlockMeta, Ctx, MsgIdx, Protocol};
use crate::model::{MessageSpec, NodeId, Time};

/// Per-run tables every node shares: the CID of each message and back.
#[derive(Debug)]
pub struct PollenShared {
    cids: Vec<Cid>,
    /// The largest message: the unit of carry room.
    max_size: u64,
    /// When each message was created: the oldest has the least lifetime left.
    created: Vec<Time>,
    index: BTreeMap<Cid, MsgIdx>,
}

impl PollenShared {
    /// CIDs for the run's messages (the hash of the message id stands in for the content).
    pub fn new(messages: &[MessageSpec]) -> Arc<Self> {
        let cids: Vec<Cid> = messages.iter().map(|m| cid_v1_sha256(RAW_CODEC, &m.id.to_le_bytes())).collect();
        let index = cids.iter().enumerate().map(|(i, c)| (*c, i)).collect();
        let max_size = messages.iter().map(|m| m.size).max().unwrap_or(1).max(1);
        Arc::new(Self { cids, index, max_size, created: messages.iter().map(|m| m.created).collect() })
    }
}

/// Length prefix plus the envelope: what a control message costs on the link.
fn wire_bytes(msg: &Control) -> u64 {
    msg.framed_len() as u64
}

/// One node running the Pollen router core.
#[derive(Debug)]
pub struct PollenNode {
    router: Router<NodeId>,
    shared: Arc<PollenShared>,
    spray_copies: u32,
    buffer: Buffer,
    /// Transmissions each held message took to get here.
    hops: BTreeMap<MsgIdx, u32>,
}

impl PollenNode {
    /// A node with router configuration `cfg`, publishing its own messages with `spray_copies` copies, with a
    /// buffer of `buffer_bytes`.
    pub fn new(cfg: RouterConfig, shared: Arc<PollenShared>, spray_copies: u32, buffer_bytes: u64) -> Self {
        Self {
            router: Router::new(cfg),
            shared,
            spray_copies,
            buffer: Buffer::new(buffer_bytes),
            hops: BTreeMap::new(),
        }
    }

    /// The router core's counters.
    pub fn stats(&self) -> RouterStats {
        self.router.stats()
    }

    /// Carries out what the router asked for.
    fn pump(&mut self, ctx: &mut Ctx<Control>) {
        while let Some(action) = self.router.poll_action() {
            match action {
                Action::Send { to, msg } => {
                    let bytes = wire_bytes(&msg);
                    ctx.send_control(to, msg, bytes);
                }
                Action::SendBlock { to, cid } => {
                    if let Some(&msg) = self.shared.index.get(&cid) {
                        let hops = self.hops.get(&msg).copied().unwrap_or(0);
                        ctx.send_block(to, msg, BlockMeta { hops, copies: 0 });
                    }
                }
                Action::Delivered { cid } => {
                    if let Some(&msg) = self.shared.index.get(&cid) {
                        if ctx.spec(msg).dst == ctx.node() {
                            ctx.delivered(msg, self.hops.get(&msg).copied().unwrap_or(0));
                            // Handed to the application, which keeps it in its own storage: it no longer takes
                            // room in the carry buffer (the router still holds it and answers wants for it).
                            self.buffer.remove(msg);
                        }
                    }
                }
                // Every simulated block is genuine: nobody is penalised.
                Action::Disconnect { .. } => {}
            }
        }
    }

    /// Tells the router how many more copies fit beside the blocks it has in custody, and how many replicas fit
    /// without evicting anything that may still reach a requester.
    fn update_carry_room(&mut self) {
        let custody: u64 = self
            .buffer
            .iter()
            .filter(|(m, _)| self.router.spray_budget(&self.shared.cids[*m]) > 0)
            .map(|(_, h)| h.size)
            .sum();
        let room = self.buffer.capacity().saturating_sub(custody) / self.shared.max_size;
        self.router.set_carry_room(usize::try_from(room).unwrap_or(usize::MAX));
        // Spare room: free, or held by blocks a requester already received.
        let useful: u64 =
            self.buffer.iter().filter(|(m, _)| !self.router.is_done(&self.shared.cids[*m])).map(|(_, h)| h.size).sum();
        let spare = self.buffer.capacity().saturating_sub(useful) / self.shared.max_size;
        self.router.set_spare_room(usize::try_from(spare).unwrap_or(usize::MAX));
    }

    /// Stores a message, evicting first blocks a requester is known to have received (a done notice was heard),
    /// then blocks without custody, then those with the least lifetime left (the oldest messages): under a full
    /// buffer a young message has more time to reach its destination.
    fn store(&mut self, now: Time, msg: MsgIdx, size: u64) -> bool {
        let router = &self.router;
        let cids = &self.shared.cids;
        let created = &self.shared.created;
        let rank = |m: MsgIdx, _: &Held| {
            let cid = &cids[m];
            let tier = if router.is_done(cid) {
                0
            } else if router.spray_budget(cid) > 0 {
                2
            } else {
                1
            };
            (tier, created[m])
        };
        let Some(evicted) = self.buffer.insert(msg, size, now, rank) else { return false };
        for m in evicted {
            self.router.forget(&self.shared.cids[m]);
            self.hops.remove(&m);
        }
        true
    }
}

impl Protocol for PollenNode {
    type Msg = Control;

    fn link_up(&mut self, ctx: &mut Ctx<Control>, peer: NodeId) {
        self.router.peer_connected(ctx.now(), peer);
        self.pump(ctx);
    }

    fn link_down(&mut self, ctx: &mut Ctx<Control>, peer: NodeId) {
        self.router.peer_disconnected(ctx.now(), peer);
        self.pump(ctx);
    }

    fn created(&mut self, ctx: &mut Ctx<Control>, msg: MsgIdx, spec: &MessageSpec) {
        if self.store(ctx.now(), msg, spec.size) {
            self.hops.insert(msg, 0);
            self.router.publish(self.shared.cids[msg], self.spray_copies);
            // Neighbours already connected learn of it with the next summary; its wants find it at once.
            self.router.handle_timeout(ctx.now());
            self.pump(ctx);
        }
    }

    fn expect(&mut self, ctx: &mut Ctx<Control>, msg: MsgIdx, _spec: &MessageSpec) {
        self.router.want(ctx.now(), self.shared.cids[msg]);
        self.pump(ctx);
    }

    fn control(&mut self, ctx: &mut Ctx<Control>, from: NodeId, msg: Control) {
        if matches!(msg, Control::Have(_)) {
            self.update_carry_room();
        }
        self.router.handle(ctx.now(), from, msg);
        self.pump(ctx);
    }

    fn block(&mut self, ctx: &mut Ctx<Control>, from: NodeId, msg: MsgIdx, meta: BlockMeta) -> bool {
        let cid = self.shared.cids[msg];
        if self.router.holds(&cid) {
            return true;
        }
        // A block this node wants goes to the application, not into the carry buffer.
        if !self.router.wants_locally(&cid) && !self.store(ctx.now(), msg, ctx.spec(msg).size) {
            return false;
        }
        self.hops.insert(msg, meta.hops + 1);
        self.router.block_arrived(ctx.now(), Some(from), cid);
        self.pump(ctx);
        false
    }

    fn expired(&mut self, ctx: &mut Ctx<Control>, msg: MsgIdx) {
        let cid = self.shared.cids[msg];
        if self.router.wants_locally(&cid) {
            self.router.cancel(ctx.now(), cid);
        }
        // Delivered messages left the buffer but the router still held them: forget them in either case.
        self.buffer.remove(msg);
        self.router.forget(&cid);
        self.hops.remove(&msg);
        self.pump(ctx);
    }

    fn next_timer(&self) -> Option<Time> {
        self.router.poll_timeout()
    }

    fn timer(&mut self, ctx: &mut Ctx<Control>) {
        self.router.handle_timeout(ctx.now());
        self.pump(ctx);
    }

    fn summarize(nodes: &[Self]) -> Option<String> {
        let mut t = RouterStats::default();
        for s in nodes.iter().map(PollenNode::stats) {
            t.wants_in += s.wants_in;
            t.wants_forwarded += s.wants_forwarded;
            t.requests_sent += s.requests_sent;
            t.request_timeouts += s.request_timeouts;
            t.blocks_sent += s.blocks_sent;
            t.offers_sent += s.offers_sent;
            t.carries += s.carries;
            t.focus_handovers += s.focus_handovers;
        }
        Some(format!(
            "wants in {} forwarded {}; requests {} (timed out {}); blocks sent {}; offers {}; carries {}; focus \
             hand-overs {}",
            t.wants_in,
            t.wants_forwarded,
            t.requests_sent,
            t.request_timeouts,
            t.blocks_sent,
            t.offers_sent,
            t.carries,
            t.focus_handovers
        ))
    }
}
