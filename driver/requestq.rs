// SPDX-License-Identifier: GPL-2.0

//! The requestq: one message per line, and the requests built on them.
//!
//! A request takes its lines' messages, hands them to the device, sleeps
//! (killably, and bounded where it cannot be interrupted) until every answer
//! is back, then gives the messages back to their slots. An answer that
//! comes after its waiter gave up returns the message to its slot all the
//! same, so nothing is lost or freed while the device may still write it.

use kernel::prelude::*;

use super::sync::{self, Deadline, Moment, SpinLockIrqGuard};
use super::uapi::*;
use super::virtio::{self, dev_log_bad};
use super::VirtioGpio;

/// The device-writable part of a requestq message.
pub(crate) enum Response {
    Line([u8; 2]),
    Names(KVec<u8>),
}

/// One requestq message: `slot` says whose it is (a line, or `ngpio` for
/// GET_LINE_NAMES). `slot` is not part of what the device sees.
pub(crate) struct ReqMsg {
    pub(crate) slot: u16,
    pub(crate) req: [u8; 8],
    pub(crate) res: Response,
}

// SAFETY: the readable part is an array inside the message itself (its own
// `KBox`, kmalloc'd); the writable part too, or the names block, a `KVec`
// (kmalloc'd) the message owns and that does not change while it is
// queued (`res` is only replaced while the driver holds the message); the
// same memory on every call.
unsafe impl virtio::Buffer for ReqMsg {
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

/// Where a line's message is when the device does not have it.
#[derive(Default)]
pub(crate) struct Slot {
    /// Nobody is using the line's message.
    pub(crate) free: Option<KBox<ReqMsg>>,
    /// The device answered; the waiter takes it with the used length.
    pub(crate) done: Option<(KBox<ReqMsg>, u32)>,
    /// Somebody waits for the answer; if not (they were killed), the
    /// answer goes straight back to `free`.
    pub(crate) waiting: bool,
    /// The task asleep until this answer comes (one of its request's
    /// slots): the answer wakes it (and the device's removal).
    pub(crate) waiter: Option<sync::Waiter>,
    /// Tasks waiting in `claim` for the message to be free: only then does
    /// freeing it wake anybody (a wake-up that finds nobody still costs a
    /// hashed wait queue's look-up, on every request).
    pub(crate) claimers: u32,
}

/// Everything the requestq lock guards.
pub(crate) struct RequestQueue {
    pub(crate) vq: virtio::Virtqueue<ReqMsg>,
    /// The device is being removed: no new requests.
    pub(crate) gone: bool,
    /// Probe is still talking to the device: the probing task (by pid) and
    /// when all of its waits end. Other tasks can reach the chip before
    /// probe returns (gpiolib publishes it inside `gpiochip_add_data`):
    /// their requests are not probe's and get their own bounds.
    pub(crate) starting: Option<(Moment, i32)>,
    /// One slot per line, plus one (index `ngpio`) for GET_LINE_NAMES.
    pub(crate) slots: KVec<Slot>,
    /// Tasks waiting for room in the ring (on [`VirtioGpio::ring_key`]).
    pub(crate) ring_waiters: u32,
}

impl RequestQueue {
    /// What the tasks that wait for a slot (its message to be free, or its
    /// line's trigger-type sequence to end) wait on: a wake-up for a line
    /// wakes only the tasks waiting for that line. The slot's address:
    /// ours alone, and it stays put (the slots never grow). Only a key,
    /// never read through.
    pub(crate) fn key(&self, slot: usize) -> *const core::ffi::c_void {
        Self::key_of(self.slots.as_ptr(), slot)
    }

