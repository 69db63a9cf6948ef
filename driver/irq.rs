// SPDX-License-Identifier: GPL-2.0

//! Interrupts: each line's state as the irq core and the device see it, the
//! eventq that carries one message per armed line, and the SET_IRQ_TYPE
//! sequences that keep the device's trigger type in step (a slow-bus
//! irqchip: the irq core's callbacks only record, `irq_bus_sync_unlock`
//! talks to the device).

use kernel::prelude::*;

use super::requestq::WAIT_BOUND_MS;
use super::sync::{self, Moment};
use super::uapi::*;
use super::virtio::{self, dev_log, dev_log_bad};
use super::VirtioGpio;

/// A line's eventq message: queued, it unmasks the line on the device.
/// `line` is not part of what the device sees.
pub(crate) struct IrqMsg {
    pub(crate) line: u16,
    pub(crate) req: [u8; 2],
    pub(crate) res: [u8; 1],
}

// SAFETY: both parts are arrays inside the message itself (its own `KBox`,
// kmalloc'd), the same ones on every call.
unsafe impl virtio::Buffer for IrqMsg {
    fn readable(&self) -> &[u8] {
        &self.req
    }

    fn writable(&mut self) -> &mut [u8] {
        &mut self.res
    }
}

/// A line's interrupt state, as the irq core and the device see it.
pub(crate) struct IrqLine {
    /// The trigger type irq_set_type asked for (virtio encoding).
    pub(crate) type_: u8,
    /// The type the device has: the last SET_IRQ_TYPE it answered OK, or
    /// `None` (unknown) while one is in flight and after one that failed
    /// once the device may have acted on it (the waiter was killed, the
    /// device went away, the answer was malformed).
    pub(crate) sent: Option<u8>,
    /// Not an interrupt: before irq_enable (startup), after irq_shutdown.
    /// disable_irq() is lazy and leaves this alone (it sets `masked`).
    pub(crate) disabled: bool,
    /// Made an output by direction_output (gpiolib drives an open-drain
    /// interrupt line low that way): the device gets no trigger type until
    /// direction_input. Set at once for a line with no type, in the line's
    /// [`TypeSeq`] for a typed one; cleared by direction_input (in a
    /// sequence), by a direction_output that failed, and by free (the
    /// device forgets the line's direction).
    pub(crate) output: bool,
    /// Counts `free`'s deactivations (wrapping): a SET_IRQ_TYPE answered
    /// after the line was deactivated records nothing, as the device may
    /// have forgotten the type it set.
    pub(crate) freed: u32,
    /// A [`TypeSeq`] is going on for the line: a sync may then not take
    /// the lock-free way out, as the record it would trust may be about to
    /// change. Set and cleared with the requestq lock held too, which the
    /// tasks waiting for the sequence to end (on the line's slot key) hold
    /// to check.
    pub(crate) typing: bool,
    pub(crate) masked: bool,
    /// The line's eventq message while the device does not have it.
    pub(crate) buf: Option<KBox<IrqMsg>>,
    /// Should be queued but the eventq was full: queue when a slot frees.
    pub(crate) want_slot: bool,
    /// The lines that waited before and after this one, while `want_slot`.
    pub(crate) prev: Option<u16>,
    pub(crate) next: Option<u16>,
    /// Returns of the message in a row that brought no event although the
    /// line was armed (INVALID, or malformed).
    pub(crate) unheard: u8,
    /// `unheard` passed [`MAX_UNHEARD`]: the message stays here until the
    /// line is enabled again or gets a new trigger type.
    pub(crate) parked: bool,
    /// The eventq pass ([`EventQueue::pass`]) in which the message last
    /// went to the device.
    pub(crate) queued_pass: u32,
    /// Its requeue waits for the end of the pass: `Some(next)` (the next
    /// such line, or itself if it is the last).
    pub(crate) deferred: Option<u16>,
}

