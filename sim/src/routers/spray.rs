//! Binary spray-and-wait (Spyropoulos, Psounis, Raghavendra, WDTN 2005): a message starts with L copies; a node
//! holding n > 1 hands ⌊n/2⌋ to every node it meets that lacks the message, and a node holding one copy waits to
//! meet the destination. Neighbours exchange summary vectors (the ids they hold) on contact, as in the ONE
//! simulator's implementation; buffers drop the oldest message when full, the ONE's default.

use std::collections::{BTreeMap, BTreeSet};

use super::buffer::{Buffer, Held};
use crate::engine::{BlockMeta, Ctx, MsgIdx, Protocol};
use crate::model::{MessageSpec, NodeId, Time};

/// Bytes of one id in a summary vector, and of the vector's header.
const SV_ENTRY_BYTES: u64 = 8;
const SV_HEADER_BYTES: u64 = 16;

/// One node running binary spray-and-wait.
#[derive(Debug, Clone)]
pub struct SprayAndWait {
    initial_copies: u32,
    buffer: Buffer,
    copies: BTreeMap<MsgIdx, u32>,
    hops: BTreeMap<MsgIdx, u32>,
    /// Copies promised to a neighbour in a transfer still on air: (peer, msg) → copies.
    pending: BTreeMap<(NodeId, MsgIdx), u32>,
    /// What each neighbour holds (from its summary vector and what we sent it).
    known: BTreeMap<NodeId, BTreeSet<MsgIdx>>,
    received: BTreeSet<MsgIdx>,
}

impl SprayAndWait {
    /// A node that starts its own messages with `copies` copies, with a buffer of `buffer_bytes`.
    pub fn new(copies: u32, buffer_bytes: u64) -> Self {
        Self {
            initial_copies: copies.max(1),
            buffer: Buffer::new(buffer_bytes),
            copies: BTreeMap::new(),
            hops: BTreeMap::new(),
            pending: BTreeMap::new(),
            known: BTreeMap::new(),
            received: BTreeSet::new(),
        }
    }

    fn store(&mut self, now: Time, msg: MsgIdx, size: u64, copies: u32, hops: u32) -> bool {
        let oldest = |_: MsgIdx, h: &Held| h.since;
        let Some(evicted) = self.buffer.insert(msg, size, now, oldest) else { return false };
        for m in evicted {
            self.drop_msg(m);
        }
        self.copies.insert(msg, copies);
        self.hops.insert(msg, hops);
        true
    }

    fn drop_msg(&mut self, msg: MsgIdx) {
        self.buffer.remove(msg);
        self.copies.remove(&msg);
        self.hops.remove(&msg);
        self.pending.retain(|(_, m), _| *m != msg);
    }

    fn available(&self, msg: MsgIdx) -> u32 {
        let promised: u32 = self.pending.iter().filter(|((_, m), _)| *m == msg).map(|(_, c)| *c).sum();
        self.copies.get(&msg).copied().unwrap_or(0).saturating_sub(promised)
    }

    /// Sends `peer` what it should get: messages addressed to it first, then spray copies, oldest first.
    fn offer_to(&mut self, ctx: &mut Ctx<Vec<MsgIdx>>, peer: NodeId) {
        let Some(known) = self.known.get(&peer) else { return };
        let mut held: Vec<(bool, Time, MsgIdx)> = self
            .buffer
            .iter()
            .filter(|(m, _)| !known.contains(m) && !self.pending.contains_key(&(peer, *m)))
            .map(|(m, h)| (ctx.spec(m).dst != peer, h.since, m))
            .collect();
        held.sort();
        for (not_for_peer, _, msg) in held {
            let hops = self.hops.get(&msg).copied().unwrap_or(0);
            let give = if not_for_peer {
                let n = self.available(msg);
                if n < 2 {
                    continue;
                }
                n / 2
            } else {
                1
            };
            self.pending.insert((peer, msg), give);
            self.known.entry(peer).or_default().insert(msg);
            ctx.send_block(peer, msg, BlockMeta { hops, copies: give });
        }
    }
}

impl Protocol for SprayAndWait {
    /// A summary vector: the ids this node holds or received.
    type Msg = Vec<MsgIdx>;

    fn link_up(&mut self, ctx: &mut Ctx<Self::Msg>, peer: NodeId) {
        let ids: Vec<MsgIdx> = self.buffer.iter().map(|(m, _)| m).chain(self.received.iter().copied()).collect();
        let bytes = SV_HEADER_BYTES + SV_ENTRY_BYTES * ids.len() as u64;
        ctx.send_control(peer, ids, bytes);
    }

    fn link_down(&mut self, _ctx: &mut Ctx<Self::Msg>, peer: NodeId) {
        self.known.remove(&peer);
        self.pending.retain(|(p, _), _| *p != peer);
    }

    fn created(&mut self, ctx: &mut Ctx<Self::Msg>, msg: MsgIdx, spec: &MessageSpec) {
        if self.store(ctx.now(), msg, spec.size, self.initial_copies, 0) {
            let peers: Vec<NodeId> = self.known.keys().copied().collect();
            for peer in peers {
                self.offer_to(ctx, peer);
            }
        }
    }

    fn expect(&mut self, _ctx: &mut Ctx<Self::Msg>, _msg: MsgIdx, _spec: &MessageSpec) {}

    fn control(&mut self, ctx: &mut Ctx<Self::Msg>, from: NodeId, ids: Vec<MsgIdx>) {
        self.known.insert(from, ids.into_iter().collect());
        self.offer_to(ctx, from);
    }

    fn block(&mut self, ctx: &mut Ctx<Self::Msg>, from: NodeId, msg: MsgIdx, meta: BlockMeta) -> bool {
        self.known.entry(from).or_default().insert(msg);
        if ctx.spec(msg).dst == ctx.node() {
            let fresh = self.received.insert(msg);
            if fresh {
                ctx.delivered(msg, meta.hops + 1);
            }
            return !fresh;
        }
        if self.buffer.contains(msg) {
            return true;
        }
        if self.store(ctx.now(), msg, ctx.spec(msg).size, meta.copies.max(1), meta.hops + 1) {
            let peers: Vec<NodeId> = self.known.keys().copied().collect();
            for peer in peers {
                self.offer_to(ctx, peer);
            }
        }
        false
    }

    fn block_sent(&mut self, ctx: &mut Ctx<Self::Msg>, to: NodeId, msg: MsgIdx, _meta: BlockMeta) {
        let Some(given) = self.pending.remove(&(to, msg)) else { return };
        if ctx.spec(msg).dst == to {
            // Delivered: the copies left here can never be used.
            self.drop_msg(msg);
        } else if let Some(c) = self.copies.get_mut(&msg) {
            *c = c.saturating_sub(given).max(1);
        }
    }

    fn expired(&mut self, _ctx: &mut Ctx<Self::Msg>, msg: MsgIdx) {
        self.drop_msg(msg);
        self.received.remove(&msg);
    }

    fn next_timer(&self) -> Option<Time> {
        None
    }

    fn timer(&mut self, _ctx: &mut Ctx<Self::Msg>) {}
}
