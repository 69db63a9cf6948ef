// SPDX-License-Identifier: GPL-2.0

//! The gpio_chip: what gpiolib calls for a line (directions, values, many
//! lines at once) and, for the irq chip, the callbacks that record what the
//! irq core wants (`irq.rs` makes the device follow).

use kernel::prelude::*;

use super::bindings;
use super::bitmap::Bitmap;
use super::gpio::{self, LineDirection};
use super::requestq::{etimedout, WAIT_BOUND_MS};
use super::uapi::*;
use super::virtio::{dev_log, dev_log_bad};
use super::VirtioGpio;

/// A `probe_dirs` entry already used (no virtio direction has this value).
pub(crate) const NO_DIRECTION: u8 = 0xff;

/// The lines whose bits are set in `map`, in order.
fn set_lines(map: &Bitmap) -> impl Iterator<Item = u16> + Clone + '_ {
    let from = move |l: usize| if l < map.len() { map.next_bit(l) } else { None };
    core::iter::successors(from(0), move |&l| from(l + 1)).map(|l| l as u16)
}

/// Is `line`'s bit set in `map`?
fn is_set(map: &Bitmap, line: u16) -> bool {
    let l = line as usize;
    l < map.len() && map.next_bit(l) == Some(l)
}

#[vtable]
impl gpio::Chip for VirtioGpio {
    fn request(&self, _offset: u32) -> Result {
        if self.rq.lock().gone {
            return Err(ENODEV);
        }
        Ok(())
    }

    fn free(&self, offset: u32) {
        // Deactivate: the device may forget the line's state, its trigger
        // type too (gpiolib lets a line be freed while it is an interrupt).
        // A line that had a type has an unknown one from before the message
        // goes: no buffer is queued for it until a SET_IRQ_TYPE is answered
        // again, and the device's INVALID returns of its message, which may
        // come as soon as it has the message, do not count as unheard (they
        // would park a healthy line). If the message does not go, unknown is
        // still safe: the next type change sends none first. (After
        // free_irq, the usual case, the type is none and stays known.)
        self.with_irq_line_flushed(offset, |eq, l| {
            let il = &mut eq.lines[l];
            if il.sent != Some(VIRTIO_GPIO_IRQ_TYPE_NONE) {
                il.sent = None;
            }
            il.output = false;
            il.freed = il.freed.wrapping_add(1);
        });
        // Not waited for; a request after this one waits for the message to
        // come back.
        let r = self.post(
            VIRTIO_GPIO_MSG_SET_DIRECTION,
            offset as u16,
            VIRTIO_GPIO_DIRECTION_NONE.into(),
        );
        match r {
            Ok(()) => {}
            Err(e) if e == EBUSY => dev_log_bad!(
                self.vdev,
                WARNING,
                "line {}: not deactivated: the device has not answered its last request\n",
                offset
            ),
            Err(_) => {}
        }
    }

    fn get_direction(&self, offset: u32) -> Result<LineDirection> {
        // Each line's cached direction answers one question: gpiolib's own,
        // while it registers the chip (it asks every line once, before the
        // chip is visible to anyone). Later questions, after a hog or a user
        // may have changed the line, go to the device.
        let cached = (*self.probe_dirs.lock())
            .as_mut()
            .and_then(|d| d.get_mut(offset as usize))
            .map(|d| core::mem::replace(d, NO_DIRECTION))
            .filter(|&d| d != NO_DIRECTION);
        let dir = match cached {
            Some(d) => d,
            None => self.request(VIRTIO_GPIO_MSG_GET_DIRECTION, offset as u16, 0)?,
        };
        match dir {
            VIRTIO_GPIO_DIRECTION_OUT => Ok(LineDirection::Out),
            // A deactivated line drives nothing: report it as an input.
            VIRTIO_GPIO_DIRECTION_IN | VIRTIO_GPIO_DIRECTION_NONE => Ok(LineDirection::In),
            d => {
                self.log_bad_answer(
                    offset as u16,
                    VIRTIO_GPIO_MSG_GET_DIRECTION,
                    format_args!("bad direction {d}"),
                );
                Err(EIO)
            }
        }
    }

