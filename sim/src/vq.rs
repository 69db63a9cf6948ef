// SPDX-License-Identifier: GPL-2.0
//! Between split virtqueues in guest memory and the device model.

use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemory};

use crate::model::{Chain, Completion};

/// The most a driver's readable part is read (a request is 8 bytes; more is
/// ignored, so a hostile chain cannot make the device copy much).
const MAX_READ: usize = 64;

/// Take every available chain off `q`.
pub fn pop_chains<M: GuestMemory>(q: &mut Queue, mem: &M) -> Vec<Chain> {
    let mut out = Vec::new();
    while let Some(dc) = q.pop_descriptor_chain(mem) {
        let head = dc.head_index();
        let mut readable = Vec::new();
        let mut writable = Vec::new();
        for d in dc {
            if d.is_write_only() {
                writable.push((d.addr().0, d.len()));
            } else if readable.len() < MAX_READ {
                let n = (d.len() as usize).min(MAX_READ - readable.len());
                let mut buf = vec![0u8; n];
                if mem.read_slice(&mut buf, d.addr()).is_ok() {
                    readable.extend_from_slice(&buf);
                }
            }
        }
        out.push(Chain { head, readable, writable });
    }
    out
}

/// Write `c`'s data into its chain and mark the chain used.
pub fn complete<M: GuestMemory>(q: &mut Queue, mem: &M, c: &Completion) {
    let mut data = &c.data[..];
    for &(addr, len) in &c.chain.writable {
        if data.is_empty() {
            break;
        }
        let n = data.len().min(len as usize);
        let _ = mem.write_slice(&data[..n], GuestAddress(addr));
        data = &data[n..];
    }
    let _ = q.add_used(mem, c.chain.head, c.used_len);
}
