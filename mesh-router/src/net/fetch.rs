//! Fetching whole files: walks a UnixFS DAG from its root, wanting a bounded window of children at a time.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use cid::Cid;

use crate::unixfs::{decode_file_node, DAG_PB_CODEC};

/// Identifies one `get`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GetId(pub u64);

/// How far a `get` has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// Blocks held so far.
    pub blocks: u64,
    /// Blocks known to exist (grows as the DAG is discovered).
    pub blocks_known: u64,
    /// Bytes of blocks held so far.
    pub bytes: u64,
    /// The file's size, once the root is known.
    pub file_size: Option<u64>,
}

#[derive(Debug)]
struct Walk {
    root: Cid,
    queue: VecDeque<Cid>,
    outstanding: BTreeSet<Cid>,
    progress: Progress,
}

/// What happened to a `get` after a block arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    Progress(GetId, Progress),
    Done(GetId, Cid, Progress),
    Failed(GetId, String),
}

/// All running `get`s.
#[derive(Debug)]
pub(super) struct Fetches {
    next: u64,
    walks: BTreeMap<GetId, Walk>,
    window: usize,
}

impl Fetches {
    pub(super) fn new(window: usize) -> Self {
        Self { next: 1, walks: BTreeMap::new(), window: window.max(1) }
    }

    /// Starts a walk at `root`; the caller wants whatever [`Self::next_wants`] returns.
    pub(super) fn start(&mut self, root: Cid) -> GetId {
        let id = GetId(self.next);
        self.next += 1;
        let progress = Progress { blocks_known: 1, ..Progress::default() };
        self.walks.insert(id, Walk { root, queue: VecDeque::from([root]), outstanding: BTreeSet::new(), progress });
        id
    }

    /// Drops a walk (the caller cancels its outstanding wants).
    pub(super) fn abort(&mut self, id: GetId) -> Vec<Cid> {
        self.walks.remove(&id).map(|w| w.outstanding.into_iter().collect()).unwrap_or_default()
    }

    /// CIDs to want now, within each walk's window.
    pub(super) fn next_wants(&mut self) -> Vec<Cid> {
        let mut out = Vec::new();
        for walk in self.walks.values_mut() {
            while walk.outstanding.len() < self.window {
                let Some(cid) = walk.queue.pop_front() else { break };
                if walk.outstanding.insert(cid) {
                    out.push(cid);
                }
            }
        }
        out
    }

    /// A block a walk was waiting for is in the store.
    pub(super) fn on_block(&mut self, cid: &Cid, data: &[u8]) -> Vec<Step> {
        let mut steps = Vec::new();
        for (&id, walk) in self.walks.iter_mut() {
            if !walk.outstanding.remove(cid) {
                continue;
            }
            walk.progress.blocks += 1;
            walk.progress.bytes += data.len() as u64;
            if cid.codec() == DAG_PB_CODEC {
                match decode_file_node(data) {
                    Ok(node) => {
                        if *cid == walk.root {
                            walk.progress.file_size = Some(node.file_size);
                        }
                        walk.progress.blocks_known += node.children.len() as u64;
                        walk.queue.extend(node.children.iter().map(|(c, _)| *c));
                    }
                    Err(e) => {
                        steps.push(Step::Failed(id, format!("block {cid} is not a UnixFS file node: {e}")));
                        continue;
                    }
                }
            } else if *cid == walk.root {
                walk.progress.file_size = Some(data.len() as u64);
            }
            if walk.queue.is_empty() && walk.outstanding.is_empty() {
                steps.push(Step::Done(id, walk.root, walk.progress));
            } else {
                steps.push(Step::Progress(id, walk.progress));
            }
        }
        for step in &steps {
            if let Step::Done(id, ..) | Step::Failed(id, _) = step {
                self.walks.remove(id);
            }
        }
        steps
    }

    /// Whether any walk waits for `cid`.
    pub(super) fn waits_for(&self, cid: &Cid) -> bool {
        self.walks.values().any(|w| w.outstanding.contains(cid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unixfs::{import_bytes, ImportOptions};

    #[test]
    fn walks_a_dag_in_a_bounded_window() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let options = ImportOptions { chunk_size: 1000, max_children: 3 };
        let (summary, blocks) = import_bytes(&data, &options).unwrap();
        let by_cid: BTreeMap<Cid, Vec<u8>> = blocks.into_iter().map(|b| (b.cid, b.data)).collect();
        let mut fetches = Fetches::new(2);
        let id = fetches.start(summary.root);
        let mut done = None;
        let mut rounds = 0;
        while done.is_none() {
            let wants = fetches.next_wants();
            assert!(wants.len() <= 2, "window exceeded");
            assert!(!wants.is_empty(), "stalled");
            for cid in wants {
                for step in fetches.on_block(&cid, &by_cid[&cid]) {
                    if let Step::Done(got, root, progress) = step {
                        assert_eq!((got, root), (id, summary.root));
                        done = Some(progress);
                    }
                }
            }
            rounds += 1;
        }
        let progress = done.unwrap();
        assert_eq!(progress.blocks, by_cid.len() as u64);
        assert_eq!(progress.file_size, Some(5000));
        assert!(rounds > 2);
    }
}