/// How many returns in a row without an event an armed line gets before its
/// message is kept back. One is legal (an INVALID return for a disable that
/// an enable overtook); a device that keeps returning the message at once
/// would otherwise have it requeued for ever, in interrupt context.
pub(crate) const MAX_UNHEARD: u8 = 4;

/// How many times one sequence brings a line's trigger type up to date
/// before it leaves the rest to the next sync (see `sync_types`).
pub(crate) const MAX_SYNC_ROUNDS: u32 = 4;

impl IrqLine {
    /// The message came back without an event that could be handled; true
    /// if that parks the line now.
    pub(crate) fn unheard(&mut self) -> bool {
        self.unheard = self.unheard.saturating_add(1);
        let park = self.unheard > MAX_UNHEARD && !self.parked;
        self.parked |= park;
        park
    }

    /// The line is enabled or retyped: a parked line gets its chance again.
    pub(crate) fn fresh_start(&mut self) {
        self.parked = false;
        self.unheard = 0;
    }

    /// The trigger type the device should have: none for a line that is no
    /// interrupt or is an output.
    pub(crate) fn want(&self) -> u8 {
        if self.disabled || self.output {
            VIRTIO_GPIO_IRQ_TYPE_NONE
        } else {
            self.type_
        }
    }

    /// Is the device known to have a trigger type other than none?
    pub(crate) fn has_type(&self) -> bool {
        matches!(self.sent, Some(t) if t != VIRTIO_GPIO_IRQ_TYPE_NONE)
    }
}

/// Everything the eventq lock guards.
pub(crate) struct EventQueue {
    /// The eventq, when adding a message to it and taking one back maps
    /// nothing (the device sees guest-physical addresses): then the irq
    /// core's callbacks queue under this raw lock themselves. `None` when
    /// the queue maps through the DMA API (VIRTIO_F_ACCESS_PLATFORM:
    /// swiotlb in a confidential guest, an IOMMU), whose locks may not be
    /// taken inside a raw one: the queue is then `VirtioGpio::eq_dma`'s,
    /// `queue` puts the line on the wait list, and
    /// `VirtioGpio::flush_eventq` gives the device the waiting lines'
    /// messages from where such locks may be taken.
    pub(crate) vq: Option<virtio::Virtqueue<IrqMsg>>,
    pub(crate) gone: bool,
    pub(crate) lines: KVec<IrqLine>,
    /// The lines with `want_slot` set, oldest first (linked through
    /// `IrqLine::prev/next`): the next free slot goes to the line that
    /// has waited longest. (In line order, lines that had just been served
    /// and re-armed took every slot back while higher lines with an edge
    /// waiting starved: with more lines than slots, one edge on every line
    /// left the last lines unheard.)
    pub(crate) first: Option<u16>,
    pub(crate) last: Option<u16>,
    /// Counts the eventq callback's passes (wrapping): a pass takes every
    /// returned message, and a line's message goes back to the device at
    /// most once in a pass; a second requeue waits for the pass to end.
    /// Else a device that returns a message with an event each time it
    /// gets it (a storm, or a line whose level stays active with a handler
    /// that unmasks at once) would keep the callback in its loop, in
    /// interrupt context, for ever; so each further event takes an
    /// interrupt of its own.
    pub(crate) pass: u32,
    /// A pass is going on.
    pub(crate) in_pass: bool,
    /// The lines whose requeue waits for the pass's end (linked through
    /// `IrqLine::deferred`).
    pub(crate) deferred: Option<u16>,
}

impl EventQueue {
    /// May the line's message be with the device? Enabled on the device
    /// (the spec: enable before unmask), not disabled, not masked.
    pub(crate) fn armed(&self, line: usize) -> bool {
        let l = &self.lines[line];
        !self.gone && !l.disabled && !l.masked && !l.parked && l.has_type()
    }

