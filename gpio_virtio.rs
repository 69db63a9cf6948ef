// SPDX-License-Identifier: GPL-2.0

//! Guest driver for virtio-gpio devices (virtio device ID 41).
//!
//! Each line owns one requestq message. A request takes the line's message,
//! fills it in, hands it to the requestq and sleeps (killably) until the
//! device gives it back. While the device holds a message nobody else can
//! touch it: the virtqueue owns it. Requests for different lines go out in
//! parallel; `get_multiple`/`set_multiple` send one message per line at once
//! and then wait for all answers.

use kernel::ffi::c_ulong;

use kernel::prelude::*;

#[path = "wrappers/bindings.rs"]
mod bindings;
#[path = "wrappers/gpio.rs"]
mod gpio;
#[path = "wrappers/sync.rs"]
mod sync;
#[path = "virtio_gpio_uapi.rs"]
mod uapi;
#[path = "wrappers/virtio.rs"]
mod virtio;

use gpio::LineDirection;
use sync::{
    lock_class, Deadline, KillableCondVar, Moment, RawSpinLockIrq, SpinLockIrq, SpinLockIrqGuard,
};
use uapi::*;
use virtio::{dev_log, dev_log_bad};

// 6.12's module! takes one `author`, 7.x's a list of `authors`.
#[cfg(vgpio_k612)]
module! {
    type: GpioVirtioModule,
    name: "gpio_virtio_rs",
    author: "virtio-gpio-rs maintainers <maintainers@users.noreply.h-seed-917fbecd.example>",
    description: "VirtIO GPIO driver (Rust)",
    license: "GPL",
    // udev loads the module for a virtio-gpio device (virtio ID 41)
    alias: ["virtio:d00000029v*"],
}
#[cfg(vgpio_k7)]
module! {
    type: GpioVirtioModule,
    name: "gpio_virtio_rs",
    authors: ["virtio-gpio-rs maintainers <maintainers@users.noreply.h-seed-917fbecd.example>"],
    description: "VirtIO GPIO driver (Rust)",
    license: "GPL",
    // udev loads the module for a virtio-gpio device (virtio ID 41)
    alias: ["virtio:d00000029v*"],
}

// 7.x's module! keeps the module pointer in an associated const.
#[cfg(vgpio_k7)]
static THIS_MODULE: ThisModule = <GpioVirtioModule as kernel::ModuleMetadata>::THIS_MODULE;

struct GpioVirtioModule {
    _reg: virtio::Registration<VirtioGpio>,
}

impl kernel::Module for GpioVirtioModule {
    fn init(module: &'static ThisModule) -> Result<Self> {
        Ok(GpioVirtioModule {
            _reg: virtio::Registration::new(module)?,
        })
    }
}

/// The largest names block we accept; a device asking for more is broken.
const MAX_NAMES_SIZE: u32 = 1 << 20;

/// The device-writable part of a requestq message.
enum Response {
    Line([u8; 2]),
    Names(KVec<u8>),
}

/// One requestq message: `slot` says whose it is (a line, or `ngpio` for
/// GET_LINE_NAMES). `slot` is not part of what the device sees.
struct ReqMsg {
    slot: u16,
    req: [u8; 8],
    res: Response,
}

impl virtio::Buffer for ReqMsg {
    fn readable(&self) -> &[u8] {
        &self.req
    }

    fn writable(&mut self) -> &mut [u8] {
        match &mut self.res {
            Response::Line(b) => b,
            Response::Names(v) => v,
        }
    }
}

/// A line's eventq message: queued, it unmasks the line on the device.
/// `line` is not part of what the device sees.
struct IrqMsg {
    line: u16,
    req: [u8; 2],
    res: [u8; 1],
}

impl virtio::Buffer for IrqMsg {
    fn readable(&self) -> &[u8] {
        &self.req
    }

    fn writable(&mut self) -> &mut [u8] {
        &mut self.res
    }
}

/// Where a line's message is when the device does not have it.
#[derive(Default)]
struct Slot {
    /// Nobody is using the line's message.
    free: Option<KBox<ReqMsg>>,
    /// The device answered; the waiter takes it with the used length.
    done: Option<(KBox<ReqMsg>, u32)>,
    /// Somebody waits for the answer; if not (they were killed), the
    /// answer goes straight back to `free`.
    waiting: bool,
}