    fn direction_input(&self, offset: u32) -> Result {
        // An interrupt line (or one that was, or an output that may become
        // one): gpiolib drives an open-drain interrupt line high by making
        // it an input and low by making it an output, without asking
        // whether it is an interrupt. The direction and the trigger type
        // change in one sequence, so a drive low cannot come in between.
        let mut typed = false;
        self.with_irq_line(offset, |eq, l| {
            let il = &eq.lines[l];
            typed =
                il.type_ != VIRTIO_GPIO_IRQ_TYPE_NONE || il.output || il.sent != Some(il.want());
        });
        let seq = if typed {
            Some(self.type_seq(offset)?)
        } else {
            None
        };
        self.request(
            VIRTIO_GPIO_MSG_SET_DIRECTION,
            offset as u16,
            VIRTIO_GPIO_DIRECTION_IN.into(),
        )?;
        let Some(seq) = seq else {
            return Ok(());
        };
        self.with_irq_line(offset, |eq, l| eq.lines[l].output = false);
        // The line is an input now, and gpiolib must know it (it records
        // the direction only on success): a type that could not go back is
        // logged, and the line's next sync (enable_irq, request_irq) sends
        // it again.
        if let Err(e) = self.sync_types(&seq) {
            dev_log_bad!(
                self.vdev,
                WARNING,
                "line {}: input again, but its trigger type could not be restored ({:?})\n",
                offset,
                e
            );
        }
        Ok(())
    }

    fn direction_output(&self, offset: u32, value: bool) -> Result {
        // An interrupt line that its user disabled (gpiolib allows nothing
        // else, but for open-drain lines, which it drives low this way) and
        // now drives: the device gets no trigger type for an output line,
        // so it is told none first (its eventq message comes back INVALID
        // and stays here), and no sync sends one until direction_input.
        // That and the direction change are one sequence. A line with no
        // type that is not an output yet is marked one in the same step as
        // it is found to have none (an irq_set_type after that wants none
        // for it) and needs no sequence; an output already marked takes the
        // sequence, as a direction_input of it does.
        let mut plain = true;
        let mut was_output = false;
        self.with_irq_line(offset, |eq, l| {
            let il = &mut eq.lines[l];
            was_output = il.output;
            plain = il.type_ == VIRTIO_GPIO_IRQ_TYPE_NONE
                && il.sent == Some(VIRTIO_GPIO_IRQ_TYPE_NONE)
                && !il.output;
            il.output |= plain;
        });
        let seq = if plain {
            None
        } else {
            let seq = self.type_seq(offset)?;
            self.with_irq_line(offset, |eq, l| eq.lines[l].output = true);
            Some(seq)
        };
        let r = match &seq {
            Some(seq) => self.sync_types(seq),
            None => Ok(()),
        }
        .and_then(|()| {
            // The spec wants the value set before the line becomes an
            // output.
            self.request(VIRTIO_GPIO_MSG_SET_VALUE, offset as u16, value.into())?;
            self.request(
                VIRTIO_GPIO_MSG_SET_DIRECTION,
                offset as u16,
                VIRTIO_GPIO_DIRECTION_OUT.into(),
            )
            .map(|_| ())
        });
        match r {
            // The device refused (or answered malformed): the line is what
            // it was, an input (an interrupt line gets its type back) or an
            // output (driven again, it stays one: no type).
            Err(e) if e == EIO && !was_output => {
                self.with_irq_line(offset, |eq, l| eq.lines[l].output = false);
                if let Some(seq) = &seq {
                    let _ = self.sync_types(seq);
                }
            }
            // Killed, timed out or removed: the device may have made it an
            // output already. It keeps no type; direction_input gives it
            // back.
            _ => {}
        }
        r
    }

    fn get(&self, offset: u32) -> Result<bool> {
        match self.request(VIRTIO_GPIO_MSG_GET_VALUE, offset as u16, 0)? {
            0 => Ok(false),
            1 => Ok(true),
            v => {
                self.log_bad_answer(
                    offset as u16,
                    VIRTIO_GPIO_MSG_GET_VALUE,
                    format_args!("bad value {v}"),
                );
                Err(EIO)
            }
        }
    }

    fn set(&self, offset: u32, value: bool) -> Result {
        self.request(VIRTIO_GPIO_MSG_SET_VALUE, offset as u16, value.into())
            .map(|_| ())
    }

    fn get_multiple(&self, mask: &Bitmap, bits: &mut Bitmap) -> Result {
        let mut bad = false;
        self.request_multiple(
            VIRTIO_GPIO_MSG_GET_VALUE,
            set_lines(mask),
            |_| 0,
            |line, v| {
                bad |= v > 1;
                if v == 1 {
                    bits.set_bit(line.into());
                } else {
                    bits.clear_bit(line.into());
                }
            },
        )?;
        if bad {
            dev_log!(
                self.vdev,
                ERR,
                "GET_VALUE: device answered a value other than 0 or 1\n"
            );
            return Err(EIO);
        }
        Ok(())
    }

    fn set_multiple(&self, mask: &Bitmap, bits: &Bitmap) -> Result {
        self.request_multiple(
            VIRTIO_GPIO_MSG_SET_VALUE,
            set_lines(mask),
            |line| is_set(bits, line).into(),
            |_, _| (),
        )
    }
}