    /// Give the device the line's message if it should have it and we have
    /// it. A full eventq puts the line on the wait list instead.
    pub(crate) fn queue(&mut self, line: usize) -> Result {
        if !self.armed(line) {
            return Ok(());
        }
        if self.lines[line].buf.is_none() {
            return Ok(());
        }
        if self.in_pass && self.lines[line].queued_pass == self.pass {
            let l = &mut self.lines[line];
            if l.deferred.is_none() {
                // (lines are numbered by u16, the protocol's line field)
                let n = line as u16;
                l.deferred = Some(self.deferred.replace(n).unwrap_or(n));
            }
            // (end_pass queues it, or puts it back on the wait list)
            self.unwait(line);
            return Ok(());
        }
        let Some(vq) = &mut self.vq else {
            // (DMA: `VirtioGpio::flush_eventq` queues it)
            self.wait(line);
            return Ok(());
        };
        let Some(mut m) = self.lines[line].buf.take() else {
            return Ok(());
        };
        m.req = VirtioGpioIrqRequest::to_bytes(line as u16);
        m.res = [0xff];
        // (the message and the kick in one look at the queue)
        let r = match vq.live() {
            Some(mut vq) => vq.add(m).map(|()| vq.kick()),
            None => Err((ENODEV, m)),
        };
        match r {
            Ok(()) => {
                // (only a message the device got counts for the pass)
                self.lines[line].queued_pass = self.pass;
                self.unwait(line);
                Ok(())
            }
            Err((e, m)) => {
                self.lines[line].buf = Some(m);
                if e == ENOSPC {
                    self.wait(line);
                    return Ok(());
                }
                Err(e)
            }
        }
    }

    /// Begin an eventq pass (see [`EventQueue::pass`]).
    pub(crate) fn begin_pass(&mut self) {
        self.pass = self.pass.wrapping_add(1);
        self.in_pass = true;
    }

    /// End the pass: queue the lines whose requeue waited for it, then the
    /// lines that wait for a slot, while slots last.
    pub(crate) fn end_pass(&mut self) {
        self.in_pass = false;
        let mut next = self.deferred.take();
        while let Some(n) = next {
            let line = usize::from(n);
            next = self.lines[line].deferred.take().filter(|&m| m != n);
            let _ = self.queue(line);
        }
        self.queue_waiting();
    }

    /// Put the line at the end of the wait list (if not on it yet).
    pub(crate) fn wait(&mut self, line: usize) {
        self.link(line, false);
    }

    /// Put the line at the head of the wait list (if not on it yet).
    fn wait_first(&mut self, line: usize) {
        self.link(line, true);
    }

    /// Put the line at the head or the end of the wait list (if not on it
    /// yet).
    fn link(&mut self, line: usize, head: bool) {
        if self.lines[line].want_slot {
            return;
        }
        // Lines are numbered by u16 (the protocol's line field).
        let n = Some(line as u16);
        // (the end it joins, and its neighbour there)
        let (end, other) = if head {
            (&mut self.first, &mut self.last)
        } else {
            (&mut self.last, &mut self.first)
        };
        let old = core::mem::replace(end, n);
        match old {
            Some(o) if head => self.lines[usize::from(o)].prev = n,
            Some(o) => self.lines[usize::from(o)].next = n,
            None => *other = n,
        }
        let l = &mut self.lines[line];
        l.want_slot = true;
        (l.prev, l.next) = if head { (None, old) } else { (old, None) };
    }

    /// The line waits for `VirtioGpio::flush_eventq` (the queue maps
    /// through the DMA API).
    pub(crate) fn needs_flush(&self, line: usize) -> bool {
        self.vq.is_none() && self.lines[line].want_slot
    }