/// Everything the requestq lock guards.
struct RequestQueue {
    vq: virtio::Virtqueue<ReqMsg>,
    /// The device is being removed: no new requests.
    gone: bool,
    /// Probe is still talking to the device: the probing task (by pid) and
    /// when all of its waits end. Other tasks can reach the chip before
    /// probe returns (gpiolib publishes it inside `gpiochip_add_data`):
    /// their requests are not probe's and get their own bounds.
    starting: Option<(Moment, i32)>,
    /// One slot per line, plus one (index `ngpio`) for GET_LINE_NAMES.
    slots: KVec<Slot>,
}

/// A line's interrupt state, as the irq core and the device see it.
struct IrqLine {
    /// The trigger type irq_set_type asked for (virtio encoding).
    type_: u8,
    /// The type the device has: the last SET_IRQ_TYPE it answered OK, or
    /// `None` (unknown) while one is in flight and after one that failed
    /// once the device may have acted on it (the waiter was killed, the
    /// device went away, the answer was malformed).
    sent: Option<u8>,
    /// Not an interrupt: before irq_enable (startup), after irq_shutdown.
    /// disable_irq() is lazy and leaves this alone.
    disabled: bool,
    /// Made an output by direction_output (gpiolib drives an open-drain
    /// interrupt line low that way): the device gets no trigger type until
    /// direction_input. Set at once for a line with no type, in the line's
    /// [`TypeSeq`] for a typed one; cleared by direction_input (in a
    /// sequence), by a direction_output that failed, and by free (the
    /// device forgets the line's direction).
    output: bool,
    /// Counts `free`'s deactivations (wrapping): a SET_IRQ_TYPE answered
    /// after the line was deactivated records nothing, as the device may
    /// have forgotten the type it set.
    freed: u32,
    /// A [`TypeSeq`] is going on for the line: a sync may then not take
    /// the lock-free way out, as the record it would trust may be about to
    /// change. Set and cleared with the requestq lock held too, which the
    /// tasks waiting for the sequence to end (on `rq_wait`) hold to check.
    typing: bool,
    masked: bool,
    /// The line's eventq message while the device does not have it.
    buf: Option<KBox<IrqMsg>>,
    /// Should be queued but the eventq was full: queue when a slot frees.
    want_slot: bool,
    /// The lines that waited before and after this one, while `want_slot`.
    prev: Option<u16>,
    next: Option<u16>,
    /// Returns of the message in a row that brought no event although the
    /// line was armed (INVALID, or malformed).
    unheard: u8,
    /// `unheard` passed [`MAX_UNHEARD`]: the message stays here until the
    /// line is enabled again or gets a new trigger type.
    parked: bool,
}

/// How many returns in a row without an event an armed line gets before its
/// message is kept back. One is legal (an INVALID return for a disable that
/// an enable overtook); a device that keeps returning the message at once
/// would otherwise have it requeued for ever, in interrupt context.
const MAX_UNHEARD: u8 = 4;

/// How many times one sequence brings a line's trigger type up to date
/// before it leaves the rest to the next sync (see `sync_types`).
const MAX_SYNC_ROUNDS: u32 = 4;

impl IrqLine {
    /// The message came back without an event that could be handled; true
    /// if that parks the line now.
    fn unheard(&mut self) -> bool {
        self.unheard = self.unheard.saturating_add(1);
        let park = self.unheard > MAX_UNHEARD && !self.parked;
        self.parked |= park;
        park
    }

    /// The line is enabled or retyped: a parked line gets its chance again.
    fn fresh_start(&mut self) {
        self.parked = false;
        self.unheard = 0;
    }

    /// The trigger type the device should have: none for a line that is no
    /// interrupt or is an output.
    fn want(&self) -> u8 {
        if self.disabled || self.output {
            VIRTIO_GPIO_IRQ_TYPE_NONE
        } else {
            self.type_
        }
    }

    /// Is the device known to have a trigger type other than none?
    fn has_type(&self) -> bool {
        matches!(self.sent, Some(t) if t != VIRTIO_GPIO_IRQ_TYPE_NONE)
    }
}

/// Everything the eventq lock guards.
struct EventQueue {
    vq: virtio::Virtqueue<IrqMsg>,
    gone: bool,
    lines: KVec<IrqLine>,
    /// The lines with `want_slot` set, oldest first (linked through
    /// `IrqLine::prev/next`): the next free slot goes to the line that
    /// has waited longest. (In line order, lines that had just been served
    /// and re-armed took every slot back while higher lines with an edge
    /// waiting starved: with more lines than slots, one edge on every line
    /// left the last lines unheard.)
    first: Option<u16>,
    last: Option<u16>,
}

impl EventQueue {
    /// May the line's message be with the device? Enabled on the device
    /// (the spec: enable before unmask), not disabled, not masked.
    fn armed(&self, line: usize) -> bool {
        let l = &self.lines[line];
        !self.gone && !l.disabled && !l.masked && !l.parked && l.has_type()
    }

