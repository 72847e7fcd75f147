//! Reading the sync state's maps and sets in bulk. A record holds some 10,000 entries, each with
//! a clock and a set of list values: inserting them one by one into trees is most of what
//! decoding a record costs, while collecting them first and building each collection from its
//! (already sorted) elements is linear. The result is the one repeated inserts would give, for
//! any input: sorted by key, a repeated key keeping its last value.

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

/// The most a decoder reserves ahead on the count a record claims (more is grown into).
const MAX_RESERVE: usize = 1 << 20;

/// A map's pairs in the order they were written.
fn read_pairs<'de, D, K, V>(d: D) -> Result<Vec<(K, V)>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de>,
    V: Deserialize<'de>,
{
    struct Pairs<K, V>(PhantomData<(K, V)>);
    impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Visitor<'de> for Pairs<K, V> {
        type Value = Vec<(K, V)>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let most = MAX_RESERVE / std::mem::size_of::<(K, V)>().max(1);
            let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0).min(most));
            while let Some(pair) = map.next_entry()? {
                out.push(pair);
            }
            Ok(out)
        }
    }
    d.deserialize_map(Pairs(PhantomData))
}

/// A map's pairs sorted by key, a repeated key keeping its last value.
pub(super) fn pairs<'de, D, K, V>(d: D) -> Result<Vec<(K, V)>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de> + Ord,
    V: Deserialize<'de>,
{
    let mut pairs: Vec<(K, V)> = read_pairs(d)?;
    // Stable, and linear on sorted input.
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    pairs.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            std::mem::swap(later, kept);
        }
        same
    });
    Ok(pairs)
}

/// A `BTreeMap` built in one pass (`#[serde(deserialize_with = "sorted::map")]`).
pub(super) fn map<'de, D, K, V>(d: D) -> Result<BTreeMap<K, V>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de> + Ord,
    V: Deserialize<'de>,
{
    // `from_iter` sorts (stably) and keeps the last of a repeated key, as inserts would.
    Ok(read_pairs(d)?.into_iter().collect())
}

/// A sequence sorted, equal elements once.
pub(super) fn set<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Ord,
{
    let mut items = Vec::<T>::deserialize(d)?;
    items.sort();
    items.dedup();
    Ok(items)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use std::collections::{BTreeMap, BTreeSet};

    #[derive(Deserialize)]
    struct Bulk {
        #[serde(deserialize_with = "super::map")]
        map: BTreeMap<u8, u8>,
        #[serde(deserialize_with = "super::pairs")]
        pairs: Vec<(u8, u8)>,
        #[serde(deserialize_with = "super::set")]
        set: Vec<u8>,
    }

    #[derive(Deserialize)]
    struct OneByOne {
        map: BTreeMap<u8, u8>,
        pairs: BTreeMap<u8, u8>,
        set: BTreeSet<u8>,
    }

    #[test]
    fn bulk_reads_give_what_inserts_give_for_any_input() {
        // Unsorted, with repeated keys and elements (no writer makes these; a hostile record can).
        let map = [(3u8, 1u8), (1, 2), (3, 9), (2, 0), (1, 5)];
        let set = [5u8, 1, 5, 0, 1];
        let bytes = postcard::to_stdvec(&(map.to_vec(), map.to_vec(), set.to_vec())).unwrap();
        let bulk: Bulk = postcard::from_bytes(&bytes).unwrap();
        let one: OneByOne = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(bulk.map, one.map);
        assert_eq!(bulk.pairs, one.pairs.into_iter().collect::<Vec<_>>());
        assert_eq!(bulk.set, one.set.into_iter().collect::<Vec<_>>());
        assert_eq!(bulk.map, [(1, 5), (2, 0), (3, 9)].into());
    }
}