    /// For `VirtioGpio::flush_eventq`: the message of the line that has
    /// waited longest and should go to the device, ready to go, the line
    /// off the wait list (lines that no longer want to be queued leave it),
    /// with the line's `queued_pass` before (for `untake`).
    pub(crate) fn take_waiting(&mut self) -> Option<(KBox<IrqMsg>, u32)> {
        while let Some(first) = self.first {
            let line = usize::from(first);
            self.unwait(line);
            if !self.armed(line) {
                continue;
            }
            let Some(mut m) = self.lines[line].buf.take() else {
                continue;
            };
            m.req = VirtioGpioIrqRequest::to_bytes(first);
            m.res = [0xff];
            // (counted as the device's from here: see `untake`)
            let before = core::mem::replace(&mut self.lines[line].queued_pass, self.pass);
            return Some((m, before));
        }
        None
    }

    /// A message from `take_waiting` the queue did not take: the line's
    /// again, first in line for the next flush if it should still go (then
    /// true).
    pub(crate) fn untake(&mut self, m: KBox<IrqMsg>, queued_pass: u32) -> bool {
        let line = usize::from(m.line);
        let Some(l) = self.lines.get_mut(line) else {
            return false;
        };
        l.buf = Some(m);
        l.queued_pass = queued_pass;
        let armed = self.armed(line);
        if armed {
            self.wait_first(line);
        }
        armed
    }

    /// Take the line off the wait list (if on it).
    pub(crate) fn unwait(&mut self, line: usize) {
        let l = &mut self.lines[line];
        if !core::mem::take(&mut l.want_slot) {
            return;
        }
        let (prev, next) = (l.prev.take(), l.next.take());
        match prev {
            Some(p) => self.lines[usize::from(p)].next = next,
            None => self.first = next,
        }
        match next {
            Some(n) => self.lines[usize::from(n)].prev = prev,
            None => self.last = prev,
        }
    }

    /// A slot freed: queue lines that waited for one, oldest first, while
    /// slots last.
    pub(crate) fn queue_waiting(&mut self) {
        // (DMA: `VirtioGpio::flush_eventq` does this)
        while self.vq.as_ref().is_some_and(|vq| vq.num_free() > 0) {
            let Some(first) = self.first else { return };
            let line = usize::from(first);
            if !self.armed(line) || self.lines[line].buf.is_none() {
                self.unwait(line);
            } else if self.queue(line).is_err() || self.lines[line].want_slot {
                return;
            }
        }
    }
}

/// What the eventq callback found in one returned message.
pub(crate) enum Event {
    /// A valid interrupt for an enabled line: hand it to the irq core.
    Deliver(u16),
    /// Nothing to deliver (INVALID, or the line is disabled).
    None,
    /// The device wrote a wrong length or status: logged, requeued.
    Malformed(u16, u32, u8),
}

/// One task's sequence of SET_IRQ_TYPE requests for a line, from reading
/// what the device has (`IrqLine::sent`) to recording what it has after:
/// two sequences for one line interleaved would leave the record saying one
/// type and the device having another. Made by [`VirtioGpio::type_seq`].
///
/// # Invariants
///
/// `line` is a line of `gpio` whose `IrqLine::typing` this sequence set,
/// and nothing else clears it.
pub(crate) struct TypeSeq<'a> {
    pub(crate) gpio: &'a VirtioGpio,
    pub(crate) line: u32,
    /// When its waits end, in an exiting task (see `type_seq`).
    pub(crate) end: Option<Moment>,
}

impl Drop for TypeSeq<'_> {
    fn drop(&mut self) {
        let q = self.gpio.rq.lock();
        // INVARIANT: the flag was this sequence's; the next one may begin.
        self.gpio
            .with_irq_line(self.line, |eq, l| eq.lines[l].typing = false);
        let key = q.key(self.line as usize);
        drop(q);
        sync::wake_up_var(key);
    }
}

