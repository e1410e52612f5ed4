//! Where the interpreter keeps globals: the live BPF maps, or memory in unit tests.
//!
//! Values travel as the bytes the BPF programs use, laid out by the compiler's
//! `GlobalSpec`, so a global reads the same from a probe and from `end`.

use libbpf_rs::{MapCore, MapFlags, MapHandle};
use std::collections::BTreeMap;

/// Map access by index into `BpfObject::maps`.
pub trait Store {
    fn get(&self, map: u32, key: &[u8]) -> Option<Vec<u8>>;
    /// One value per possible CPU.
    fn get_percpu(&self, map: u32, key: &[u8]) -> Option<Vec<Vec<u8>>>;
    /// Fails when the map is full (the key is new and there is no room).
    fn put(&mut self, map: u32, key: &[u8], value: &[u8]) -> Result<(), String>;
    fn put_percpu(&mut self, map: u32, key: &[u8], values: &[Vec<u8>]) -> Result<(), String>;
    fn remove(&mut self, map: u32, key: &[u8]);
    fn keys(&self, map: u32) -> Vec<Vec<u8>>;
    /// Values in a per-CPU map entry.
    fn cpus(&self) -> usize;
}

/// The maps of a loaded object.
pub struct KernelStore<'m> {
    pub maps: &'m [MapHandle],
    pub cpus: usize,
}

impl Store for KernelStore<'_> {
    fn get(&self, map: u32, key: &[u8]) -> Option<Vec<u8>> {
        self.maps[map as usize]
            .lookup(key, MapFlags::ANY)
            .ok()
            .flatten()
    }

    fn get_percpu(&self, map: u32, key: &[u8]) -> Option<Vec<Vec<u8>>> {
        self.maps[map as usize]
            .lookup_percpu(key, MapFlags::ANY)
            .ok()
            .flatten()
    }

    fn put(&mut self, map: u32, key: &[u8], value: &[u8]) -> Result<(), String> {
        self.maps[map as usize]
            .update(key, value, MapFlags::ANY)
            .map_err(|e| e.to_string())
    }

    fn put_percpu(&mut self, map: u32, key: &[u8], values: &[Vec<u8>]) -> Result<(), String> {
        self.maps[map as usize]
            .update_percpu(key, values, MapFlags::ANY)
            .map_err(|e| e.to_string())
    }

    fn remove(&mut self, map: u32, key: &[u8]) {
        let _ = self.maps[map as usize].delete(key);
    }

    fn keys(&self, map: u32) -> Vec<Vec<u8>> {
        self.maps[map as usize].keys().collect()
    }

    fn cpus(&self) -> usize {
        self.cpus
    }
}

/// Per-CPU values by key.
type Entries = BTreeMap<Vec<u8>, Vec<Vec<u8>>>;

/// An in-memory store with fixed capacities, for tests of the interpreter.
#[derive(Default)]
pub struct MemStore {
    pub maps: Vec<(u32, Entries)>,
}

impl MemStore {
    /// One map per capacity.
    pub fn new(capacities: &[u32]) -> MemStore {
        MemStore {
            maps: capacities.iter().map(|&c| (c, BTreeMap::new())).collect(),
        }
    }
}

impl Store for MemStore {
    fn get(&self, map: u32, key: &[u8]) -> Option<Vec<u8>> {
        self.maps[map as usize].1.get(key).map(|v| v[0].clone())
    }

    fn get_percpu(&self, map: u32, key: &[u8]) -> Option<Vec<Vec<u8>>> {
        self.maps[map as usize].1.get(key).cloned()
    }

    fn put(&mut self, map: u32, key: &[u8], value: &[u8]) -> Result<(), String> {
        self.put_percpu(map, key, &[value.to_vec()])
    }

    fn put_percpu(&mut self, map: u32, key: &[u8], values: &[Vec<u8>]) -> Result<(), String> {
        let (cap, m) = &mut self.maps[map as usize];
        if !m.contains_key(key) && m.len() >= *cap as usize {
            return Err("map is full".into());
        }
        m.insert(key.to_vec(), values.to_vec());
        Ok(())
    }

    fn remove(&mut self, map: u32, key: &[u8]) {
        self.maps[map as usize].1.remove(key);
    }

    fn keys(&self, map: u32) -> Vec<Vec<u8>> {
        self.maps[map as usize].1.keys().cloned().collect()
    }

    fn cpus(&self) -> usize {
        1
    }
}