    /// Give the device the line's message if it should have it and we have
    /// it. A full eventq puts the line on the wait list instead.
    fn queue(&mut self, line: usize) -> Result {
        if !self.armed(line) {
            return Ok(());
        }
        let Some(mut m) = self.lines[line].buf.take() else {
            return Ok(());
        };
        m.req = VirtioGpioIrqRequest::to_bytes(line as u16);
        m.res = [0xff];
        match self.vq.add(m) {
            Ok(()) => {
                self.vq.kick();
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

    /// Put the line at the end of the wait list (if not on it yet).
    fn wait(&mut self, line: usize) {
        if self.lines[line].want_slot {
            return;
        }
        // Lines are numbered by u16 (the protocol's line field).
        let n = line as u16;
        let last = self.last.replace(n);
        match last {
            Some(l) => self.lines[usize::from(l)].next = Some(n),
            None => self.first = Some(n),
        }
        let l = &mut self.lines[line];
        l.want_slot = true;
        l.prev = last;
        l.next = None;
    }

    /// Take the line off the wait list (if on it).
    fn unwait(&mut self, line: usize) {
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
    fn queue_waiting(&mut self) {
        while self.vq.num_free() > 0 {
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
enum Event {
    /// A valid interrupt for an enabled line: hand it to the irq core.
    Deliver(u16),
    /// Nothing to deliver (INVALID, or the line is disabled).
    None,
    /// The device wrote a wrong length or status: logged, requeued.
    Malformed(u16, u32, u8),
}

/// A message in one request: which slot, the message while we hold it, the
/// answer once it came.
struct Entry {
    slot: usize,
    msg: Option<KBox<ReqMsg>>,
    done: Option<(KBox<ReqMsg>, u32)>,
}

impl Entry {
    fn new(slot: usize, msg: KBox<ReqMsg>) -> Self {
        Entry {
            slot,
            msg: Some(msg),
            done: None,
        }
    }
}

/// How long probe's requests may take together, and a bounded request alone
/// (see `deadline`): far longer than any device that works takes, even
/// under emulation.
const WAIT_BOUND_MS: u32 = 10_000;

fn etimedout() -> Error {
    Error::from_errno(-(kernel::bindings::ETIMEDOUT as i32))
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
struct TypeSeq<'a> {
    gpio: &'a VirtioGpio,
    line: u32,
    /// When its waits end, in an exiting task (see `type_seq`).
    end: Option<Moment>,
}

impl Drop for TypeSeq<'_> {
    fn drop(&mut self) {
        let q = self.gpio.rq.lock();
        // INVARIANT: the flag was this sequence's; the next one may begin.
        self.gpio
            .with_irq_line(self.line, |eq, l| eq.lines[l].typing = false);
        drop(q);
        self.gpio.rq_wait.notify_all();
    }
}

/// A `probe_dirs` entry already used (no virtio direction has this value).
const NO_DIRECTION: u8 = 0xff;

/// One virtio-gpio device.
#[pin_data]
struct VirtioGpio {
    vdev: virtio::DeviceRef,
    ngpio: u16,
    names_size: u32,
    #[pin]
    rq: SpinLockIrq<RequestQueue>,
    /// Woken whenever the device returns messages or a slot becomes free.
    #[pin]
    rq_wait: KillableCondVar,
    /// The eventq and the lines' interrupt state, when VIRTIO_GPIO_F_IRQ
    /// was negotiated.
    #[pin]
    eq: RawSpinLockIrq<Option<EventQueue>>,
    /// Every line's direction, fetched in parallel just before the chip is
    /// registered: gpiolib asks for each line's direction one by one while
    /// it registers the chip, and these answer it. Dropped right after.
    #[pin]
    probe_dirs: SpinLockIrq<Option<KVec<u8>>>,
}

type RqGuard<'a> = SpinLockIrqGuard<'a, RequestQueue>;

impl VirtioGpio {
    fn log_bad_answer(&self, line: u16, type_: u16, what: core::fmt::Arguments<'_>) {
        dev_log_bad!(
            self.vdev,
            ERR,
            "line {}: {} {}\n",
            line,
            msg_name(type_),
            what
        );
    }

    /// Take the messages of `lines` for our use, all or none, waiting until
    /// they are all free.
    fn claim(&self, q: &mut RqGuard<'_>, ents: &mut [Entry], dl: &mut Deadline) -> Result {
        loop {
            if q.gone {
                return Err(ENODEV);
            }
            if ents.iter().all(|e| q.slots[e.slot].free.is_some()) {
                for e in ents.iter_mut() {
                    e.msg = q.slots[e.slot].free.take();
                }
                return Ok(());
            }
            self.rq_wait.wait_killable(q, dl)?;
        }
    }

    /// Give the device every message in `ents` and wait for all answers.
    /// Whatever happens, on return no message is lost: each is in its entry
    /// (answered), back in its free slot, or still with the device, which
    /// will return it to the free slot.
    fn transact(&self, q: &mut RqGuard<'_>, ents: &mut [Entry], dl: &mut Deadline) -> Result {
        for e in ents.iter() {
            q.slots[e.slot].waiting = true;
        }
        let res = loop {
            if q.gone {
                break Err(ENODEV);
            }
            let mut added = false;
            let mut err = None;
            for e in ents.iter_mut() {
                let Some(m) = e.msg.take() else { continue };
                match q.vq.add(m) {
                    Ok(()) => added = true,
                    Err((error, m)) => {
                        e.msg = Some(m);
                        // A full ring drains as answers come back.
                        if error != ENOSPC {
                            err = Some(error);
                        }
                        break;
                    }
                }
            }
            if added {
                q.vq.kick();
            }
            if let Some(error) = err {
                break Err(error);
            }
            for e in ents.iter_mut().filter(|e| e.done.is_none()) {
                e.done = q.slots[e.slot].done.take();
            }
            if ents.iter().all(|e| e.done.is_some()) {
                break Ok(());
            }
            if let Err(error) = self.rq_wait.wait_killable(q, dl) {
                break Err(error);
            }
        };
        let mut freed = false;
        for e in ents.iter_mut() {
            let slot = &mut q.slots[e.slot];
            slot.waiting = false;
            if let Some(m) = e.msg.take() {
                slot.free = Some(m);
                freed = true;
            }
            if res.is_err() {
                if let Some((m, _)) = e.done.take().or_else(|| slot.done.take()) {
                    slot.free = Some(m);
                    freed = true;
                }
            }
        }
        if freed {
            self.rq_wait.notify_all();
        }
        res
    }

    /// Check an answer; return the response's value byte.
    fn answer(&self, type_: u16, line: u16, msg: &ReqMsg, len: u32) -> Result<u8> {
        let Response::Line(b) = &msg.res else {
            return Err(EIO);
        };
        let res = VirtioGpioResponse::from_bytes(*b);
        if len != b.len() as u32 {
            self.log_bad_answer(
                line,
                type_,
                format_args!("answer has length {len}, expected {}", b.len()),
            );
            return Err(EIO);
        }
        if res.status != VIRTIO_GPIO_STATUS_OK {
            self.log_bad_answer(
                line,
                type_,
                format_args!("failed: device status {}", res.status),
            );
            return Err(EIO);
        }
        Ok(res.value)
    }

    /// Fill a line's message for a request.
    fn fill(msg: &mut ReqMsg, type_: u16, line: u16, value: u32) {
        msg.req = VirtioGpioRequest::new(type_, line, value).to_bytes();
        msg.res = Response::Line([0xff; 2]);
    }

    /// How long a request may wait: killable and without limit (a slow
    /// device is legal), but bounded while the device starts (probe holds
    /// the device lock: a silent device would block its bus, and unbind
    /// could not help) and where the caller cannot be killed (`bound`, the
    /// end of a killed task's SET_IRQ_TYPE sequence: free_irq may run in
    /// its exit). A message left with the device comes back to its line
    /// when the device answers.
    fn deadline(q: &RqGuard<'_>, bound: Option<Moment>) -> Deadline {
        match (q.starting, bound) {
            // One bound for all of probe's requests, not one each (a device
            // that falls silent after the parallel direction fetch failed
            // would hold probe for ngpio bounds, line by line).
            (Some((end, pid)), _) if kernel::current!().pid() == pid => Deadline::until(end),
            (_, Some(end)) => Deadline::until(end),
            _ => Deadline::none(),
        }
    }

    /// A request that got no answer in time: say so (the device's fault).
    fn note_timeout<T>(&self, r: &Result<T>, type_: u16, line: u16) {
        if matches!(r, Err(e) if *e == etimedout()) {
            self.log_bad_answer(
                line,
                type_,
                format_args!("not answered within the {} ms bound", WAIT_BOUND_MS),
            );
        }
    }

    /// One request for one line; returns the response's value byte.
    fn request(&self, type_: u16, line: u16, value: u32) -> Result<u8> {
        self.request_bounded(type_, line, value, None)
    }

    /// [`Self::request`], its wait ending at `bound` if given (see
    /// [`Self::deadline`]).
    fn request_bounded(
        &self,
        type_: u16,
        line: u16,
        value: u32,
        bound: Option<Moment>,
    ) -> Result<u8> {
        let r = self.request_inner(type_, line, value, bound);
        self.note_timeout(&r, type_, line);
        r
    }

    fn request_inner(
        &self,
        type_: u16,
        line: u16,
        value: u32,
        bound: Option<Moment>,
    ) -> Result<u8> {
        if line >= self.ngpio {
            return Err(EINVAL);
        }
        let mut ent = [Entry {
            slot: line as usize,
            msg: None,
            done: None,
        }];
        let mut q = self.rq.lock();
        let mut dl = Self::deadline(&q, bound);
        self.claim(&mut q, &mut ent, &mut dl)?;
        if let Some(m) = ent[0].msg.as_mut() {
            Self::fill(m, type_, line, value);
        }
        self.transact(&mut q, &mut ent, &mut dl)?;
        let (m, len) = ent[0].done.take().ok_or(EIO)?;
        let r = self.answer(type_, line, &m, len);
        q.slots[line as usize].free = Some(m);
        drop(q);
        self.rq_wait.notify_all();
        r
    }

    /// Send one request for a line without waiting for its answer, if the
    /// line's message is free now (else `EBUSY`); the answer goes straight
    /// back to the free slot. For deactivating a line in `free`, which can
    /// run in the exit of a killed task: nothing there may wait for a device
    /// that does not answer (a fatal signal no longer interrupts the wait).
    fn post(&self, type_: u16, line: u16, value: u32) -> Result {
        if line >= self.ngpio {
            return Err(EINVAL);
        }
        let mut q = self.rq.lock();
        if q.gone {
            return Err(ENODEV);
        }
        let slot = line as usize;
        let Some(mut m) = q.slots[slot].free.take() else {
            return Err(EBUSY);
        };
        Self::fill(&mut m, type_, line, value);
        match q.vq.add(m) {
            Ok(()) => {
                q.vq.kick();
                Ok(())
            }
            Err((e, m)) => {
                q.slots[slot].free = Some(m);
                Err(e)
            }
        }
    }

    /// The same request for every line set in `mask`, all in flight at once.
    /// `value(line)` gives each request's value; `answer(line, value_byte)`
    /// takes each response's value. Returns the first error, after all
    /// messages are back.
    fn request_multiple(
        &self,
        type_: u16,
        mask: &[c_ulong],
        mut value: impl FnMut(u16) -> u32,
        mut answer: impl FnMut(u16, u8),
    ) -> Result {
        let mut lines = (0..self.ngpio).filter(|&l| bit(mask, l));
        // gpiolib sends a one-line request of the character device here
        // too: no list to allocate for that.
        if let (Some(line), None) = (lines.next(), lines.next()) {
            let v = self.request(type_, line, value(line))?;
            answer(line, v);
            return Ok(());
        }
        let mut ents = KVec::new();
        for line in 0..self.ngpio {
            if bit(mask, line) {
                ents.push(
                    Entry {
                        slot: line as usize,
                        msg: None,
                        done: None,
                    },
                    GFP_KERNEL,
                )?;
            }
        }
        // gpiolib can pass an empty mask (open-drain lines are taken out of
        // a set_multiple): nothing to do.
        let Some(first) = ents.first().map(|e| e.slot as u16) else {
            return Ok(());
        };
        let mut q = self.rq.lock();
        let mut dl = Self::deadline(&q, None);
        let r = self.claim(&mut q, &mut ents, &mut dl).and_then(|()| {
            for e in ents.iter_mut() {
                let line = e.slot as u16;
                if let Some(m) = e.msg.as_mut() {
                    Self::fill(m, type_, line, value(line));
                }
            }
            self.transact(&mut q, &mut ents, &mut dl)
        });
        if let Err(e) = r {
            drop(q);
            self.note_timeout(&r, type_, first);
            return Err(e);
        }
        let mut first_err = Ok(());
        for e in ents.iter_mut() {
            let line = e.slot as u16;
            let Some((m, len)) = e.done.take() else {
                continue;
            };
            match self.answer(type_, line, &m, len) {
                Ok(v) => answer(line, v),
                Err(err) => {
                    if first_err.is_ok() {
                        first_err = Err(err);
                    }
                }
            }
            q.slots[e.slot].free = Some(m);
        }
        drop(q);
        self.rq_wait.notify_all();
        first_err
    }

    /// Every line's direction, all requests in flight at once.
    fn fetch_directions(&self) -> Result<KVec<u8>> {
        let w = c_ulong::BITS as usize;
        let n = self.ngpio as usize;
        let mut mask = KVec::from_elem(0 as c_ulong, n.div_ceil(w), GFP_KERNEL)?;
        for line in 0..self.ngpio {
            set_bit(&mut mask, line, true);
        }
        let mut dirs = KVec::from_elem(VIRTIO_GPIO_DIRECTION_NONE, n, GFP_KERNEL)?;
        self.request_multiple(
            VIRTIO_GPIO_MSG_GET_DIRECTION,
            &mask,
            |_| 0,
            |line, d| dirs[line as usize] = d,
        )?;
        Ok(dirs)
    }

    /// The line names, if the device has a valid names block. A device
    /// that gives none, or a bad one, gets a chip without names (and a log
    /// line); a device that does not answer in time fails probe.
    fn fetch_names(&self) -> Result<Option<gpio::LineNames>> {
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

/// Is bit `n` set in a C bitmap?
fn bit(map: &[c_ulong], n: u16) -> bool {
    let w = c_ulong::BITS as usize;
    map.get(n as usize / w)
        .is_some_and(|x| x & (1 << (n as usize % w)) != 0)
}

fn set_bit(map: &mut [c_ulong], n: u16, v: bool) {
    let w = c_ulong::BITS as usize;
    if let Some(x) = map.get_mut(n as usize / w) {
        if v {
            *x |= 1 << (n as usize % w);
        } else {
            *x &= !(1 << (n as usize % w));
        }
    }
}

/// Why a line lost the name the device gave it (the first such reason).
#[derive(Default)]
struct Unnamed {
    lines: u32,
    why: Option<&'static str>,
}

impl Unnamed {
    fn add(&mut self, why: &'static str) {
        self.lines += 1;
        self.why.get_or_insert(why);
    }
}

/// The names block as gpiolib gets it: exactly `ngpio` NUL-terminated names,
/// the device's `i`th name for line `i`. A line whose name is missing (the
/// block is short, or its last name has no NUL), is not printable 7-bit
/// ASCII, or is an earlier line's, gets none (an empty name): one bad name
/// costs only its line. Returns the block and what was dropped.
fn clean_names(block: &[u8], ngpio: u16) -> Result<(KVec<u8>, Unnamed)> {
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
fn duplicates(names: &[&[u8]]) -> Result<KVec<usize>> {
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
        self.with_irq_line(offset, |eq, l| {
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

    fn get_multiple(&self, mask: &[c_ulong], bits: &mut [c_ulong]) -> Result {
        let mut bad = false;
        self.request_multiple(
            VIRTIO_GPIO_MSG_GET_VALUE,
            mask,
            |_| 0,
            |line, v| {
                bad |= v > 1;
                set_bit(bits, line, v == 1);
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

    fn set_multiple(&self, mask: &[c_ulong], bits: &[c_ulong]) -> Result {
        self.request_multiple(
            VIRTIO_GPIO_MSG_SET_VALUE,
            mask,
            |line| bit(bits, line).into(),
            |_, _| (),
        )
    }

    fn irq_enable(&self, hwirq: u32) {
        self.with_irq_line(hwirq, |eq, l| {
            let il = &mut eq.lines[l];
            il.disabled = false;
            il.masked = false;
            il.fresh_start();
            // Queued now if the device already has the type; else after
            // irq_bus_sync_unlock sent it.
            let _ = eq.queue(l);
        });
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

    fn irq_unmask(&self, hwirq: u32) {
        self.with_irq_line(hwirq, |eq, l| {
            let il = &mut eq.lines[l];
            il.masked = false;
            // The irq core unmasks after it handled an interrupt: the line
            // works.
            il.unheard = 0;
            // Requeueing the message is what unmasks the line on the device.
            let _ = eq.queue(l);
        });
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

impl VirtioGpio {
    /// Bring the device's trigger type for the line to what it should be
    /// (`IrqLine::want`), then queue its message if it should have it.
    ///
    /// What the line wants can change while this talks to the device: a
    /// sync that finds the type it wants already recorded does not wait for
    /// this sequence. So this goes on until the device has what the line
    /// wants now (a bounded number of rounds, for users that keep changing
    /// it: their own syncs carry on).
    fn sync_types(&self, seq: &TypeSeq<'_>) -> Result {
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
        r
    }

    /// Begin the line's trigger-type sequence: wait (killably; bounded in
    /// an exiting task, see [`Self::set_irq_type`]) until no other task has
    /// one going for the line. Other lines never wait for this one: a
    /// device that holds one line's SET_IRQ_TYPE answer holds up only that
    /// line's users.
    fn type_seq(&self, hwirq: u32) -> Result<TypeSeq<'_>> {
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
            self.rq_wait.wait_killable(&mut q, &mut dl)?;
        }
    }

    /// SET_IRQ_TYPE: the line's type is unknown while the request is out,
    /// and known again only if the device answered OK and the line was not
    /// deactivated meanwhile (`free` posts its SET_DIRECTION none as soon
    /// as the line's message is back, which may be before this records).
    fn set_irq_type(&self, seq: &TypeSeq<'_>, t: u8) -> Result {
        let hwirq = seq.line;
        let mut freed = 0;
        let mut unknown = false;
        self.with_irq_line(hwirq, |eq, l| {
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

    /// Removal: fail new requests, stop the device, take back every message
    /// it held and wake their waiters, so that nobody stays blocked on a
    /// device that is gone.
    fn shutdown(&self) {
        self.rq.lock().gone = true;
        if let Some(eq) = &mut *self.eq.lock() {
            eq.gone = true;
        }
        // No eventq callback may deliver an interrupt once this returns:
        // the chip (and its irq domain) goes next. A callback that found a
        // message before `gone` was set finishes here; later ones find
        // nothing (the queues are broken) or see `gone`.
        self.vdev.stop_callbacks();
        self.vdev.reset();
        {
            let mut q = self.rq.lock();
            while let Some(m) = q.vq.detach_unused() {
                if let Some(s) = q.slots.get_mut(m.slot as usize) {
                    s.free = Some(m);
                }
            }
        }
        if let Some(eq) = &mut *self.eq.lock() {
            while let Some(m) = eq.vq.detach_unused() {
                if let Some(l) = eq.lines.get_mut(m.line as usize) {
                    l.buf = Some(m);
                }
            }
        }
        self.rq_wait.notify_all();
    }

    /// eventq callback (interrupt context): one returned message at a time,
    /// the lock dropped before the irq core runs the line's handlers (which
    /// call back into irq_mask/irq_unmask).
    fn eventq_done(&self, handle: impl Fn(u32) -> Result) {
        loop {
            let (ev, parked) = {
                let mut g = self.eq.lock();
                let Some(eq) = &mut *g else { return };
                let Some((m, len)) = eq.vq.get_buf() else {
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
                // it is masked here too, before the lock drops; else a
                // concurrent irq_bus_sync_unlock could requeue the message
                // before the irq core masks the line, and the device would
                // fire again while the first event is being handled. The
                // irq core unmasks it after the handlers, which requeues it.
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

    fn log_parked(&self, line: u16) {
        dev_log!(
            self.vdev,
            ERR,
            "line {}: {} returns of its eventq message in a row brought no event that could be handled; the line's interrupt stays off until it is enabled again (enable_irq after disable_irq, or request_irq) or gets a new trigger type\n",
            line,
            MAX_UNHEARD + 1
        );
    }

    /// Run `f` on a line's interrupt state, if the chip has interrupts.
    fn with_irq_line(&self, hwirq: u32, f: impl FnOnce(&mut EventQueue, usize)) {
        if let Some(eq) = &mut *self.eq.lock() {
            if (hwirq as usize) < eq.lines.len() {
                f(eq, hwirq as usize);
            }
        }
    }

    /// requestq callback (interrupt context): route answers to their lines.
    fn requestq_done(&self) {
        {
            let mut q = self.rq.lock();
            while let Some((m, len)) = q.vq.get_buf() {
                let Some(slot) = q.slots.get_mut(m.slot as usize) else {
                    continue;
                };
                if slot.waiting {
                    slot.done = Some((m, len));
                } else {
                    slot.free = Some(m);
                }
            }
        }
        self.rq_wait.notify_all();
    }
}

impl virtio::Driver for VirtioGpio {
    const NAME: &'static CStr = kernel::c_str!("gpio-virtio-rs");
    const DEVICE_ID: u32 = VIRTIO_ID_GPIO;
    const FEATURES: &'static [u32] = &[VIRTIO_GPIO_F_IRQ];
    type Data = gpio::Registration<VirtioGpio>;

    fn probe(vdev: &virtio::Device) -> Result<Pin<KBox<Self::Data>>> {
        // 16- and 32-bit accesses, as the spec's access-width rules want.
        let ngpio = vdev.cread16(CONFIG_NGPIO);
        let names_size = vdev.cread32(CONFIG_GPIO_NAMES_SIZE);
        if ngpio == 0 || ngpio == u16::MAX {
            dev_log!(
                vdev,
                ERR,
                "device reports {} lines: nothing to drive\n",
                ngpio
            );
            return Err(EINVAL);
        }
        let irq = vdev.has_feature(VIRTIO_GPIO_F_IRQ);
        // Messages are two small buffers, in the ring as a two-descriptor
        // chain, never an indirect table: a table would cost an allocation
        // and a free per message, and the eventq adds its messages in
        // irq_unmask, under the irq descriptor's raw spinlock, where
        // allocating is invalid on PREEMPT_RT (the slab's locks sleep
        // there). The price: QEMU's 64-entry eventq holds 32 lines' messages
        // at once; further lines wait for a free slot (`want_slot`).
        let (requestq, eventq) = vdev.find_vqs::<VirtioGpio, ReqMsg, IrqMsg>(
            [kernel::c_str!("requestq"), kernel::c_str!("eventq")],
            [true, true],
            irq,
        )?;
        let mut slots = KVec::with_capacity(ngpio as usize + 1, GFP_KERNEL)?;
        for slot in 0..=ngpio {
            let free = if slot < ngpio {
                Some(KBox::new(
                    ReqMsg {
                        slot,
                        req: [0; 8],
                        res: Response::Line([0; 2]),
                    },
                    GFP_KERNEL,
                )?)
            } else {
                None
            };
            slots.push(
                Slot {
                    free,
                    ..Default::default()
                },
                GFP_KERNEL,
            )?;
        }
        let rq = RequestQueue {
            vq: requestq,
            gone: false,
            starting: Some((Moment::after_ms(WAIT_BOUND_MS), kernel::current!().pid())),
            slots,
        };
        let eq = match eventq {
            Some(vq) => {
                let mut lines = KVec::with_capacity(ngpio as usize, GFP_KERNEL)?;
                for line in 0..ngpio {
                    lines.push(
                        IrqLine {
                            type_: VIRTIO_GPIO_IRQ_TYPE_NONE,
                            sent: Some(VIRTIO_GPIO_IRQ_TYPE_NONE),
                            disabled: true,
                            output: false,
                            freed: 0,
                            typing: false,
                            masked: true,
                            buf: Some(KBox::new(
                                IrqMsg {
                                    line,
                                    req: [0; 2],
                                    res: [0],
                                },
                                GFP_KERNEL,
                            )?),
                            want_slot: false,
                            prev: None,
                            next: None,
                            unheard: 0,
                            parked: false,
                        },
                        GFP_KERNEL,
                    )?;
                }
                Some(EventQueue {
                    vq,
                    gone: false,
                    lines,
                    first: None,
                    last: None,
                })
            }
            None => None,
        };
        let data = try_pin_init!(VirtioGpio {
            vdev: vdev.get(),
            ngpio,
            names_size,
            rq <- SpinLockIrq::new(rq, kernel::c_str!("virtio_gpio_rs.requestq"), lock_class!()),
            rq_wait <- KillableCondVar::new(kernel::c_str!("virtio_gpio_rs.rq_wait"), lock_class!()),
            eq <- RawSpinLockIrq::new(eq, kernel::c_str!("virtio_gpio_rs.eventq"), lock_class!()),
            probe_dirs <- SpinLockIrq::new(None, kernel::c_str!("virtio_gpio_rs.probe_dirs"), lock_class!()),
        }? Error);
        KBox::pin_init(gpio::Registration::new(data), GFP_KERNEL)
    }

    fn start(vdev: &virtio::Device, chip: &Self::Data) -> Result {
        let this = chip.data();
        vdev.ready();
        let names = this.fetch_names()?;
        let irq = this.eq.lock().is_some();
        // Without the directions gpiolib asks line by line; a device that
        // is gone, or silent, or a prober that was killed ends probe here.
        let dirs = match this.fetch_directions() {
            Ok(d) => Some(d),
            Err(e) if e == EIO => None,
            Err(e) => return Err(e),
        };
        *this.probe_dirs.lock() = dirs;
        let r = chip.register(vdev, &THIS_MODULE, this.ngpio, names, irq);
        // Free it outside the lock.
        let dirs = this.probe_dirs.lock().take();
        drop(dirs);
        r?;
        this.rq.lock().starting = None;
        dev_log!(
            vdev,
            DEBUG,
            "{} lines, irq {}\n",
            this.ngpio,
            if irq { "yes" } else { "no" }
        );
        Ok(())
    }

    fn remove(_vdev: &virtio::Device, chip: &Self::Data) {
        chip.data().shutdown();
        chip.unregister();
    }

    fn vq_done(chip: &Self::Data, index: usize) {
        if index == 0 {
            chip.data().requestq_done();
        } else {
            chip.data().eventq_done(|hwirq| chip.handle_irq(hwirq));
        }
    }
}