    /// [`RequestQueue::key`] from the slots' address (so that the keys can
    /// be made with the lock dropped).
    pub(crate) fn key_of(slots: *const Slot, slot: usize) -> *const core::ffi::c_void {
        slots.wrapping_add(slot).cast()
    }
}

/// A message in one request: which slot, the message while we hold it, the
/// answer once it came.
pub(crate) struct Entry {
    pub(crate) slot: usize,
    pub(crate) msg: Option<KBox<ReqMsg>>,
    pub(crate) done: Option<(KBox<ReqMsg>, u32)>,
    /// The answer, once the message is back in its slot.
    pub(crate) ans: Option<Answer>,
}

/// A line request's answer, copied out of its message (so the message can
/// go back to its slot at once, and the answer be checked, and a bad one
/// logged, without the lock): the response bytes, and the length the device
/// said it wrote.
#[derive(Clone, Copy)]
pub(crate) struct Answer(Option<[u8; 2]>, u32);

impl Answer {
    fn of(msg: &ReqMsg, len: u32) -> Self {
        match &msg.res {
            Response::Line(b) => Answer(Some(*b), len),
            Response::Names(_) => Answer(None, len),
        }
    }
}

impl Entry {
    pub(crate) fn new(slot: usize, msg: KBox<ReqMsg>) -> Self {
        Entry {
            slot,
            msg: Some(msg),
            done: None,
            ans: None,
        }
    }
}

/// How long probe's requests may take together, and a bounded request alone
/// (see `deadline`): far longer than any device that works takes, even
/// under emulation.
pub(crate) const WAIT_BOUND_MS: u32 = 10_000;

pub(crate) fn etimedout() -> Error {
    Error::from_errno(-(kernel::bindings::ETIMEDOUT as i32))
}

pub(crate) type RqGuard<'a> = SpinLockIrqGuard<'a, RequestQueue>;

impl VirtioGpio {
    pub(crate) fn log_bad_answer(&self, line: u16, type_: u16, what: core::fmt::Arguments<'_>) {
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
    /// they are all free. (Inlined: with one line, the loops fold away.)
    #[inline(always)]
    pub(crate) fn claim(
        &self,
        q: &mut RqGuard<'_>,
        ents: &mut [Entry],
        dl: &mut Deadline,
    ) -> Result {
        loop {
            if q.gone {
                return Err(ENODEV);
            }
            // (the slots looked up once, not through the guard per line)
            let slots = &mut q.slots;
            if ents.iter().all(|e| slots[e.slot].free.is_some()) {
                for e in ents.iter_mut() {
                    e.msg = slots[e.slot].free.take();
                }
                return Ok(());
            }
            // (one at a time: the first that is not free)
            let busy = ents
                .iter()
                .find(|e| slots[e.slot].free.is_none())
                .map_or(0, |e| e.slot);
            let key = q.key(busy);
            q.slots[busy].claimers += 1;
            let r = sync::wait_var_killable(q, key, dl);
            q.slots[busy].claimers -= 1;
            r?;
        }
    }

    /// Give the device every message in `ents` and wait for all answers.
    /// Whatever happens, on return no message is lost: each is in its entry
    /// (answered), back in its free slot, or still with the device, which
    /// will return it to the free slot. (Inlined: with one line, the loops
    /// fold away.)
    #[inline(always)]
    pub(crate) fn transact(
        &self,
        q: &mut RqGuard<'_>,
        ents: &mut [Entry],
        dl: &mut Deadline,
    ) -> Result {
        let slots = &mut q.slots;
        for e in ents.iter() {
            slots[e.slot].waiting = true;
        }
        // Who sleeps, once it has to (taken once per request).
        let mut me: Option<sync::Waiter> = None;
        let res = loop {
            if q.gone {
                break Err(ENODEV);
            }
            // The messages and the kick in one look at the queue. The device
            // is told with the lock dropped (a VM exit): as the task goes to
            // sleep (its state is set and its waker knows where to find it
            // by then, so an answer that comes at once is not missed), or
            // before it stops.
            let mut full = false;
            // (after a wake-up there is usually nothing left to add)
            let to_add = ents.iter().any(|e| e.msg.is_some());
            let (err, notify) = match q.vq.live().filter(|_| to_add) {
                Some(mut vq) => {
                    let mut added = false;
                    let mut err = None;
                    for e in ents.iter_mut() {
                        let Some(m) = e.msg.take() else { continue };
                        match vq.add(m) {
                            Ok(()) => added = true,
                            Err((error, m)) => {
                                e.msg = Some(m);
                                // A full ring drains as answers come back.
                                if error == ENOSPC {
                                    full = true;
                                } else {
                                    err = Some(error);
                                }
                                break;
                            }
                        }
                    }
                    (err, added && vq.kick_prepare())
                }
                None if to_add => (Some(ENODEV), false),
                None => (None, false),
            };
            if err.is_none() {
                let slots = &mut q.slots;
                for e in ents.iter_mut().filter(|e| e.done.is_none()) {
                    e.done = slots[e.slot].done.take();
                }
            }
            if err.is_some() || ents.iter().all(|e| e.done.is_some()) {
                if notify {
                    sync::unlocked(q, || self.rq_notifier.notify());
                }
                break err.map_or(Ok(()), Err);
            }
            // Wait for what is missing: room in the ring for a message not
            // added yet (any answer makes some), else an answer not in yet
            // (each answer wakes only the task that sleeps on its line).
            let before = notify.then_some(|| self.rq_notifier.notify());
            let r = if full {
                q.ring_waiters += 1;
                let r = sync::wait_var_killable_then(q, self.ring_key(), dl, before);
                q.ring_waiters -= 1;
                r
            } else {
                // The last answer not in yet: a device answers in order as
                // a rule, so one wake-up usually ends the request.
                let Some(p) = ents.iter().rev().find(|e| e.done.is_none()).map(|e| e.slot) else {
                    // (not reached: an answer is missing, or the loop ended)
                    if let Some(f) = before {
                        sync::unlocked(q, f);
                    }
                    continue;
                };
                sync::sleep_killable_then(q, |q| &mut q.slots[p].waiter, &mut me, dl, before)
            };
            if let Err(error) = r {
                break Err(error);
            }
        };
        let slots = &mut q.slots;
        for e in ents.iter_mut() {
            let key = RequestQueue::key_of(slots.as_ptr(), e.slot);
            let slot = &mut slots[e.slot];
            slot.waiting = false;
            let mut freed = false;
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
            if freed && slot.claimers > 0 {
                sync::wake_up_var(key);
            }
        }
        res
    }

    /// Check an answer; return the response's value byte.
    pub(crate) fn answer(&self, type_: u16, line: u16, ans: Answer) -> Result<u8> {
        let Answer(b, len) = ans;
        let Some(b) = b else {
            return Err(EIO);
        };
        let res = VirtioGpioResponse::from_bytes(b);
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
    pub(crate) fn fill(msg: &mut ReqMsg, type_: u16, line: u16, value: u32) {
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
    #[inline]
    pub(crate) fn deadline(q: &RqGuard<'_>, bound: Option<Moment>) -> Deadline {
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
    pub(crate) fn note_timeout<T>(&self, r: &Result<T>, type_: u16, line: u16) {
        if matches!(r, Err(e) if *e == etimedout()) {
            self.log_bad_answer(
                line,
                type_,
                format_args!("not answered within the {} ms bound", WAIT_BOUND_MS),
            );
        }
    }

    /// One request for one line; returns the response's value byte.
    pub(crate) fn request(&self, type_: u16, line: u16, value: u32) -> Result<u8> {
        self.request_bounded(type_, line, value, None)
    }

    /// [`Self::request`], its wait ending at `bound` if given (see
    /// [`Self::deadline`]).
    pub(crate) fn request_bounded(
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

    pub(crate) fn request_inner(
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
            ans: None,
        }];
        let mut q = self.rq.lock();
        let mut dl = Self::deadline(&q, bound);
        self.claim(&mut q, &mut ent, &mut dl)?;
        if let Some(m) = ent[0].msg.as_mut() {
            Self::fill(m, type_, line, value);
        }
        self.transact(&mut q, &mut ent, &mut dl)?;
        let (m, len) = ent[0].done.take().ok_or(EIO)?;
        // The message goes back at once; its answer is checked (and a bad
        // one logged) without the lock.
        let ans = Answer::of(&m, len);
        let slot = &mut q.slots[line as usize];
        slot.free = Some(m);
        let wake = slot.claimers > 0;
        let key = q.key(line as usize);
        drop(q);
        if wake {
            sync::wake_up_var(key);
        }
        self.answer(type_, line, ans)
    }

    /// Send one request for a line without waiting for its answer, if the
    /// line's message is free now (else `EBUSY`); the answer goes straight
    /// back to the free slot. For deactivating a line in `free`, which can
    /// run in the exit of a killed task: nothing there may wait for a device
    /// that does not answer (a fatal signal no longer interrupts the wait).
    pub(crate) fn post(&self, type_: u16, line: u16, value: u32) -> Result {
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
        // (the message and the kick in one look at the queue)
        let r = match q.vq.live() {
            Some(mut vq) => vq.add(m).map(|()| vq.kick_prepare()),
            None => Err((ENODEV, m)),
        };
        match r {
            Ok(notify) => {
                drop(q);
                if notify {
                    self.rq_notifier.notify();
                }
                Ok(())
            }
            Err((e, m)) => {
                q.slots[slot].free = Some(m);
                Err(e)
            }
        }
    }

    /// The same request for each of `lines` (in order, each once), all in
    /// flight at once.
    /// `value(line)` gives each request's value; `answer(line, value_byte)`
    /// takes each response's value. Returns the first error, after all
    /// messages are back.
    pub(crate) fn request_multiple(
        &self,
        type_: u16,
        lines: impl Iterator<Item = u16> + Clone,
        mut value: impl FnMut(u16) -> u32,
        mut answer: impl FnMut(u16, u8),
    ) -> Result {
        let lines = lines.take_while(|&l| l < self.ngpio);
        // gpiolib sends a one-line request of the character device here
        // too: no list to allocate for that.
        let mut two = lines.clone();
        if let (Some(line), None) = (two.next(), two.next()) {
            let v = self.request(type_, line, value(line))?;
            answer(line, v);
            return Ok(());
        }
        // (one allocation, its size counted first: growing the list as it
        // fills cost more than the rest of an 8-line request)
        let mut ents = KVec::with_capacity(lines.clone().count(), GFP_KERNEL)?;
        for line in lines {
            ents.push(
                Entry {
                    slot: line as usize,
                    msg: None,
                    done: None,
                    ans: None,
                },
                GFP_KERNEL,
            )?;
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
        // The messages go back at once; their answers are checked (and bad
        // ones logged) without the lock.
        let slots = &mut q.slots;
        for e in ents.iter_mut() {
            if let Some((m, len)) = e.done.take() {
                e.ans = Some(Answer::of(&m, len));
                let key = RequestQueue::key_of(slots.as_ptr(), e.slot);
                let slot = &mut slots[e.slot];
                slot.free = Some(m);
                if slot.claimers > 0 {
                    sync::wake_up_var(key);
                }
            }
        }
        drop(q);
        let mut first_err = Ok(());
        for e in ents.iter() {
            let Some(ans) = e.ans else { continue };
            let line = e.slot as u16;
            match self.answer(type_, line, ans) {
                Ok(v) => answer(line, v),
                Err(err) => {
                    if first_err.is_ok() {
                        first_err = Err(err);
                    }
                }
            }
        }
        first_err
    }

    /// Every line's direction, all requests in flight at once.
    pub(crate) fn fetch_directions(&self) -> Result<KVec<u8>> {
        let n = self.ngpio as usize;
        let mut dirs = KVec::from_elem(VIRTIO_GPIO_DIRECTION_NONE, n, GFP_KERNEL)?;
        self.request_multiple(
            VIRTIO_GPIO_MSG_GET_DIRECTION,
            0..self.ngpio,
            |_| 0,
            |line, d| dirs[line as usize] = d,
        )?;
        Ok(dirs)
    }

    /// requestq callback (interrupt context): route answers to their lines.
    pub(crate) fn requestq_done(&self) {
        let mut q = self.rq.lock();
        let RequestQueue { vq, slots, .. } = &mut *q;
        // (every used buffer in one look at the queue)
        let mut any = false;
        if let Some(mut vq) = vq.live() {
            while let Some((m, len)) = vq.get_buf() {
                any = true;
                let key = RequestQueue::key_of(slots.as_ptr(), m.slot as usize);
                let Some(slot) = slots.get_mut(m.slot as usize) else {
                    continue;
                };
                let wake = if slot.waiting {
                    slot.done = Some((m, len));
                    // (its request's task, if it sleeps for this answer:
                    // the message is the request's, so nobody else waits)
                    if let Some(w) = &slot.waiter {
                        w.wake();
                    }
                    false
                } else {
                    slot.free = Some(m);
                    slot.claimers > 0
                };
                // (a message freed: the tasks waiting to claim it, and only
                // those)
                if wake {
                    sync::wake_up_var(key);
                }
            }
        }
        if any && q.ring_waiters > 0 {
            sync::wake_up_var(self.ring_key());
        }
    }

    /// What the tasks that wait for room in the ring wait on: the requestq
    /// lock's address (ours alone; only a key).
    pub(crate) fn ring_key(&self) -> *const core::ffi::c_void {
        core::ptr::from_ref(&self.rq).cast()
    }
}
