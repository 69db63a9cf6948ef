// SPDX-License-Identifier: GPL-2.0
//! `virtio-gpio-sim bench`: the device's own cost per request, measured
//! without a guest: requests are laid out as a driver would lay them out in
//! a split virtqueue in memory, then taken off, executed and answered by the
//! same code the vhost-user backend runs.

use std::time::Instant;

use virtio_bindings::bindings::virtio_ring::{VRING_DESC_F_NEXT, VRING_DESC_F_WRITE};
use virtio_queue::desc::{split::Descriptor as SplitDescriptor, RawDescriptor};
use virtio_queue::mock::MockSplitQueue;
use virtio_queue::Queue;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::model::{Config, Device};
use crate::proto::*;
use crate::vq;

pub const QSIZE: u16 = 256;
const REQ_BASE: u64 = 0x10_0000;
const RESP_BASE: u64 = 0x20_0000;

/// A driver's view of one split virtqueue in a flat guest memory.
pub struct Ring<'a> {
    pub mock: MockSplitQueue<'a, GuestMemoryMmap>,
    pub queue: Queue,
}

pub fn memory() -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x40_0000)]).unwrap()
}

impl<'a> Ring<'a> {
    pub fn new(mem: &'a GuestMemoryMmap) -> Self {
        let mock = MockSplitQueue::create(mem, GuestAddress(0), QSIZE);
        let queue = mock.create_queue::<Queue>().unwrap();
        Ring { mock, queue }
    }

    /// Make `bufs` available: each is (readable bytes, writable length).
    /// Returns the writable addresses, in order.
    pub fn add(&self, mem: &GuestMemoryMmap, bufs: &[(Vec<u8>, u32)]) -> Vec<u64> {
        let mut descs = Vec::new();
        let mut wr = Vec::new();
        for (i, (r, wlen)) in bufs.iter().enumerate() {
            let ra = REQ_BASE + 64 * i as u64;
            let wa = RESP_BASE + 0x1000 * i as u64;
            mem.write_slice(r, GuestAddress(ra)).unwrap();
            mem.write_slice(&vec![0xee; *wlen as usize], GuestAddress(wa)).unwrap();
            let n = descs.len() as u16;
            descs.push(RawDescriptor::from(SplitDescriptor::new(
                ra,
                r.len() as u32,
                VRING_DESC_F_NEXT as u16,
                n + 1,
            )));
            descs.push(RawDescriptor::from(SplitDescriptor::new(wa, *wlen, VRING_DESC_F_WRITE as u16, 0)));
            wr.push(wa);
        }
        self.mock.add_desc_chains(&descs, 0).unwrap();
        wr
    }

    /// The used ring's entries from `from` on: (head, len).
    #[cfg(test)]
    pub fn used(&self, from: u16) -> Vec<(u16, u32)> {
        let idx = self.mock.used().idx().load();
        (from..idx)
            .map(|i| {
                let e = self.mock.used().ring().ref_at((i % QSIZE) as usize).unwrap().load();
                (e.id() as u16, e.len())
            })
            .collect()
    }
}

pub fn request(msg: u16, gpio: u16, value: u32) -> Vec<u8> {
    let mut r = Vec::with_capacity(8);
    r.extend_from_slice(&msg.to_le_bytes());
    r.extend_from_slice(&gpio.to_le_bytes());
    r.extend_from_slice(&value.to_le_bytes());
    r
}

pub fn main(args: &[String]) -> Result<(), String> {
    let mut total: u64 = 2_000_000;
    let mut batch: usize = 32;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--requests" => total = it.next().and_then(|s| s.parse().ok()).ok_or("bad --requests")?,
            "--batch" => batch = it.next().and_then(|s| s.parse().ok()).ok_or("bad --batch")?,
            _ => return Err(format!("unknown option {a}")),
        }
    }
    let batch = batch.clamp(1, QSIZE as usize / 2);
    let mem = memory();
    let mut ring = Ring::new(&mem);
    let mut dev = Device::new(Config::new(batch as u16));
    let bufs: Vec<(Vec<u8>, u32)> = (0..batch)
        .map(|i| {
            let msg = if i % 2 == 0 { MSG_SET_VALUE } else { MSG_GET_VALUE };
            (request(msg, i as u16, 1), RESPONSE_SIZE)
        })
        .collect();
    let start = Instant::now();
    let mut done: u64 = 0;
    while done < total {
        ring.add(&mem, &bufs);
        let chains = vq::pop_chains(&mut ring.queue, &mem);
        for c in dev.on_requests(chains, Instant::now()) {
            vq::complete(&mut ring.queue, &mem, &c);
        }
        done += batch as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "requests={done} batch={batch} seconds={secs:.3} requests_per_second={:.0} ns_per_request={:.0}",
        done as f64 / secs,
        secs * 1e9 / done as f64
    );
    Ok(())
}