impl VirtioGpio {
    /// Bring the device's trigger type for the line to what it should be
    /// (`IrqLine::want`), then queue its message if it should have it.
    ///
    /// What the line wants can change while this talks to the device: a
    /// sync that finds the type it wants already recorded does not wait for
    /// this sequence. So this goes on until the device has what the line
    /// wants now (a bounded number of rounds, for users that keep changing
    /// it: their own syncs carry on).
    pub(crate) fn sync_types(&self, seq: &TypeSeq<'_>) -> Result {
        let hwirq = seq.line;
        let mut r = Ok(());
        for _ in 0..MAX_SYNC_ROUNDS {
            let mut state = None;
            self.with_irq_line(hwirq, |eq, l| {
                let il = &eq.lines[l];
                state = Some((il.want(), il.sent));
            });
            let Some((want, sent)) = state else {
                return Ok(());
            };
            if sent == Some(want) {
                break;
            }
            // The spec: a trigger type change goes through none. A device
            // whose type is unknown gets none first too (a strict device
            // that refuses it had none already, see `set_irq_type`).
            if sent != Some(VIRTIO_GPIO_IRQ_TYPE_NONE) && want != VIRTIO_GPIO_IRQ_TYPE_NONE {
                r = self.set_irq_type(seq, VIRTIO_GPIO_IRQ_TYPE_NONE);
            }
            if r.is_ok() {
                // A failure leaves the type unknown, so the next sync (the
                // next request_irq, enable_irq or free_irq of the line) sends
                // none and then the type it wants. Device errors and
                // malformed answers were logged by `request`; a killed
                // waiter (ERESTARTSYS) or a removed device (ENODEV) are not
                // the device's fault and are not logged.
                r = self.set_irq_type(seq, want);
            }
            if r.is_err() {
                break;
            }
        }
        self.with_irq_line(hwirq, |eq, l| {
            let _ = eq.queue(l);
        });
        self.flush_eventq();
        r
    }

