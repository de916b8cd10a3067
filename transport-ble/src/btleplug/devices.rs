//! The table between btleplug's `PeripheralId`s and the driver's small [`DeviceId`]s.
//!
//! A `PeripheralId` is a BlueZ object path on Linux, a per-host UUID on macOS and an address on Windows; none of them
//! is a `u64`, so the driver hands out its own ids, one per peripheral, in order of first sighting.

use std::collections::HashMap;
use std::hash::Hash;

use bytes::Bytes;

use crate::driver::DeviceId;

/// Peripherals remembered at most. Only Pollen advertisers and dialed peripherals enter the table.
pub(crate) const MAX_DEVICES: usize = 1024;

struct Entry<P> {
    peripheral: P,
    /// The last Pollen service data seen from it.
    advert: Option<Bytes>,
    /// Value of the table's clock when the entry was last touched.
    touched: u64,
}

/// A bounded two-way map; the least recently touched entry that `pinned` allows goes first when it is full.
pub(crate) struct DeviceTable<P> {
    ids: HashMap<P, DeviceId>,
    entries: HashMap<DeviceId, Entry<P>>,
    next: u64,
    clock: u64,
    capacity: usize,
}

impl<P: Clone + Eq + Hash> DeviceTable<P> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { ids: HashMap::new(), entries: HashMap::new(), next: 1, clock: 0, capacity: capacity.max(1) }
    }

    /// The id of `peripheral`, made on first use. `pinned` names ids that must not be evicted (live links).
    pub(crate) fn intern(&mut self, peripheral: &P, pinned: impl Fn(DeviceId) -> bool) -> DeviceId {
        self.clock += 1;
        if let Some(&id) = self.ids.get(peripheral) {
            if let Some(entry) = self.entries.get_mut(&id) {
                entry.touched = self.clock;
            }
            return id;
        }
        if self.entries.len() >= self.capacity {
            let victim =
                self.entries.iter().filter(|(id, _)| !pinned(**id)).min_by_key(|(_, e)| e.touched).map(|(id, _)| *id);
            if let Some(victim) = victim {
                if let Some(entry) = self.entries.remove(&victim) {
                    self.ids.remove(&entry.peripheral);
                }
            }
        }
        let id = DeviceId(self.next);
        self.next += 1;
        self.ids.insert(peripheral.clone(), id);
        self.entries.insert(id, Entry { peripheral: peripheral.clone(), advert: None, touched: self.clock });
        id
    }

    /// The id of a peripheral already in the table.
    pub(crate) fn get(&self, peripheral: &P) -> Option<DeviceId> {
        self.ids.get(peripheral).copied()
    }

    /// The peripheral behind `id`.
    pub(crate) fn peripheral(&self, id: DeviceId) -> Option<&P> {
        self.entries.get(&id).map(|e| &e.peripheral)
    }

    /// Remembers the service data `id` advertised last.
    pub(crate) fn set_advert(&mut self, id: DeviceId, advert: Bytes) {
        if let Some(entry) = self.entries.get_mut(&id) {
            entry.advert = Some(advert);
        }
    }

    /// The service data `id` advertised last.
    pub(crate) fn advert(&self, id: DeviceId) -> Option<&Bytes> {
        self.entries.get(&id).and_then(|e| e.advert.as_ref())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_two_way() {
        let mut t = DeviceTable::new(8);
        let a = t.intern(&"/org/bluez/hci0/dev_A", |_| false);
        let b = t.intern(&"/org/bluez/hci0/dev_B", |_| false);
        assert_ne!(a, b);
        assert_eq!(t.intern(&"/org/bluez/hci0/dev_A", |_| false), a);
        assert_eq!(t.peripheral(b), Some(&"/org/bluez/hci0/dev_B"));
        assert_eq!(t.get(&"/org/bluez/hci0/dev_B"), Some(b));
        assert_eq!(t.get(&"nope"), None);
        assert_eq!(t.advert(a), None);
        t.set_advert(a, Bytes::from_static(b"adv"));
        assert_eq!(t.advert(a), Some(&Bytes::from_static(b"adv")));
    }

    #[test]
    fn full_table_evicts_the_least_recent_unpinned_entry() {
        let mut t = DeviceTable::new(2);
        let a = t.intern(&1, |_| false);
        let b = t.intern(&2, |_| false);
        // `a` is older but pinned (it has a link): `b` goes.
        let c = t.intern(&3, |id| id == a);
        assert_eq!(t.len(), 2);
        assert_eq!(t.peripheral(a), Some(&1));
        assert_eq!(t.peripheral(b), None);
        assert_eq!(t.peripheral(c), Some(&3));
        // A returning peripheral gets a fresh id, never a reused one.
        let b2 = t.intern(&2, |id| id == a);
        assert!(b2 != b && b2 != a && b2 != c);
    }
}
