//! Direct delivery: the source carries its message until it meets the destination. One transmission per delivered
//! message, the lower bound on overhead.

use std::collections::BTreeSet;

use super::buffer::{Buffer, Held};
use crate::engine::{BlockMeta, Ctx, MsgIdx, Protocol};
use crate::model::{MessageSpec, NodeId, Time};

/// One node running direct delivery.
#[derive(Debug, Clone)]
pub struct DirectDelivery {
    buffer: Buffer,
    neighbors: BTreeSet<NodeId>,
    received: BTreeSet<MsgIdx>,
}

impl DirectDelivery {
    /// A node with a buffer of `buffer_bytes`.
    pub fn new(buffer_bytes: u64) -> Self {
        Self { buffer: Buffer::new(buffer_bytes), neighbors: BTreeSet::new(), received: BTreeSet::new() }
    }
}

impl Protocol for DirectDelivery {
    type Msg = ();

    fn link_up(&mut self, ctx: &mut Ctx<()>, peer: NodeId) {
        self.neighbors.insert(peer);
        let due: Vec<MsgIdx> = self.buffer.iter().map(|(m, _)| m).filter(|m| ctx.spec(*m).dst == peer).collect();
        for msg in due {
            ctx.send_block(peer, msg, BlockMeta::default());
        }
    }

    fn link_down(&mut self, _ctx: &mut Ctx<()>, peer: NodeId) {
        self.neighbors.remove(&peer);
    }

    fn created(&mut self, ctx: &mut Ctx<()>, msg: MsgIdx, spec: &MessageSpec) {
        let oldest = |_: MsgIdx, h: &Held| h.since;
        if self.buffer.insert(msg, spec.size, ctx.now(), oldest).is_some() && self.neighbors.contains(&spec.dst) {
            ctx.send_block(spec.dst, msg, BlockMeta::default());
        }
    }

    fn expect(&mut self, _ctx: &mut Ctx<()>, _msg: MsgIdx, _spec: &MessageSpec) {}

    fn control(&mut self, _ctx: &mut Ctx<()>, _from: NodeId, _msg: ()) {}

    fn block(&mut self, ctx: &mut Ctx<()>, _from: NodeId, msg: MsgIdx, meta: BlockMeta) -> bool {
        let fresh = self.received.insert(msg);
        if fresh {
            ctx.delivered(msg, meta.hops + 1);
        }
        !fresh
    }

    fn block_sent(&mut self, _ctx: &mut Ctx<()>, _to: NodeId, msg: MsgIdx, _meta: BlockMeta) {
        self.buffer.remove(msg);
    }

    fn expired(&mut self, _ctx: &mut Ctx<()>, msg: MsgIdx) {
        self.buffer.remove(msg);
        self.received.remove(&msg);
    }

    fn next_timer(&self) -> Option<Time> {
        None
    }

    fn timer(&mut self, _ctx: &mut Ctx<()>) {}
}