    /// Begin the line's trigger-type sequence: wait (killably; bounded in
    /// an exiting task, see [`Self::set_irq_type`]) until no other task has
    /// one going for the line. Other lines never wait for this one: a
    /// device that holds one line's SET_IRQ_TYPE answer holds up only that
    /// line's users.
    pub(crate) fn type_seq(&self, hwirq: u32) -> Result<TypeSeq<'_>> {
        // Where no signal can interrupt a wait any more (free_irq in the
        // exit of a killed task) the whole sequence gets one bound.
        // Elsewhere a slow device is legal, and the waits are killable.
        let end = sync::current_is_exiting().then(|| Moment::after_ms(WAIT_BOUND_MS));
        let mut q = self.rq.lock();
        let mut dl = Self::deadline(&q, end);
        loop {
            if q.gone {
                return Err(ENODEV);
            }
            // (the eventq lock inside the requestq's: never the other way)
            let mut began = None;
            self.with_irq_line(hwirq, |eq, l| {
                let il = &mut eq.lines[l];
                began = Some(!il.typing);
                il.typing = true;
            });
            if began.ok_or(EINVAL)? {
                return Ok(TypeSeq {
                    gpio: self,
                    line: hwirq,
                    end,
                });
            }
            let key = q.key(hwirq as usize);
            sync::wait_var_killable(&mut q, key, &mut dl)?;
        }
    }

    /// SET_IRQ_TYPE: the line's type is unknown while the request is out,
    /// and known again only if the device answered OK and the line was not
    /// deactivated meanwhile (`free` posts its SET_DIRECTION none as soon
    /// as the line's message is back, which may be before this records).
    pub(crate) fn set_irq_type(&self, seq: &TypeSeq<'_>, t: u8) -> Result {
        let hwirq = seq.line;
        let mut freed = 0;
        let mut unknown = false;
        self.with_irq_line_flushed(hwirq, |eq, l| {
            unknown = eq.lines[l].sent.is_none();
            eq.lines[l].sent = None;
            freed = eq.lines[l].freed;
        });
        let r = self.request_bounded(
            VIRTIO_GPIO_MSG_SET_IRQ_TYPE,
            hwirq as u16,
            t.into(),
            seq.end,
        );
        match r {
            // A device whose type was unknown and that refuses none (ERR)
            // has none: a strict device refuses a change to what it has.
            // Taken as none, or every later none would fail the same way.
            Err(e) if e == EIO && unknown && t == VIRTIO_GPIO_IRQ_TYPE_NONE => {}
            r => {
                r?;
            }
        }
        self.with_irq_line(hwirq, |eq, l| {
            let il = &mut eq.lines[l];
            if il.freed == freed {
                il.sent = Some(t);
            }
            il.fresh_start();
        });
        Ok(())
    }

    /// eventq callback (interrupt context): one returned message at a time,
    /// the lock dropped before the irq core runs the line's handlers (which
    /// call back into irq_mask/irq_unmask); then, with the DMA API, the
    /// messages to requeue go back.
    pub(crate) fn eventq_done(&self, handle: impl Fn(u32) -> Result) {
        self.eventq_drain(handle);
        self.flush_eventq();
    }

    fn eventq_drain(&self, handle: impl Fn(u32) -> Result) {
        let mut first = true;
        loop {
            let (ev, parked) = {
                // With the DMA API the message is unmapped before the raw
                // lock (see `EventQueue::vq`).
                let mut dq = self.eq_maps_dma.then(|| self.eq_dma.lock());
                let got = dq.as_mut().map(|q| match &mut **q {
                    Some(vq) => vq.get_buf(),
                    None => None,
                });
                let mut g = self.eq.lock();
                let Some(eq) = &mut *g else { return };
                if core::mem::take(&mut first) {
                    eq.begin_pass();
                }
                let got = match got {
                    Some(got) => got,
                    None => eq.vq.as_mut().and_then(|vq| vq.get_buf()),
                };
                let Some((m, len)) = got else {
                    eq.end_pass();
                    return;
                };
                let line = m.line;
                let status = m.res[0];
                let Some(l) = eq.lines.get_mut(line as usize) else {
                    continue;
                };
                l.buf = Some(m);
                let ev = if len != 1 || status > VIRTIO_GPIO_IRQ_STATUS_VALID {
                    Event::Malformed(line, len, status)
                } else if status == VIRTIO_GPIO_IRQ_STATUS_VALID
                    && !eq.gone
                    && !l.disabled
                    && l.has_type()
                {
                    Event::Deliver(line)
                } else {
                    Event::None
                };
                // Delivered: a VALID return masks the line on the device, so
                // the line is masked here too, before the lock drops; else a
                // concurrent irq_bus_sync_unlock could requeue the message
                // before the irq core masks the line, and the device would
                // fire again while the first event is being handled. The irq
                // core unmasks it after the handlers (after a ONESHOT
                // thread), which requeues it. Every line is handled by
                // handle_level_irq, edge lines too: while a ONESHOT thread
                // runs, the device keeps the next edge (it latches one while
                // it has no message) and sends it when the message comes
                // back. With the message back at once instead (handle_edge_irq,
                // acked before the handlers), that edge reaches the irq core
                // while the thread is still waiting to run, and gpiolib's
                // character device, whose thread makes one event per run,
                // merges the two (measured on the debug kernel: every edge of
                // 200-edge trains at 100-200/s reached the irq core, 185-199
                // the reader).
                // Not delivered: the line stays unmasked if it should be (an
                // INVALID return after a disable raced with an enable ends
                // here with the line queued again).
                let mut parked = false;
                if matches!(ev, Event::Deliver(_)) {
                    l.masked = true;
                } else {
                    let idx = usize::from(line);
                    if eq.armed(idx) {
                        parked = eq.lines[idx].unheard();
                    }
                    let _ = eq.queue(idx);
                }
                eq.queue_waiting();
                (ev, parked.then_some(line))
            };
            if let Some(line) = parked {
                self.log_parked(line);
            }
            match ev {
                Event::Deliver(line) => {
                    if let Err(e) = handle(line.into()) {
                        dev_log_bad!(
                            self.vdev,
                            ERR,
                            "line {}: interrupt not handled: {:?}\n",
                            line,
                            e
                        );
                        // Nobody will unmask it: do it, so the line stays
                        // live, but not for ever (an event that can never be
                        // handled would come straight back, in interrupt
                        // context): it counts as a return without an event.
                        let mut parked = false;
                        self.with_irq_line(line.into(), |eq, l| {
                            eq.lines[l].masked = false;
                            // (a line disabled or shut down meanwhile is not
                            // the device's doing)
                            if eq.armed(l) {
                                parked = eq.lines[l].unheard();
                            }
                            let _ = eq.queue(l);
                        });
                        if parked {
                            self.log_parked(line);
                        }
                    }
                }
                Event::Malformed(line, len, status) => {
                    dev_log_bad!(
                        self.vdev,
                        ERR,
                        "line {}: eventq answer with length {} status {}, expected length 1 status 0 or 1\n",
                        line,
                        len,
                        status
                    );
                }
                Event::None => {}
            }
        }
    }

    pub(crate) fn log_parked(&self, line: u16) {
        dev_log!(
            self.vdev,
            ERR,
            "line {}: {} returns of its eventq message in a row brought no event that could be handled; the line's interrupt stays off until it is enabled again (enable_irq after disable_irq, or request_irq) or gets a new trigger type\n",
            line,
            MAX_UNHEARD + 1
        );
    }

    /// Give the device the messages of the lines on the eventq's wait list,
    /// if the queue maps through the DMA API (see `EventQueue::vq`; else
    /// nothing to do): with no raw lock held, where a `spinlock_t` may be
    /// taken (task context, the eventq callback, `irq_deferred`).
    pub(crate) fn flush_eventq(&self) {
        if !self.eq_maps_dma {
            return;
        }
        let mut failed = None;
        {
            let mut dq = self.eq_dma.lock();
            let Some(mut vq) = (match &mut *dq {
                Some(vq) => vq.live(),
                None => None,
            }) else {
                return;
            };
            let mut added = false;
            while let Some((m, before)) = self.with_eq(EventQueue::take_waiting).flatten() {
                if let Err((e, m)) = vq.add(m) {
                    let line = m.line;
                    let waits = self.with_eq(|eq| eq.untake(m, before));
                    if e != ENOSPC && waits == Some(true) {
                        failed = Some((line, e));
                    }
                    break;
                }
                added = true;
            }
            if added {
                vq.kick();
            }
        }
        // A full ring is no error: a returned message makes room, and the
        // callback flushes again. Anything else (the DMA layer out of bounce
        // buffers) is retried at the next flush: any line's event, unmask
        // or trigger-type change; nothing retries it on a timer.
        if let Some((line, e)) = failed {
            dev_log_bad!(
                self.vdev,
                ERR,
                "line {}: eventq message not queued: {:?}; tried again at the eventq's next event, unmask or type change\n",
                line,
                e
            );
        }
    }

    /// [`Self::with_irq_line`], ordered against a `flush_eventq` in
    /// progress (which checks that a line should be queued, then queues
    /// it, with the raw lock dropped between): for the changes after which
    /// the device may not get the line's message (its type is unknown,
    /// it was deactivated). Task context.
    pub(crate) fn with_irq_line_flushed(&self, hwirq: u32, f: impl FnOnce(&mut EventQueue, usize)) {
        let _flush = self.eq_maps_dma.then(|| self.eq_dma.lock());
        self.with_irq_line(hwirq, f);
    }

    /// Run `f` on the interrupt state, if the chip has interrupts.
    pub(crate) fn with_eq<R>(&self, f: impl FnOnce(&mut EventQueue) -> R) -> Option<R> {
        (*self.eq.lock()).as_mut().map(f)
    }

    /// Run `f` on a line's interrupt state, if the chip has interrupts.
    pub(crate) fn with_irq_line(&self, hwirq: u32, f: impl FnOnce(&mut EventQueue, usize)) {
        if let Some(eq) = &mut *self.eq.lock() {
            if (hwirq as usize) < eq.lines.len() {
                f(eq, hwirq as usize);
            }
        }
    }
}
