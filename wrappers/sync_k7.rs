// SPDX-License-Identifier: GPL-2.0

//! Synchronization on Linux 7.x: the kernel crate's own, plus the two things
//! it does not have.
//!
//! From `kernel::sync`: [`SpinLockIrq`] (taken with
//! `spin_lock_irq_disable()`), [`CondVar`], [`rcu`], [`atomic`]; from `kernel::task`,
//! [`might_sleep`]; from `kernel::time`, the clock under [`Moment`].
//!
//! Not in the crate, so here: [`RawSpinLockIrq`], a `raw_spinlock_t` behind
//! the crate's own [`Lock`] (as a lock [`Backend`]), for state irq_chip
//! callbacks touch under the irq descriptor's raw lock;
//! [`wait_var_killable_then`], a keyed wait (the kernel's `wait_var_event`
//! family) that only a fatal signal (or a timeout) interrupts, which the
//! crate's [`CondVar`] lacks; and the same sleep without a wait queue, for
//! `super::sleep_killable_then` (`sleep_then`).
//!
//! C headers: `include/linux/spinlock.h`, `include/linux/wait.h`.

use kernel::ffi::{c_char, c_long, c_ulong};
use kernel::prelude::*;
use kernel::sync::lock::spinlock::SpinLockIrqBackend;
use kernel::sync::lock::{Backend, Lock};
use kernel::time::{msecs_to_jiffies, Delta, Instant, Monotonic};

pub(crate) use kernel::sync::{atomic, rcu, CondVar, SpinLockIrq, SpinLockIrqGuard};
pub(crate) use kernel::task::might_sleep;

use crate::bindings;

/// A `Pin<&'static LockClassKey>` unique to the place it is written.
macro_rules! lock_class {
    () => {
        kernel::static_lock_class!()
    };
}
pub(crate) use lock_class;

/// A `raw_spinlock_t` taken with interrupts saved and disabled. It never
/// sleeps, not even on PREEMPT_RT; nothing that takes a `spinlock_t` (a wait
/// queue, an allocation) may run under it.
pub(crate) type RawSpinLockIrq<T> = Lock<T, RawSpinLockIrqBackend>;

/// The [`Backend`] of a [`RawSpinLockIrq`]; the guard keeps the saved
/// interrupt flags.
pub(crate) struct RawSpinLockIrqBackend;

// SAFETY: a raw spinlock gives mutual exclusion between lock and unlock;
// `relock` is the default, which calls `lock`, the same method as before.
unsafe impl Backend for RawSpinLockIrqBackend {
    type State = kernel::bindings::raw_spinlock_t;
    type GuardState = c_ulong;

    unsafe fn init(
        ptr: *mut Self::State,
        name: *const c_char,
        key: *mut kernel::bindings::lock_class_key,
    ) {
        // SAFETY: the caller passes memory for the lock, valid for writes,
        // and a name and key that stay valid; the two crates' bindings of
        // these C types are the same C types.
        unsafe { bindings::vgpio_raw_spin_lock_init(ptr.cast(), name, key.cast()) }
    }

    unsafe fn lock(ptr: *mut Self::State) -> Self::GuardState {
        // SAFETY: the caller passes an initialised lock.
        unsafe { bindings::vgpio_raw_spin_lock_irqsave(ptr.cast()) }
    }

    unsafe fn try_lock(ptr: *mut Self::State) -> Option<Self::GuardState> {
        let mut flags = 0;
        // SAFETY: the caller passes an initialised lock; `flags` is a valid
        // place for the saved flags.
        unsafe { bindings::vgpio_raw_spin_trylock_irqsave(ptr.cast(), &mut flags) }.then_some(flags)
    }

    unsafe fn unlock(ptr: *mut Self::State, guard_state: &Self::GuardState) {
        // SAFETY: the caller holds the lock, which `lock` took and which
        // saved these flags.
        unsafe { bindings::vgpio_raw_spin_unlock_irqrestore(ptr.cast(), *guard_state) }
    }

    unsafe fn assert_is_held(ptr: *mut Self::State) {
        // SAFETY: the caller passes an initialised lock.
        unsafe { bindings::vgpio_raw_spin_assert_is_held(ptr.cast()) }
    }
}

/// The C lock of a held [`SpinLockIrq`]. `Lock` is `repr(C)` with the C
/// lock its first field (what `Lock::from_raw` relies on), so the lock's
/// address is its C lock's.
fn raw_lock<T>(guard: &SpinLockIrqGuard<'_, T>) -> *mut bindings::spinlock_t {
    core::ptr::from_ref(guard.lock_ref())
        .cast::<bindings::spinlock_t>()
        .cast_mut()
}

