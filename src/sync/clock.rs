//! Version vectors and hybrid stamps: how a merge tells a fork from a copy, and how it picks a
//! winner between two concurrent versions without trusting any device's clock alone.

use crate::time::Time;
use serde::{Deserialize, Serialize, Serializer};

/// A device's random identity in the sync state (not secret; never a key).
pub type DeviceId = [u8; 16];

/// A version vector: for each device, how many of its changes to one thing (an entry, a contact,
/// the settings) this version has seen. Zero counts are never stored, so equal clocks compare
/// equal as values. Held as pairs sorted by device (a clock names a handful of devices), written
/// as a map.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Clock(#[serde(deserialize_with = "super::sorted::pairs")] Vec<(DeviceId, u64)>);

impl Serialize for Clock {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(d, n)| (d, n)))
    }
}

/// How two clocks relate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// The same history.
    Equal,
    /// The left clock is strictly older: the right one has seen everything it has.
    Before,
    /// The left clock is strictly newer.
    After,
    /// Each has seen a change the other has not: a fork.
    Concurrent,
}

impl Clock {
    fn find(&self, device: &DeviceId) -> Result<usize, usize> {
        self.0.binary_search_by(|(d, _)| d.cmp(device))
    }

    /// The count for `device` (0 when absent).
    pub fn get(&self, device: &DeviceId) -> u64 {
        self.find(device).map_or(0, |i| self.0[i].1)
    }

    /// Records one more change by `device`; returns its new count.
    pub fn bump(&mut self, device: DeviceId) -> u64 {
        let i = self.find(&device).unwrap_or_else(|i| {
            self.0.insert(i, (device, 0));
            i
        });
        let n = &mut self.0[i].1;
        *n = n.saturating_add(1);
        *n
    }

    /// Pointwise maximum, in place.
    pub fn join(&mut self, other: &Clock) {
        for &(d, n) in &other.0 {
            match self.find(&d) {
                Ok(i) => self.0[i].1 = self.0[i].1.max(n),
                Err(i) => self.0.insert(i, (d, n)),
            }
        }
    }

    /// Pointwise maximum.
    pub fn joined(&self, other: &Clock) -> Clock {
        let mut out = self.clone();
        out.join(other);
        out
    }

    /// True when this clock has seen everything `other` has (`self >= other`).
    pub fn covers(&self, other: &Clock) -> bool {
        other.0.iter().all(|(d, n)| self.get(d) >= *n)
    }

    /// How `self` relates to `other`.
    pub fn compare(&self, other: &Clock) -> Order {
        match (self.covers(other), other.covers(self)) {
            (true, true) => Order::Equal,
            (true, false) => Order::After,
            (false, true) => Order::Before,
            (false, false) => Order::Concurrent,
        }
    }

    /// The devices and their counts, in device order.
    pub fn iter(&self) -> impl Iterator<Item = (&DeviceId, &u64)> {
        self.0.iter().map(|(d, n)| (d, n))
    }
}

/// A hybrid logical stamp: which of two concurrent versions wins. A version made after seeing
/// another always gets a larger stamp (`time` is at least one past the stamp it replaced), so a
/// device whose clock runs behind can neither lose its later edit nor bring back a value it
/// overwrote; between true forks the later wall time wins, then the larger device id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Stamp {
    /// Seconds: the wall time of the change, pushed past the stamp it replaced.
    pub time: Time,
    /// The device that made the change.
    pub device: DeviceId,
}

impl Stamp {
    /// The stamp of a change made by `device` at wall time `wall` to a version stamped `prev`.
    pub fn next(prev: Option<Stamp>, wall: Time, device: DeviceId) -> Stamp {
        let floor = prev.map_or(Time::MIN, |p| p.time.saturating_add(1));
        Stamp {
            time: wall.max(floor),
            device,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock(pairs: &[(u8, u64)]) -> Clock {
        let mut c = Clock::default();
        for &(d, n) in pairs {
            for _ in 0..n {
                c.bump([d; 16]);
            }
        }
        c
    }

    #[test]
    fn compare_tells_a_fork_from_a_copy() {
        let a = clock(&[(1, 2), (2, 1)]);
        assert_eq!(a.compare(&a.clone()), Order::Equal);
        assert_eq!(clock(&[(1, 1)]).compare(&a), Order::Before);
        assert_eq!(a.compare(&clock(&[(1, 1)])), Order::After);
        let b = clock(&[(1, 1), (3, 1)]);
        assert_eq!(a.compare(&b), Order::Concurrent);
        let j = a.joined(&b);
        assert_eq!(j, clock(&[(1, 2), (2, 1), (3, 1)]));
        assert!(j.covers(&a) && j.covers(&b));
        assert_eq!(Clock::default().compare(&Clock::default()), Order::Equal);
    }

    #[test]
    fn a_clock_is_written_as_a_map_and_read_back_from_any_order() {
        let c = clock(&[(3, 1), (1, 2)]);
        let map: std::collections::BTreeMap<DeviceId, u64> = [([1; 16], 2), ([3; 16], 1)].into();
        let bytes = postcard::to_stdvec(&c).unwrap();
        assert_eq!(bytes, postcard::to_stdvec(&map).unwrap());
        assert_eq!(postcard::from_bytes::<Clock>(&bytes).unwrap(), c);
        // Devices out of order, one twice (a hostile record): read as a map reads it.
        let pairs = vec![([3u8; 16], 1u64), ([1; 16], 7), ([1; 16], 2)];
        let bytes = postcard::to_stdvec(&pairs).unwrap();
        assert_eq!(postcard::from_bytes::<Clock>(&bytes).unwrap(), c);
    }

    #[test]
    fn a_stamp_made_after_another_is_larger_even_on_a_slow_clock() {
        let fast = Stamp::next(None, 2_000_000_000, [9; 16]);
        let slow = Stamp::next(Some(fast), 1_000, [1; 16]);
        assert!(slow > fast);
        assert_eq!(slow.time, 2_000_000_001);
        assert_eq!(
            Stamp::next(Some(fast), 2_100_000_000, [1; 16]).time,
            2_100_000_000
        );
    }
}