#[vtable]
impl gpio::IrqChip for VirtioGpio {
    fn irq_enable(&self, hwirq: u32) -> gpio::Then {
        let mut then = gpio::Then::Done;
        self.with_irq_line(hwirq, |eq, l| {
            let il = &mut eq.lines[l];
            il.disabled = false;
            il.masked = false;
            il.fresh_start();
            // Queued now if the device already has the type; else after
            // irq_bus_sync_unlock sent it.
            let _ = eq.queue(l);
            if eq.needs_flush(l) {
                then = gpio::Then::Defer;
            }
        });
        then
    }

    fn irq_disable(&self, hwirq: u32) {
        // disable_irq: lazy, nothing goes to the device (its message, if it
        // has it, stays there). The irq core counts the line as masked from
        // now on; so does the line, so that an event that comes meanwhile
        // (the core keeps it pending and replays an edge on enable_irq)
        // leaves the message here, also for a line still waiting for an
        // eventq slot or for the end of the callback's pass.
        self.with_irq_line(hwirq, |eq, l| eq.lines[l].masked = true);
    }

    fn irq_shutdown(&self, hwirq: u32) {
        // The device learns it in irq_bus_sync_unlock (SET_IRQ_TYPE none),
        // and then returns the line's message INVALID.
        self.with_irq_line(hwirq, |eq, l| {
            eq.lines[l].disabled = true;
            eq.lines[l].masked = true;
        });
    }

    fn irq_mask(&self, hwirq: u32) {
        self.with_irq_line(hwirq, |eq, l| eq.lines[l].masked = true);
    }

    fn irq_unmask(&self, hwirq: u32) -> gpio::Then {
        let mut then = gpio::Then::Done;
        self.with_irq_line(hwirq, |eq, l| {
            let il = &mut eq.lines[l];
            il.masked = false;
            // The irq core unmasks after it handled an interrupt: the line
            // works.
            il.unheard = 0;
            // Requeueing the message is what unmasks the line on the device
            // (with the DMA API: from irq_deferred).
            let _ = eq.queue(l);
            if eq.needs_flush(l) {
                then = gpio::Then::Defer;
            }
        });
        then
    }

    fn irq_deferred(&self) {
        self.flush_eventq();
    }

    fn irq_set_type(&self, hwirq: u32, flow_type: u32) -> Result {
        let t = match flow_type {
            bindings::IRQ_TYPE_NONE => VIRTIO_GPIO_IRQ_TYPE_NONE,
            bindings::IRQ_TYPE_EDGE_RISING => VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING,
            bindings::IRQ_TYPE_EDGE_FALLING => VIRTIO_GPIO_IRQ_TYPE_EDGE_FALLING,
            bindings::IRQ_TYPE_EDGE_BOTH => VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH,
            bindings::IRQ_TYPE_LEVEL_HIGH => VIRTIO_GPIO_IRQ_TYPE_LEVEL_HIGH,
            bindings::IRQ_TYPE_LEVEL_LOW => VIRTIO_GPIO_IRQ_TYPE_LEVEL_LOW,
            _ => {
                dev_log!(
                    self.vdev,
                    ERR,
                    "line {}: unsupported irq type {:#x}\n",
                    hwirq,
                    flow_type
                );
                return Err(EINVAL);
            }
        };
        self.with_irq_line(hwirq, |eq, l| eq.lines[l].type_ = t);
        Ok(())
    }

    fn irq_bus_sync_unlock(&self, hwirq: u32) {
        // Most syncs (every ONESHOT thread's end) change nothing on the
        // device: just requeue, without a sequence, unless one is going on
        // (its record may be about to change: wait for it and sync after).
        let mut done = false;
        self.with_irq_line(hwirq, |eq, l| {
            let il = &eq.lines[l];
            done = !il.typing && il.sent == Some(il.want());
            if done {
                let _ = eq.queue(l);
            }
        });
        if done {
            self.flush_eventq();
            return;
        }
        // Failures are logged by `request` where they are the device's; a
        // killed task (ERESTARTSYS) or a removed device (ENODEV) leave the
        // line for the next sync. An exiting task (free_irq of a killed
        // one) waits a bounded time for another task's sequence.
        let r = self.type_seq(hwirq).map(|seq| {
            let _ = self.sync_types(&seq);
        });
        if matches!(r, Err(e) if e == etimedout()) {
            dev_log_bad!(
                self.vdev,
                WARNING,
                "line {}: trigger type not changed: another change of it did not end within {} ms\n",
                hwirq,
                WAIT_BOUND_MS
            );
        }
    }
}