/// Run `f` with the guard's lock released (and interrupts on, if the lock
/// turned them off), then take the lock again: for work that must not run
/// under it (a virtqueue notification is a VM exit). The crate's own
/// `Guard::do_unlocked` is not public; its lock backend's `unlock` and
/// `relock` are.
pub(crate) fn unlocked<T, U>(guard: &mut SpinLockIrqGuard<'_, T>, f: impl FnOnce() -> U) -> U {
    let lock = raw_lock(guard).cast::<kernel::bindings::spinlock_t>();
    // SAFETY: the guard holds the lock, a SpinLockIrq's, whose backend this
    // is (its guard state is `()`); the guard is borrowed mutably, so
    // nothing reaches the data through it meanwhile, and it holds the lock
    // again when this returns; the two crates' bindings of spinlock_t are
    // the same C type.
    unsafe { SpinLockIrqBackend::unlock(lock, &()) };
    let r = f();
    // SAFETY: as above: the lock is ours to take again.
    unsafe { SpinLockIrqBackend::relock(lock, &mut ()) };
    r
}

/// [`super::wait_var_killable`], and `before` (if given) runs once with the lock
/// released, whatever happens: before the task sleeps (it is on the wait
/// queue already, so a wake-up that `before` brings about is not lost), or,
/// if it does not sleep (killed, out of time), before this returns.
/// `before` must not sleep (the task's state is set for the wait).
#[inline]
pub(crate) fn wait_var_killable_then<T, F: FnOnce()>(
    guard: &mut SpinLockIrqGuard<'_, T>,
    var: *const core::ffi::c_void,
    deadline: &mut Deadline,
    mut before: Option<F>,
) -> Result {
    let lock = raw_lock(guard);
    let left = deadline.left();
    let (cb, arg) = super::before_args(&mut before);
    // SAFETY: `lock` is held by `guard`, taken with spin_lock_irq_disable
    // (SpinLockIrq's backend), which is how the helper drops and retakes
    // it, so the guard holds it again on return; `var` is only hashed and
    // compared; `left` is null or a valid place; `cb` and `arg` are
    // `before`'s (`before_args`), a local that nothing else touches until
    // the helper returns.
    let r = unsafe { bindings::vgpio_wait_var_killable_irq(var.cast_mut(), lock, left, cb, arg) };
    super::after_wait(guard, before, r)
}

/// The sleep of [`super::sleep_killable_then`]: the C helper sets the
/// task's state with the lock held, drops the lock, runs `before`, sleeps
/// and takes the lock again.
#[inline]
pub(super) fn sleep_then<T, F: FnOnce()>(
    guard: &mut SpinLockIrqGuard<'_, T>,
    deadline: &mut Deadline,
    mut before: Option<F>,
) -> Result {
    let lock = raw_lock(guard);
    let left = deadline.left();
    let (cb, arg) = super::before_args(&mut before);
    // SAFETY: `lock` is held by `guard`, taken with spin_lock_irq_disable
    // (SpinLockIrq's backend), which is how the helper drops and retakes
    // it, so the guard holds it again on return; `left` is null or a valid
    // place; `cb` and `arg` are `before`'s (`before_args`), a local that
    // nothing else touches until the helper returns.
    let r = unsafe { bindings::vgpio_sleep_killable_irq(lock, left, cb, arg) };
    super::after_wait(guard, before, r)
}

/// A point in time, for a bound shared by several waits.
#[derive(Clone, Copy)]
pub(crate) struct Moment(Instant<Monotonic>);

impl Moment {
    /// `ms` milliseconds from now.
    pub(crate) fn after_ms(ms: u32) -> Self {
        Moment(Instant::<Monotonic>::now() + Delta::from_millis(i64::from(ms)))
    }
}

/// How much longer a task may wait: without limit, or some jiffies.
pub(crate) struct Deadline(Option<c_long>);

impl Deadline {
    /// Where a C wait helper keeps the jiffies left: null for no limit.
    fn left(&mut self) -> *mut c_long {
        self.0
            .as_mut()
            .map_or(core::ptr::null_mut(), core::ptr::from_mut)
    }

    /// No limit.
    pub(crate) fn none() -> Self {
        Deadline(None)
    }

    /// Until `end` (no time at all once it has passed).
    pub(crate) fn until(end: Moment) -> Self {
        let left = (end.0 - Instant::<Monotonic>::now()).as_millis_ceil();
        let ms = u32::try_from(left.max(0)).unwrap_or(u32::MAX);
        Deadline(Some(
            c_long::try_from(msecs_to_jiffies(ms)).unwrap_or(c_long::MAX),
        ))
    }
}
