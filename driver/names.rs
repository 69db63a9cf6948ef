// SPDX-License-Identifier: GPL-2.0

//! Line names: GET_LINE_NAMES, and a names block checked line by line (the
//! device is untrusted: a bad name costs only its own line).

use kernel::prelude::*;

use super::gpio;
use super::requestq::{etimedout, Entry, ReqMsg, Response};
use super::uapi::*;
use super::virtio::dev_log;
use super::VirtioGpio;

/// The largest names block we accept; a device asking for more is broken.
pub(crate) const MAX_NAMES_SIZE: u32 = 1 << 20;

impl VirtioGpio {
    /// The line names, if the device has a valid names block. A device
    /// that gives none, or a bad one, gets a chip without names (and a log
    /// line); a device that does not answer in time fails probe.
    pub(crate) fn fetch_names(&self) -> Result<Option<gpio::LineNames>> {
        let size = self.names_size;
        if size == 0 {
            return Ok(None);
        }
        // The answer is one buffer: the status byte and the block.
        let limit = (MAX_NAMES_SIZE as usize).min(self.vdev.max_dma_size().saturating_sub(1));
        if size as usize > limit {
            dev_log!(
                self.vdev,
                ERR,
                "gpio_names_size {} is larger than the {} bytes one buffer can take, registering without names\n",
                size,
                limit
            );
            return Ok(None);
        }
        let mut buf = KVec::new();
        if buf.extend_with(size as usize + 1, 0, GFP_KERNEL).is_err() {
            dev_log!(
                self.vdev,
                ERR,
                "no memory for a names block of {} bytes, registering without names\n",
                size
            );
            return Ok(None);
        }
        let slot = self.ngpio as usize;
        let msg = KBox::new(
            ReqMsg {
                slot: slot as u16,
                req: VirtioGpioRequest::new(VIRTIO_GPIO_MSG_GET_LINE_NAMES, 0, 0).to_bytes(),
                res: Response::Names(buf),
            },
            GFP_KERNEL,
        )?;
        let mut ent = [Entry::new(slot, msg)];
        let mut q = self.rq.lock();
        let mut dl = Self::deadline(&q, None);
        let r = self.transact(&mut q, &mut ent, &mut dl);
        // The names slot is used once: whatever came back is ours to drop.
        let back = ent[0]
            .done
            .take()
            .or_else(|| q.slots[slot].free.take().map(|m| (m, 0)));
        drop(q);
        if let Err(e) = r {
            // A device that does not answer, a prober that was killed or a
            // device going away end probe; anything else (the queue could
            // not take a buffer this large) only costs the names.
            self.note_timeout(&r, VIRTIO_GPIO_MSG_GET_LINE_NAMES, 0);
            if e == etimedout() || e == ERESTARTSYS || e == ENODEV {
                return Err(e);
            }
            dev_log!(
                self.vdev,
                ERR,
                "GET_LINE_NAMES failed ({:?}), registering without names\n",
                e
            );
            return Ok(None);
        }
        let Some((msg, len)) = back else {
            return Ok(None);
        };
        let Response::Names(block) = &msg.res else {
            return Ok(None);
        };
        if len != size + 1 {
            dev_log!(
                self.vdev,
                ERR,
                "GET_LINE_NAMES answer has length {}, expected {}\n",
                len,
                size + 1
            );
            return Ok(None);
        }
        if block[0] != VIRTIO_GPIO_STATUS_OK {
            dev_log!(
                self.vdev,
                ERR,
                "GET_LINE_NAMES failed: device status {}\n",
                block[0]
            );
            return Ok(None);
        }
        let block = &block[1..];
        let cleaned = clean_names(block, self.ngpio)
            .and_then(|(names, dropped)| Ok((gpio::LineNames::new(&names)?, dropped)));
        let (names, dropped) = match cleaned {
            Ok(c) => c,
            Err(_) => {
                dev_log!(
                    self.vdev,
                    ERR,
                    "no memory for the line names, registering without names\n"
                );
                return Ok(None);
            }
        };
        if let Some(why) = dropped.why {
            dev_log!(
                self.vdev,
                WARNING,
                "bad line names block ({}): {} of {} lines left unnamed\n",
                why,
                dropped.lines,
                self.ngpio
            );
        }
        Ok(Some(names))
    }
}

/// Why a line lost the name the device gave it (the first such reason).
#[derive(Default)]
pub(crate) struct Unnamed {
    pub(crate) lines: u32,
    pub(crate) why: Option<&'static str>,
}

impl Unnamed {
    pub(crate) fn add(&mut self, why: &'static str) {
        self.lines += 1;
        self.why.get_or_insert(why);
    }
}

/// The names block as gpiolib gets it: exactly `ngpio` NUL-terminated names,
/// the device's `i`th name for line `i`. A line whose name is missing (the
/// block is short, or its last name has no NUL), is not printable 7-bit
/// ASCII, or is an earlier line's, gets none (an empty name): one bad name
/// costs only its line. Returns the block and what was dropped.
pub(crate) fn clean_names(block: &[u8], ngpio: u16) -> Result<(KVec<u8>, Unnamed)> {
    let n = ngpio as usize;
    let mut names: KVec<&[u8]> = KVec::with_capacity(n, GFP_KERNEL)?;
    let mut dropped = Unnamed::default();
    let mut rest = block;
    let mut unterminated = 0;
    while names.len() < n && !rest.is_empty() {
        let Some(end) = rest.iter().position(|&b| b == 0) else {
            dropped.add("a name is not NUL-terminated");
            unterminated = 1;
            break;
        };
        let name = &rest[..end];
        rest = &rest[end + 1..];
        if name.iter().all(|b| (b' '..=b'~').contains(b)) {
            names.push(name, GFP_KERNEL)?;
        } else {
            dropped.add("a name is not printable 7-bit ASCII");
            names.push(&[], GFP_KERNEL)?;
        }
    }
    for i in duplicates(&names)? {
        names[i] = &[];
        dropped.add("a name is used twice");
    }
    // (a short block: the lines it has no name for)
    let missing = n - names.len() - unterminated;
    if missing > 0 {
        dropped.lines += missing as u32;
        dropped.why.get_or_insert("fewer names than lines");
    }
    let mut out = KVec::with_capacity(block.len() + n, GFP_KERNEL)?;
    for i in 0..n {
        out.extend_from_slice(names.get(i).copied().unwrap_or(&[]), GFP_KERNEL)?;
        out.push(0, GFP_KERNEL)?;
    }
    Ok((out, dropped))
}

/// The indices of the names in `names` that an earlier one already has
/// (empty names are no names, never duplicates).
pub(crate) fn duplicates(names: &[&[u8]]) -> Result<KVec<usize>> {
    const EMPTY: u32 = u32::MAX;
    let cap = (names.len() * 2).next_power_of_two().max(2);
    let mut table = KVec::from_elem(EMPTY, cap, GFP_KERNEL)?;
    let mut dups = KVec::new();
    for (i, name) in names.iter().enumerate().filter(|(_, n)| !n.is_empty()) {
        // FNV-1a
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.iter() {
            h = (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
        let mut at = h as usize & (cap - 1);
        loop {
            match table[at] {
                EMPTY => {
                    table[at] = i as u32;
                    break;
                }
                j if names[j as usize] == *name => {
                    dups.push(i, GFP_KERNEL)?;
                    break;
                }
                _ => at = (at + 1) & (cap - 1),
            }
        }
    }
    Ok(dups)
}
